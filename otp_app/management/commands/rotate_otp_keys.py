"""Re-encrypt every stored TOTP secret with the current key (the first of TWOFA_ENCRYPTION_KEYS).

Put the new key first, keep the old ones after it, run this, then drop the old keys. Batches
commit one by one: interrupt it whenever, and run it again; what is done is skipped.
"""

from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import Q
from tqdm import tqdm

from otp_app import crypto
from otp_app.models import UserModel

SECRET_FIELDS = ("otp_secret", "pending_secret")


class Command(BaseCommand):
    help = "Re-encrypt stored TOTP secrets with the current key of TWOFA_ENCRYPTION_KEYS."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=500)

    def handle(self, *args, batch_size, **options):
        with_secrets = UserModel.objects.filter(~Q(otp_secret="") | ~Q(pending_secret=""))
        total = with_secrets.count()
        rotated = 0
        last_pk = None
        with tqdm(total=total, unit="account", file=self.stdout, disable=options["verbosity"] == 0) as progress:
            while True:
                batch = with_secrets.order_by("pk")
                if last_pk is not None:
                    batch = batch.filter(pk__gt=last_pk)
                rows = list(batch.values_list("pk", *SECRET_FIELDS)[:batch_size])
                if not rows:
                    break
                with transaction.atomic():
                    for pk, *stored in rows:
                        rotated += self._rotate(pk, dict(zip(SECRET_FIELDS, stored, strict=True)))
                last_pk = rows[-1][0]
                progress.update(len(rows))
        self.stdout.write(self.style.SUCCESS(f"Re-encrypted {rotated} secret(s) of {total} account(s)."))

    @staticmethod
    def _rotate(pk, stored: dict) -> int:
        changes = {
            field: crypto.reencrypt(token) for field, token in stored.items() if token and not crypto.is_current(token)
        }
        if not changes:
            return 0
        # Only if unchanged since read: a secret replaced meanwhile is already current.
        UserModel.objects.filter(pk=pk, **{field: stored[field] for field in changes}).update(**changes)
        return len(changes)
