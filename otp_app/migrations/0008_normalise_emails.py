"""Emails stored before Unicode compatibility forms and IDNA were folded take their one spelling
now, where no other account already has it (those stay as they are, for an administrator)."""

from django.db import migrations
from django.db.models.functions import Lower


def normalise_emails(apps, schema_editor):
    # The app's rule itself, not a frozen copy: a stored email must be the spelling logins fold to.
    from otp_app.models import normalise_email

    UserModel = apps.get_model("otp_app", "UserModel")
    taken = set(UserModel.objects.annotate(lower=Lower("email")).values_list("lower", flat=True))
    for pk, email in UserModel.objects.values_list("pk", "email"):
        spelling = normalise_email(email)
        if spelling != email and spelling not in taken:
            UserModel.objects.filter(pk=pk).update(email=spelling)
            taken.add(spelling)


class Migration(migrations.Migration):
    dependencies = [("otp_app", "0007_hash_session_keys")]

    operations = [migrations.RunPython(normalise_emails, migrations.RunPython.noop)]
