"""CPU time per call of each statement otp_app/rows.py runs, against the ORM call it replaces.

rows.py exists only to save the CPU Django spends compiling a queryset on every call; it should be
kept only where that saving is worth its code. For each of its six call sites this runs both ways
side by side in one process, on one database: N calls of one way, then N of the other, in
interleaved batches whose order alternates, timing `time.process_time()` (this process's CPU,
user + system; a PostgreSQL server's own CPU is not in it, as it is not in a server worker's).
It prints the median µs per call of each way, their difference and ratio, and the difference as
a share of the request path the call sits on: an estimate, from the server CPU per request of
the last `make bench` tables in bench/README.md.

    python -m bench.statements [--json] [--batches 20] [--calls 200]

Like bench.run, on SQLite (a temporary file) or, when DATABASE_URL names a PostgreSQL server, on
a new database there, migrated, and dropped at the end; with the benchmark servers' settings
(bench.settings, DEBUG off). bench.run passes --use-database-url with a database it made.
"""

import argparse
import base64
import gc
import itertools
import json
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from bench.processes import Databases, is_postgres, server_env

# Server CPU ms per request of the paths, from bench/README.md's last `make bench` tables (e910a17):
# (4) GET me, (2) otp/validate wrong code not locked, (6) login alone.
PATH_MS = {
    "sqlite": {"GET me": 1.10, "otp/validate wrong code": 1.42, "login": 30.21},
    "postgresql": {"GET me": 1.26, "otp/validate wrong code": 1.74, "login": 28.75},
}


@dataclass
class Site:
    name: str  # the call site
    path: str  # the request path it runs on (a key of PATH_MS)
    rows: Callable[[], object]  # the call as it is, through rows.py
    orm: Callable[[], object]  # the same through the ORM
    refill: Callable[[int], None] | None = None  # before each batch, untimed (fresh rows to insert)
    check: Callable[[], bool] = lambda: True  # after the timing: every call did its work


def sites() -> list[Site]:
    """The six call sites on realistic rows: an account with a password, a full session of it
    saved by the session store itself, and 1,000 other accounts."""
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils import timezone

    from otp_app import backends, clock, rows
    from otp_app.models import SecurityEvent, Session, UserModel
    from otp_app.session_backends.db import stored_key

    UserModel.objects.bulk_create(
        UserModel(email=f"other{n}@example.com", name=f"Other {n}", password="!") for n in range(1000)
    )
    user = UserModel.objects.create_user("ann@example.com", "Ann", "bench: correct horse battery staple")
    store = Session.get_session_store_class()()
    store.update({SESSION_KEY: str(user.pk), BACKEND_SESSION_KEY: backends.PATH})
    store[HASH_SESSION_KEY] = user.get_session_auth_hash()
    store.save()
    key, now, pk, user_id = stored_key(store.session_key), clock.as_datetime(clock.now()), user.pk, str(user.pk)
    attempts = itertools.count(user.failed_attempts)  # each wrong code counts one more: a row really changes
    events: list = []

    def count_rows():
        n = next(attempts)
        return rows.update(
            UserModel, {"failed_attempts": n + 1, "locked_until": None}, ("id", "=", pk), ("failed_attempts", "=", n)
        )

    def count_orm():
        n = next(attempts)
        return UserModel.objects.filter(pk=pk, failed_attempts=n).update(failed_attempts=n + 1, locked_until=None)

    def refill(calls):
        events[:] = [
            SecurityEvent(
                kind=SecurityEvent.Kind.LOGIN_SUCCEEDED,
                created_at=now,
                user=user,
                email=user.email,
                client_address="127.0.0.1",
                user_agent="bench",
                detail={},
            )
            for _ in range(calls)
        ]

    found = [
        Site(
            "1 session_backends/db.py load(): session + account",
            "GET me",
            lambda: rows.first_with(Session, "user", ("session_key", "=", key), ("expire_date", ">", now)),
            lambda: Session.objects.select_related("user").filter(session_key=key, expire_date__gt=now).first(),
        ),
        Site(
            "2 models.py get_by_natural_key: account by email",
            "login",
            lambda: rows.first(UserModel, ("email", "=", user.email)),
            lambda: UserModel.objects.get(email=user.email),
        ),
        Site(
            "3 backends.py account(): account by id (a fallback, rarely run)",
            "GET me",
            lambda: rows.first(UserModel, ("id", "=", user_id)),
            lambda: UserModel._default_manager.filter(pk=user_id).first(),
        ),
        Site(
            "4 services.py _count_attempt: UPDATE count",
            "otp/validate wrong code",
            count_rows,
            count_orm,
            check=lambda: UserModel.objects.get(pk=pk).failed_attempts == next(attempts),
        ),
        Site(
            "5 services.py update_last_login: UPDATE",
            "login",
            lambda: rows.update(UserModel, {"last_login": timezone.now()}, ("id", "=", pk)),
            lambda: UserModel.objects.filter(pk=pk).update(last_login=timezone.now()),
        ),
        Site(
            "6 audit.py record: INSERT a security event",
            "login",
            lambda: rows.add(events.pop()),
            lambda: events.pop().save(force_insert=True),
            refill,
        ),
    ]
    # Both ways give the same answer.
    session, account = found[0].rows()
    assert session.pk == found[0].orm().pk == key and account.pk == pk, "session read"
    assert found[1].rows().pk == found[1].orm().pk == found[2].rows().pk == found[2].orm().pk == pk, "account read"
    assert found[3].rows() == found[3].orm() == found[4].rows() == found[4].orm() == 1, "UPDATE"
    refill(2)
    found[5].rows(), found[5].orm()
    assert SecurityEvent.objects.filter(user=user).count() == 2, "INSERT"
    return found


