"""Adds accounts straight to a benchmark database, for the scale check: `python -m bench.seed TOTAL`
fills the user table up to TOTAL accounts and prints {"inserted": N, "total": T, "seconds": S}."""

import json
import os
import sys
import time
import uuid

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

from django.contrib.auth.hashers import make_password  # noqa: E402
from django.db import connection, transaction  # noqa: E402
from django.utils import timezone  # noqa: E402

from otp_app.models import UserModel  # noqa: E402

BATCH = 20_000


def main(total: int) -> dict:
    existing = UserModel.objects.count()
    missing = max(0, total - existing)
    started = time.perf_counter()
    fields = [field for field in UserModel._meta.concrete_fields]
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    table = connection.ops.quote_name(UserModel._meta.db_table)
    # The column values the model itself would store (its field defaults, one real password hash
    # shared by every row), so the table and its indexes look as that many registrations leave them.
    now = timezone.now()
    password = make_password("seeded account: " + uuid.uuid4().hex)
    # Sorted ids and numbered emails: every index is filled in order, as fast as it gets.
    ids = sorted(uuid.uuid4() for _ in range(missing))
    tag = uuid.uuid4().hex[:6]
    special = {"password": password, "name": "Seeded", "created_at": now, "updated_at": now, "last_login": None}

    def row(index: int, pk: uuid.UUID) -> list:
        values = []
        for field in fields:
            if field.primary_key:
                value = pk
            elif field.name == "email":
                value = f"seed-{tag}-{index:07d}@example.com"
            elif field.name in special:
                value = special[field.name]
            else:
                value = field.get_default()
            values.append(field.get_db_prep_save(value, connection))
        return values

    for start in range(0, missing, BATCH):
        rows = [row(index, pk) for index, pk in enumerate(ids[start : start + BATCH], start)]
        with transaction.atomic(), connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for values in rows:
                        copy.write_row(values)
            else:
                marks = ", ".join(["%s"] * len(fields))
                cursor.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", rows)
    with connection.cursor() as cursor:
        cursor.execute(f"ANALYZE {table}")
    return {"inserted": missing, "total": existing + missing, "seconds": round(time.perf_counter() - started, 2)}


if __name__ == "__main__":
    json.dump(main(int(sys.argv[1])), sys.stdout)
