"""Encrypt the TOTP secrets that versions before 0003 stored as plain base32.

Idempotent: a stored value that is already a Fernet token is left as it is. Going back decrypts.
"""

from django.db import migrations

FERNET_PREFIX = "gAAAAA"  # every Fernet token starts so (version byte and timestamp)
SECRET_FIELDS = ("otp_secret", "pending_secret")


def _convert(apps, schema_editor, *, forwards: bool):
    from otp_app import crypto

    users = apps.get_model("otp_app", "UserModel").objects.using(schema_editor.connection.alias)
    for user in users.exclude(otp_secret="", pending_secret="").iterator(chunk_size=500):
        changes = {}
        for field in SECRET_FIELDS:
            stored = getattr(user, field)
            if stored and forwards and not stored.startswith(FERNET_PREFIX):
                changes[field] = crypto.encrypt(stored)
            elif stored and not forwards and stored.startswith(FERNET_PREFIX):
                changes[field] = crypto.decrypt(stored)
        if changes:
            users.filter(pk=user.pk).update(**changes)


def encrypt(apps, schema_editor):
    _convert(apps, schema_editor, forwards=True)


def decrypt(apps, schema_editor):
    _convert(apps, schema_editor, forwards=False)


class Migration(migrations.Migration):
    dependencies = [("otp_app", "0003_recovery_codes_security_events")]

    operations = [migrations.RunPython(encrypt, decrypt)]
