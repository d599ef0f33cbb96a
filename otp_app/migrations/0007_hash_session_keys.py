"""Sessions keep only a hash of their key: the keys of existing rows are hashed, so nobody is
logged out by the upgrade."""

import hashlib

from django.db import migrations


def stored_key(session_key: str) -> str:
    # As otp_app.session_backends.db.stored_key, frozen here.
    return hashlib.sha256(session_key.encode()).hexdigest()[:40]


def hash_keys(apps, schema_editor):
    Session = apps.get_model("otp_app", "Session")
    for key in list(Session.objects.values_list("session_key", flat=True)):
        if len(key) != 40:  # a stored hash is 40 characters; a key never is
            Session.objects.filter(session_key=key).update(session_key=stored_key(key))


class Migration(migrations.Migration):
    dependencies = [("otp_app", "0006_security_event_codes_locked")]

    operations = [migrations.RunPython(hash_keys, migrations.RunPython.noop)]
