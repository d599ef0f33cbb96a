"""A real server process for end-to-end tests: gunicorn, production settings, its own SQLite file."""
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn serving the project on 127.0.0.1, started and stopped by a fixture."""

    def __init__(self, workdir: Path, *, workers: int = 2, threads: int = 8, env: dict | None = None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = workdir / "server.log"
        self.env = {
            **os.environ,
            "DEBUG": "false",
            "SECRET_KEY": "end-to-end-tests-" + os.urandom(16).hex(),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": f"sqlite:///{workdir / 'db.sqlite3'}",
            "SESSION_COOKIE_SECURE": "false",
            "CSRF_COOKIE_SECURE": "false",
            "TWOFA_REGISTER_RATE": "100000/hour",
            "TWOFA_LOGIN_FAILURES_PER_ADDRESS": "100000/15m",
            **(env or {}),
        }
        self.command = [
            sys.executable, "-m", "gunicorn", "otp_project.wsgi",
            "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), "--threads", str(threads),
            "--worker-class", "gthread", "--timeout", "60",
        ]
        self.process = None

    def start(self) -> "Server":
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=self.env, check=True)
        self.process = subprocess.Popen(
            self.command, cwd=ROOT, env=self.env, stdout=self.log.open("wb"), stderr=subprocess.STDOUT
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()}")
            try:
                requests.get(self.url + "/api/auth/me", timeout=1)
                return self
            except requests.ConnectionError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start: {self.log.read_text()}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
