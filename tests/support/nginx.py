"""Debian's nginx in front of a test server, run from docs/nginx.conf: the file the README shows,
with the test's ports in place of its 80 and 8000."""

import os
import shutil
import subprocess
from pathlib import Path

from tests.support import prerequisites
from tests.support.server import ROOT, accepts_connections, free_port, stop

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
CONFIG = ROOT / "docs" / "nginx.conf"


def require() -> None:
    """Skip the test without nginx, except in CI, which installs it (.ci/run)."""
    if not os.access(NGINX, os.X_OK):
        prerequisites.missing(prerequisites.NGINX, f"nginx is not installed ({NGINX})")


class Nginx:
    def __init__(self, workdir: Path, *, upstream_port: int):
        self.workdir = workdir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.server_block = workdir / "api.conf"
        self.server_block.write_text(
            _replace_once(
                _replace_once(CONFIG.read_text(), "listen 80;", f"listen 127.0.0.1:{self.port};"),
                "http://127.0.0.1:8000;",
                f"http://127.0.0.1:{upstream_port};",
            )
        )
        temp = "\n".join(
            f"    {kind}_temp_path {workdir / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # Run as root (a container, CI), nginx would hand its workers to `nobody`, who cannot
        # enter the test's private directory.
        user = "user root;" if os.geteuid() == 0 else ""
        (workdir / "nginx.conf").write_text(
            f"{user}\npid {workdir / 'nginx.pid'};\nworker_processes 1;\n"
            "events { worker_connections 512; }\n"
            f"http {{\n    access_log off;\n{temp}\n    include {self.server_block};\n}}\n"
        )
        self.process = None

    def start(self) -> "Nginx":
        command = [
            NGINX,
            "-p",
            str(self.workdir),
            "-c",
            str(self.workdir / "nginx.conf"),
            "-e",
            str(self.workdir / "error.log"),
            "-g",
            "daemon off;",
        ]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        if accepts_connections(self.process, self.port):
            return self
        self.stop()
        raise RuntimeError(f"nginx did not start: {(self.workdir / 'error.log').read_text()}")

    def stop(self) -> None:
        stop(self.process, timeout=10)


def _replace_once(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"docs/nginx.conf should hold {old!r} once"
    return text.replace(old, new)
