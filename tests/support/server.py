"""A real server process for end-to-end tests: gunicorn, production settings, its own SQLite file."""

import base64
import contextlib
import hashlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]  # the repository


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://"))


def _on_server_of(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(statement)


def create_database(on_server_of: str, prefix: str = "e2e") -> str:
    """A new, empty PostgreSQL database on the server of the URL `on_server_of`; its URL."""
    name = f"{prefix}_{os.urandom(6).hex()}"
    _on_server_of(on_server_of, f'CREATE DATABASE "{name}"')
    return on_server_of.rsplit("/", 1)[0] + "/" + name


def drop_database(url: str) -> None:
    if is_postgres(url):
        _on_server_of(url, f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


def server_database_url(workdir: Path) -> str:
    """A fresh database for a server: a new PostgreSQL database when the tests run on
    PostgreSQL (DATABASE_URL), else a SQLite file in `workdir`."""
    url = os.environ.get("DATABASE_URL", "")
    return create_database(url) if is_postgres(url) else f"sqlite:///{workdir / 'db.sqlite3'}"


def server_redis_url() -> str | None:
    """The tests' Redis (REDIS_URL) on the next database number: the test process clears its own."""
    url = os.environ.get("REDIS_URL")
    if not url:
        return None
    base, _, number = url.rpartition("/")
    return f"{base}/{(int(number or 0) + 1) % 16}" if number.isdigit() else url


class Server:
    """gunicorn serving the project on 127.0.0.1, started and stopped by a fixture."""

    def __init__(
        self,
        workdir: Path,
        *,
        workers: int = 2,
        threads: int = 8,
        env: dict | None = None,
        database_url: str | None = None,
        port: int | None = None,
    ):
        # `port`: a fixed port (say 8000, where a front end expects the API); else a free one.
        self.fixed_port = port is not None
        self.port = port if port is not None else free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / f"server-{self.port}.log"
        inherited = {key: value for key, value in os.environ.items() if key not in ("CACHE_URL", "REDIS_URL")}
        redis_url = server_redis_url()
        self.env = {
            **inherited,
            "DEBUG": "false",
            "SECRET_KEY": "end-to-end-tests-" + os.urandom(32).hex(),
            "TWOFA_ENCRYPTION_KEYS": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": database_url or server_database_url(workdir),
            "SECURE_SSL_REDIRECT": "false",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            # A deployment that serves the React app of the tests names its origin.
            "CORS_ALLOWED_ORIGINS": "http://localhost:3000",
            "TWOFA_REGISTER_RATE": "100000/hour",
            "TWOFA_LOGIN_FAILURES_PER_ADDRESS": "100000/15m",
            "GUNICORN_ACCESS_LOG": "",
            **({"REDIS_URL": redis_url} if redis_url else {}),
            **(env or {}),
        }
        # Servers of one database are instances of one service and share its counters in Redis;
        # a server of another database starts with none.
        self.env.setdefault(
            "REDIS_KEY_PREFIX", "otp-" + hashlib.sha256(self.env["DATABASE_URL"].encode()).hexdigest()[:12]
        )
        self.command = [
            sys.executable,
            "-m",
            "gunicorn",
            "--config",
            str(ROOT / "gunicorn.conf.py"),
            "otp_project.wsgi",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--threads",
            str(threads),
        ]
        self.process = None

    def start(self, *, migrate: bool = True) -> "Server":
        if migrate:
            migrate_command = [sys.executable, "manage.py", "migrate", "--noinput", "-v0"]
            subprocess.run(migrate_command, cwd=ROOT, env=self.env, check=True)
        for _attempt in range(3):  # a free port can be taken by another process before gunicorn binds it
            if self._launch():
                return self
            if self.fixed_port:
                break  # a fixed port is the point: no other will do
            self._use_port(free_port())
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def _use_port(self, port: int) -> None:
        bind = self.command.index("--bind") + 1
        self.command[bind] = f"127.0.0.1:{port}"
        self.port, self.url = port, f"http://127.0.0.1:{port}"

    def _launch(self) -> bool:
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self.log.open("ab"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                requests.get(self.url + "/healthz", timeout=5)
                return True
            except requests.RequestException:  # not listening yet, or the workers still booting
                time.sleep(0.1)
        self.stop()
        return False

    def stop(self) -> None:
        stop(self.process, timeout=15)


def accepts_connections(process: subprocess.Popen, port: int, *, timeout: float = 10) -> bool:
    """Whether `process` accepts connections on 127.0.0.1:`port` within `timeout` seconds; False
    at once if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


def stop(process: subprocess.Popen | None, *, timeout: float) -> None:
    """Ask `process` to end; kill it if it has not within `timeout` seconds."""
    if process and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def serving(workdir: Path, **options):
    """A started Server (options as for Server), stopped on leaving the block, and its database
    dropped: its log is whole once the block is left."""
    server = Server(workdir, **options)
    try:
        yield server.start()
    finally:
        server.stop()
        drop_database(server.env["DATABASE_URL"])
