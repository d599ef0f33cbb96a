"""Create the database cache table, so `migrate` alone prepares a fresh database.

The password-failure counters live in the cache; with the default DatabaseCache they need this
table. With another cache backend (Redis) the command does nothing.
"""

from django.core.management import call_command
from django.db import migrations


def create_cache_table(apps, schema_editor):
    call_command("createcachetable", database=schema_editor.connection.alias, verbosity=0)


class Migration(migrations.Migration):
    dependencies = [("otp_app", "0001_initial")]

    operations = [migrations.RunPython(create_cache_table, migrations.RunPython.noop)]