def timed(site: Site, batches: int, calls: int) -> dict:
    """µs per call of each way in each batch; the ways take turns going first."""
    per_call = {"rows": [], "orm": []}
    for batch in range(-1, batches):  # batch -1: warm-up, not kept
        for way in ("rows", "orm") if batch % 2 == 0 else ("orm", "rows"):
            call = getattr(site, way)
            if site.refill:
                site.refill(calls)
            gc.collect()
            started = time.process_time()
            for _ in range(calls):
                call()
            if batch >= 0:
                per_call[way].append((time.process_time() - started) / calls * 1e6)
    return per_call


def measure(batches: int, calls: int) -> dict:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0, interactive=False)
    assert not connection.queries_logged, "DEBUG on: every query would be recorded"
    vendor = connection.vendor
    results = []
    for site in sites():
        per_call = timed(site, batches, calls)
        assert site.check(), f"{site.name}: not every call changed the row"
        rows_us, orm_us = statistics.median(per_call["rows"]), statistics.median(per_call["orm"])
        pairs = statistics.quantiles([o - r for r, o in zip(per_call["rows"], per_call["orm"], strict=True)], n=4)
        path_ms = PATH_MS[vendor][site.path]
        results.append(
            {
                "site": site.name,
                "path": site.path,
                "rows_us": round(rows_us, 1),
                "orm_us": round(orm_us, 1),
                "difference_us": round(orm_us - rows_us, 1),
                "difference_iqr_us": [round(pairs[0], 1), round(pairs[2], 1)],
                "ratio": round(orm_us / rows_us, 2),
                "path_ms": path_ms,
                "share_of_path": round((orm_us - rows_us) / (path_ms * 1000), 4),
                "batches_us": {way: [round(value, 1) for value in values] for way, values in per_call.items()},
            }
        )
    connection.close()
    return {
        "database": vendor,
        "server_version": (
            f"{connection.pg_version // 10000}.{connection.pg_version % 100}"
            if vendor == "postgresql"
            else connection.Database.sqlite_version
        ),
        "django": django.get_version(),
        "python": sys.version.split()[0],
        "batches": batches,
        "calls": calls,
        "sites": results,
    }


def table(result: dict, path_ms: dict | None = None, source: str = "bench/README.md's last `make bench`") -> str:
    """The Markdown table; `path_ms` (ms per request by path) may replace the README's figures."""
    path_ms = {**PATH_MS[result["database"]], **(path_ms or {})}
    lines = [
        f"{result['database']} {result['server_version']}, Django {result['django']}, Python {result['python']}: "
        f"{result['batches']} batches × {result['calls']} calls of each way, median CPU µs per call "
        "(in brackets: the middle half of the batches' differences). The share of the path, how much more "
        "the path would cost with the ORM, is an estimate: the difference over the path's server CPU per "
        f"request in {source}.",
        "",
        "| call site | rows.py µs | ORM µs | ORM − rows.py µs | ORM ÷ rows.py | ≈ share of the path |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for site in result["sites"]:
        low, high = site["difference_iqr_us"]
        ms = path_ms[site["path"]]
        lines.append(
            f"| {site['site']} | {site['rows_us']:.1f} | {site['orm_us']:.1f} | {site['difference_us']:.1f} "
            f"({low:.1f}–{high:.1f}) | {site['ratio']:.2f}× | {site['difference_us'] / (ms * 1000):.1%} of "
            f"{site['path']} ({ms:.2f} ms) |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="print JSON instead of the Markdown table")
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--calls", type=int, default=200, help="calls of each way per batch")
    parser.add_argument("--use-database-url", action="store_true", help="use DATABASE_URL as it is (bench.run's)")
    args = parser.parse_args(argv)
    databases = None
    if not args.use_database_url:
        server = os.environ.get("DATABASE_URL", "")
        databases = Databases(server if is_postgres(server) else None)
        secret_key, encryption_key = secrets.token_urlsafe(64), base64.urlsafe_b64encode(os.urandom(32)).decode()
        os.environ.update(server_env(databases.new("statements"), None, secret_key, encryption_key))
    try:
        result = measure(args.batches, args.calls)
    finally:
        if databases:
            databases.drop_all()
    print(json.dumps(result) if args.json else table(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
