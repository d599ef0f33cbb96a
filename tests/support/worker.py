"""A real task worker for end-to-end tests: `manage.py db_worker` in its own process, with a
server's settings (its database, its mail server); and the tasks as that database holds them."""

import itertools
import json
import sqlite3
import subprocess
import sys
import time

from tests.support.server import ROOT, Server, is_postgres, stop

TASKS_TABLE = "django_tasks_database_dbtaskresult"
_numbers = itertools.count(1)


class Worker:
    def __init__(self, server: Server, *, env: dict | None = None):
        self.env = {**server.env, **(env or {})}
        self.log = server.log.with_name(f"worker-{server.port}-{next(_numbers)}.log")
        self.process = None

    def start(self) -> "Worker":
        command = [sys.executable, "manage.py", "db_worker", "--no-reload", "--no-startup-delay", "--interval", "0.1"]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )
        return self

    def kill(self) -> None:
        """SIGKILL: the worker dies at once, whatever it was doing."""
        self.process.kill()
        self.process.wait(timeout=15)

    def stop(self) -> None:
        stop(self.process, timeout=15)


def tasks(database_url: str, *, to: str | None = None) -> list[dict]:
    """The tasks in the database of `database_url` (those of messages `to` an address), oldest
    first: status, worker_ids, args."""
    query = f"SELECT status, worker_ids, args_kwargs FROM {TASKS_TABLE} ORDER BY enqueued_at"  # noqa: S608
    if is_postgres(database_url):
        import psycopg

        with psycopg.connect(database_url) as connection:
            rows = connection.execute(query).fetchall()
    else:
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as connection:
            rows = connection.execute(query).fetchall()

    def parsed(value):  # JSON columns: text in SQLite, already parsed by psycopg
        return json.loads(value) if isinstance(value, str) else value

    found = [{"status": status, "worker_ids": parsed(workers), "args": parsed(args)} for status, workers, args in rows]
    return [task for task in found if to is None or task["args"]["kwargs"].get("to") == to]


def wait_until_done(database_url: str, *, to: str | None = None, timeout: float = 60) -> list[dict]:
    """The tasks (as `tasks`) once none is ready or running any more (polling, up to `timeout` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = tasks(database_url, to=to)
        if all(task["status"] in ("SUCCESSFUL", "FAILED") for task in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"tasks still to do after {timeout} s: {tasks(database_url, to=to)}")


def wait_for_status(database_url: str, status: str, *, to: str | None = None, timeout: float = 60) -> list[dict]:
    """The tasks (as `tasks`) once one of them has `status` (polling, up to `timeout` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = tasks(database_url, to=to)
        if any(task["status"] == status for task in found):
            return found
        time.sleep(0.1)
    raise AssertionError(f"no task {status} after {timeout} s: {tasks(database_url, to=to)}")
