"""The benchmark's processes and their metering: gunicorn servers (started, health-checked,
stopped), the load process that drives them (bench/load.py), the databases they use, and the
CPU each spends, read from /proc (and PostgreSQL's and Redis's, when they run here)."""

import json
import os
import platform
import queue
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
PYTHON = sys.executable
TICK = os.sysconf("SC_CLK_TCK")
HUGE = "1000000000"


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- /proc ----------------------------------------------------------------------------------------
def _stat_fields(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rsplit(")", 1)[1].split()


def process_cpu_ticks(pid: int, *, reaped_children: bool = False) -> int:
    fields = _stat_fields(pid)  # fields[11:15]: utime, stime, cutime, cstime
    ticks = int(fields[11]) + int(fields[12])
    if reaped_children:
        ticks += int(fields[13]) + int(fields[14])
    return ticks


def children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listing:
            return [int(child) for child in listing.read().split()]
    except FileNotFoundError:
        return []


def memory_kib(pid: int) -> dict:
    values = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith(("VmHWM:", "VmRSS:")):
                name, amount = line.split(":")
                values[name] = int(amount.split()[0])
    return values


def machine_busy_ticks() -> tuple[int, int]:
    with open("/proc/stat") as stat:
        numbers = [int(value) for value in stat.readline().split()[1:]]
    idle = numbers[3] + numbers[4]
    return sum(numbers) - idle, sum(numbers)


# --- databases ------------------------------------------------------------------------------------
def is_postgres(url: str) -> bool:
    return url.startswith(("postgres://", "postgresql://", "pgsql://"))


def _postgres_admin(url: str, statement: str) -> None:
    import psycopg

    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as admin:
        admin.execute(statement)


class Databases:
    """Fresh databases for one run: SQLite files in a temporary folder, or new PostgreSQL databases."""

    def __init__(self, postgres_url: str | None):
        self.postgres_url = postgres_url
        self.folder = Path(tempfile.mkdtemp(prefix="otp-bench-"))
        self.created: list[str] = []

    def new(self, name: str, template: str | None = None) -> str:
        if self.postgres_url:
            database = f"bench_{name}_{secrets.token_hex(4)}"
            source = f' TEMPLATE "{template.rsplit("/", 1)[1]}"' if template else ""
            _postgres_admin(self.postgres_url, f'CREATE DATABASE "{database}"{source}')
            url = self.postgres_url.rsplit("/", 1)[0] + "/" + database
            self.created.append(url)
            return url
        path = self.folder / f"{name}.sqlite3"
        if template:
            source = template.removeprefix("sqlite:///")
            with sqlite3.connect(source) as connection:
                connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            shutil.copyfile(source, path)
        return f"sqlite:///{path}"

    def drop_all(self) -> None:
        for url in self.created:
            try:
                _postgres_admin(url, f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')
            except Exception as error:  # noqa: BLE001 - cleanup goes on
                log(f"could not drop {url}: {error}")
        self.created = []
        shutil.rmtree(self.folder, ignore_errors=True)


class ExternalCpu:
    """CPU of the PostgreSQL backends serving our databases, and of the Redis server: with them the
    database work happens outside gunicorn (on SQLite it is inside, in the workers' CPU)."""

    def __init__(self, postgres_url: str | None, redis_url: str | None):
        self.admin = self.redis_pid = None
        self.databases: list[str] = []
        if postgres_url:
            import psycopg

            self.admin = psycopg.connect(postgres_url.rsplit("/", 1)[0] + "/postgres", autocommit=True)
        if redis_url:
            import redis

            client = redis.Redis.from_url(redis_url)
            self.redis_pid = int(client.info("server")["process_id"])
            client.close()

    def watch(self, url: str) -> None:
        if self.admin:
            self.databases.append(url.rsplit("/", 1)[1])

    def snapshot(self) -> dict:
        result = {"postgres": {}, "redis": None}
        if self.admin and self.databases:
            rows = self.admin.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = ANY(%s) AND pid <> pg_backend_pid()", [self.databases]
            ).fetchall()
            for (pid,) in rows:
                try:
                    result["postgres"][pid] = process_cpu_ticks(pid)
                except (FileNotFoundError, ProcessLookupError):
                    pass
        if self.redis_pid:
            try:
                result["redis"] = process_cpu_ticks(self.redis_pid)
            except FileNotFoundError:
                pass
        return result

    @staticmethod
    def delta_ms(before: dict, after: dict) -> dict:
        # A backend that started meanwhile counts whole; one that ended meanwhile is lost (rare:
        # connections live CONN_MAX_AGE seconds).
        postgres = sum(ticks - before["postgres"].get(pid, 0) for pid, ticks in after["postgres"].items())
        redis = (
            (after["redis"] - before["redis"]) if after["redis"] is not None and before["redis"] is not None else None
        )
        return {
            "postgres_cpu_ms": round(postgres * 1000 / TICK, 1) if before["postgres"] or after["postgres"] else None,
            "redis_cpu_ms": round(redis * 1000 / TICK, 1) if redis is not None else None,
        }

    def close(self) -> None:
        if self.admin:
            self.admin.close()
            self.admin = None


# --- servers --------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """gunicorn -c gunicorn.conf.py bench.wsgi on 127.0.0.1, in its own process group."""

    def __init__(self, name: str, env: dict, logdir: Path):
        self.name, self.env, self.logdir = name, env, logdir
        self.process = None
        self.port = None
        self.log = logdir / f"server-{name}.log"

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "Server":
        for _attempt in range(3):
            self.port = free_port()
            env = {**self.env, "GUNICORN_BIND": f"127.0.0.1:{self.port}"}
            command = [
                PYTHON,
                "-m",
                "gunicorn",
                "-c",
                str(ROOT / "gunicorn.conf.py"),
                "bench.wsgi",
                # Each server its own: the default control socket is one path for every gunicorn.
                "--no-control-socket",
            ]
            with self.log.open("ab") as output:
                self.process = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=env,
                    stdout=output,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            if self._wait_healthy():
                workers = int(env.get("WEB_CONCURRENCY") or os.cpu_count() or 2)
                deadline = time.monotonic() + 30
                while len(self.workers()) < workers and time.monotonic() < deadline:
                    time.sleep(0.1)
                log(f"server {self.name} on {self.base}: master {self.process.pid}, workers {self.workers()}")
                return self
            self.stop()
        raise RuntimeError(f"server {self.name} did not start; see {self.log}")

    def _wait_healthy(self) -> bool:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and self.process.poll() is None:
            try:
                with urllib.request.urlopen(self.base + "/healthz", timeout=5) as reply:
                    if reply.status == 200:
                        return True
            except OSError:
                time.sleep(0.2)
        return False

    def workers(self) -> list[int]:
        return children(self.process.pid) if self.process else []

    def cpu_ms(self) -> tuple[float, dict]:
        """CPU so far of the master, its live workers and the workers it has reaped; and of each
        live worker, to see how a run's load was shared among them."""
        workers = {}
        for pid in self.workers():
            try:
                workers[pid] = process_cpu_ticks(pid) * 1000 / TICK
            except (FileNotFoundError, ProcessLookupError):
                pass  # it exited between the listing and the read: counted once reaped
        master = process_cpu_ticks(self.process.pid, reaped_children=True) * 1000 / TICK
        return master + sum(workers.values()), workers

    def memory(self) -> dict:
        result = {}
        for pid in self.workers():
            try:
                result[str(pid)] = memory_kib(pid)
            except FileNotFoundError:
                pass
        return result

    def processes(self) -> dict:
        """Workers and their threads, as running: the configuration gunicorn.conf.py gave."""
        threads = {}
        for pid in self.workers():
            with open(f"/proc/{pid}/status") as status:
                threads[str(pid)] = next(int(line.split()[1]) for line in status if line.startswith("Threads:"))
        return {"workers": len(threads), "threads_per_worker": threads}

    def stop(self) -> None:
        if not self.process or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        except ProcessLookupError:
            pass


# --- the load process -----------------------------------------------------------------------------
class LoadProcess:
    def __init__(self, logdir: Path):
        self.stderr = (logdir / "load.log").open("ab")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "bench.load"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
            bufsize=1,
            start_new_session=True,
        )
        self.events: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.process.stdout:
            self.events.put(json.loads(line))
        self.events.put({"event": "exited"})

    def send(self, message: dict) -> None:
        self.process.stdin.write(json.dumps(message) + "\n")
        self.process.stdin.flush()

    def expect(self, event: str, timeout: float) -> dict:
        try:
            message = self.events.get(timeout=timeout)
        except queue.Empty:
            raise RuntimeError(f"the load process did not answer {event!r} within {timeout:.0f} s") from None
        if message.get("event") != event:
            raise RuntimeError(f"the load process answered {message} instead of {event!r}")
        return message

    def prep(self, base: str, group: str, kind: str, count: int, register_base: str | None = None) -> dict:
        self.send(
            {"cmd": "prep", "base": base, "group": group, "kind": kind, "count": count, "register_base": register_base}
        )
        result = self.expect("prepared", timeout=600)
        if result["created"] < count:
            raise RuntimeError(f"prepared {result['created']} of {count} {group} accounts: {result['failures']}")
        return result

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                self.send({"cmd": "quit"})
                self.process.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.stderr.close()


