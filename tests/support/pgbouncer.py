"""Debian's PgBouncer in front of the tests' PostgreSQL, in transaction pooling mode: a few
server connections shared by every connection of the instances, as a deployment that pools them
runs it (DATABASE_TRANSACTION_POOLING in otp_project/settings.py)."""

import os
import shutil
import subprocess
from pathlib import Path
from urllib.parse import unquote, urlsplit

from tests.support import prerequisites
from tests.support.server import accepts_connections, free_port, stop

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def require() -> None:
    """Skip the test without PgBouncer, except in CI, which installs it (.ci/run)."""
    if not os.access(PGBOUNCER, os.X_OK):
        prerequisites.missing(prerequisites.PGBOUNCER, f"PgBouncer is not installed ({PGBOUNCER})")


class PgBouncer:
    """PgBouncer on a free port of 127.0.0.1, passing every database on to the PostgreSQL server
    of `upstream` (a postgres:// URL) through at most `pool_size` server connections each."""

    def __init__(self, workdir: Path, *, upstream: str, pool_size: int = 2):
        server = urlsplit(upstream)
        self.user = unquote(server.username or "postgres")
        self.port = free_port()
        self.log = workdir / "pgbouncer.log"
        self.config = workdir / "pgbouncer.ini"
        users = workdir / "userlist.txt"
        # Clients are trusted (a private port for the test's processes); towards the server,
        # PgBouncer logs in as the client's user with the password written here, if any.
        users.write_text(f'"{self.user}" "{unquote(server.password or "")}"\n')
        self.config.write_text(
            "[databases]\n"
            f"* = host={server.hostname or '127.0.0.1'} port={server.port or 5432}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {users}\n"
            # A server connection goes back to the pool at each commit: the next transaction on
            # it may be another client's, and no session state is reset in between.
            "pool_mode = transaction\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 500\n"
        )
        self.process = None

    def url_of(self, database_url: str) -> str:
        """The URL of the database of `database_url` (on the upstream server) through PgBouncer."""
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database_url.rsplit('/', 1)[1]}"

    def start(self) -> "PgBouncer":
        # PgBouncer refuses to run as root (a container, CI): it reads its files, then becomes
        # `nobody`. It logs to stderr, which the test's process writes.
        user = ["--user", "nobody"] if os.geteuid() == 0 else []
        with self.log.open("ab") as log:
            self.process = subprocess.Popen([PGBOUNCER, *user, str(self.config)], stdout=log, stderr=subprocess.STDOUT)
        if accepts_connections(self.process, self.port):
            return self
        self.stop()
        raise RuntimeError(f"PgBouncer did not start: {self.log.read_text()}")

    def stop(self) -> None:
        stop(self.process, timeout=10)