def server_env(database_url: str, redis_url: str | None, secret_key: str, encryption_key: str) -> dict:
    inherited = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "REDIS_URL", "CACHE_URL", "DJANGO_SETTINGS_MODULE", "WEB_CONCURRENCY")
        and not key.startswith(("TWOFA_", "GUNICORN_"))
    }
    return {
        **inherited,
        "DJANGO_SETTINGS_MODULE": "bench.settings",
        "DEBUG": "false",
        "SECRET_KEY": secret_key,
        "TWOFA_ENCRYPTION_KEYS": encryption_key,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": database_url,
        # Plain HTTP on the loopback: no redirect to HTTPS, cookies without the Secure flag.
        "SECURE_SSL_REDIRECT": "false",
        "SESSION_COOKIE_SECURE": "false",
        "CSRF_COOKIE_SECURE": "false",
        # Every request comes from 127.0.0.1: the per-address limits must not get in the way.
        "TWOFA_REGISTER_RATE": "100000000/hour",
        "TWOFA_LOGIN_FAILURES_PER_ACCOUNT": "100000000/15m",
        "TWOFA_LOGIN_FAILURES_PER_ADDRESS": "100000000/15m",
        "TWOFA_PASSKEY_SIGN_IN_RATE": "100000000/hour",
        "GUNICORN_ACCESS_LOG": "",
        # A recycled worker's boot would be billed to whichever scenario it fell in.
        "GUNICORN_MAX_REQUESTS": "0",
        "SESSION_COOKIE_AGE": "3600",
        **({"REDIS_URL": redis_url} if redis_url else {}),
    }


def migrate(env: dict) -> None:
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)


def machine() -> dict:
    model = next(
        (line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?"
    )
    memory = next(int(line.split()[1]) for line in open("/proc/meminfo") if line.startswith("MemTotal"))
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "ram_gib": round(memory / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
        "loadavg_at_start": open("/proc/loadavg").read().split()[:3],
    }


def git_revision() -> dict:
    def git(*args):
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {
        "commit": git("rev-parse", "--short", "HEAD"),
        "dirty": bool(git("status", "--porcelain", "--", "otp_app", "otp_project")),
    }
