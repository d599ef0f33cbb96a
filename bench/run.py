"""The benchmark driver: `python -m bench.run [--quick] [--scale]` (or `make bench`).

1. Starts gunicorn with gunicorn.conf.py (production settings, DEBUG off) on a fresh database:
   SQLite, or PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set. Several servers share
   that database: M (the production rules), G (the lockout threshold out of reach, for wrong
   codes that never lock), P (the PBKDF2 comparison hasher, bench/hashers.py) and, for the
   concurrent-writers check, W (4 workers).
2. Prepares accounts through the API, from a separate load process (bench/load.py).
3. Counts SQL queries and password hashes per endpoint, and times the hasher alone
   (bench/inprocess.py, its own database).
4. Runs rounds: in each, every floor and every scenario once, interleaved, on a noisy machine.
   Server CPU per request comes from /proc (gunicorn master, live workers and reaped ones).
5. Optionally (--scale) compares latency with 1,000 and with 1,000,000 accounts.
Prints a Markdown table, writes bench/results/bench-<time>.json (and latest.json), and stops
everything it started, also on Ctrl-C or an error.
"""

import argparse
import base64
import json
import os
import platform
import queue
import secrets
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
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


# --- measuring ------------------------------------------------------------------------------------
def measure(load: LoadProcess, server: Server, spec: dict, external: "ExternalCpu | None" = None) -> dict:
    """One run of one scenario: setup (unmeasured), then CPU of `server` around the load."""
    load.send({"cmd": "run", "base": server.base, **spec})
    load.expect("ready", timeout=300)
    external_before = external.snapshot() if external else None
    busy_before, _ = machine_busy_ticks()
    cpu_before, workers_before = server.cpu_ms()
    load.send({"cmd": "go"})
    result = load.expect("done", timeout=spec["duration"] + 120)
    cpu_after, workers_after = server.cpu_ms()
    cpu = cpu_after - cpu_before
    workers = [ms - workers_before[pid] for pid, ms in workers_after.items() if pid in workers_before]
    busy = (machine_busy_ticks()[0] - busy_before) * 1000 / TICK
    if external:
        result.update(ExternalCpu.delta_ms(external_before, external.snapshot()))
        busy -= (result.get("postgres_cpu_ms") or 0) + (result.get("redis_cpu_ms") or 0)
    requests = sum(
        sum(by_status.values()) for label, by_status in result["statuses"].items() if label != "login+validate"
    )
    result.update(
        server=server.name,
        requests=requests,
        server_cpu_ms=round(cpu, 1),
        # The busiest worker's part of the workers' CPU: 1/workers when the load was shared evenly.
        busiest_worker_share=round(max(workers) / sum(workers), 3) if workers and sum(workers) else None,
        # Everything else the machine did meanwhile: other people's work, the measure of noise.
        foreign_cpu_ms=round(max(0.0, busy - cpu - result["client_cpu_s"] * 1000), 1),
    )
    return result


def percentile(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(fraction * (len(ordered) - 1))))]


def median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def summarise(runs: list[dict], latency_label: str) -> dict:
    """Per scenario over rounds: rates, CPU and floor ratios per run (their median), latencies pooled."""
    rates, unit_rates, cpu_per_request, cpu_per_unit, ratios = [], [], [], [], []
    latencies, unexpected, errors, foreign = [], {}, {}, []
    postgres_per_unit, redis_per_unit = [], []
    for run in runs:
        rates.append(run["requests"] / run["elapsed"])
        unit_rates.append(run["completed"] / run["elapsed"])
        per_request = run["server_cpu_ms"] / run["requests"] if run["requests"] else None
        per_unit = run["server_cpu_ms"] / run["completed"] if run["completed"] else None
        cpu_per_request.append(per_request)
        cpu_per_unit.append(per_unit)
        if run.get("ratio") is not None:
            ratios.append(run["ratio"])
        latencies += run["latencies_ms"].get(latency_label, [])
        for key, count in run["unexpected"].items():
            unexpected[key] = unexpected.get(key, 0) + count
        for key, count in run["errors"].items():
            errors[key] = errors.get(key, 0) + count
        foreign.append(run["foreign_cpu_ms"] / 1000 / run["elapsed"])
        if run.get("postgres_cpu_ms") is not None and run["completed"]:
            postgres_per_unit.append(run["postgres_cpu_ms"] / run["completed"])
        if run.get("redis_cpu_ms") is not None and run["completed"]:
            redis_per_unit.append(run["redis_cpu_ms"] / run["completed"])
    return {
        "rounds": len(runs),
        "requests_per_s": median(rates),
        "units_per_s": median(unit_rates),
        "p50_ms": percentile(latencies, 0.50),
        "p99_ms": percentile(latencies, 0.99),
        "samples": len(latencies),
        "cpu_ms_per_request": median(cpu_per_request),
        "cpu_ms_per_unit": median(cpu_per_unit),
        "cpu_ms_per_unit_rounds": [round(value, 3) if value else None for value in cpu_per_unit],
        "ratio_to_row_floor": median(ratios),
        "ratio_rounds": [round(value, 3) if value else None for value in ratios],
        "unexpected": unexpected,
        "errors": errors,
        "status_5xx": sum(
            count
            for run in runs
            for label, by in run["statuses"].items()
            if label != "login+validate"
            for status, count in by.items()
            if int(status) >= 500
        ),
        "pool_waits": sum(run.get("pool_waits", 0) for run in runs),
        "foreign_cores_busy": median(foreign),
        "busiest_worker_share_rounds": [run.get("busiest_worker_share") for run in runs],
        "postgres_cpu_ms_per_unit": median(postgres_per_unit),
        "redis_cpu_ms_per_unit": median(redis_per_unit),
    }


# --- the plan -------------------------------------------------------------------------------------
FLOORS = [
    ("raw", "floor: raw WSGI, JSON constant", {"scenario": "get", "path": "/bench/raw"}),
    ("constant", "floor: bare DRF APIView, constant", {"scenario": "get", "path": "/bench/constant"}),
    ("row", "floor: APIView, one row by PK", {"scenario": "get", "path": "/bench/row?id={id}", "group": "plain"}),
    (
        "session-row",
        "floor: one row by PK behind a session",
        {"scenario": "get", "path": "/bench/session-row?id={id}", "group": "plain", "with_session": True},
    ),
    ("hash", "floor: one password check in an APIView", {"scenario": "get", "path": "/bench/hash"}),
]
SCENARIOS = [
    (
        "twofa",
        "(1) 2FA login: login + otp/validate",
        "M",
        {"scenario": "twofa_login", "group": "pool"},
        "login+validate",
    ),
    (
        "twofa-pbkdf2",
        "(1') same, PBKDF2-SHA256 390k hashed twice",
        "P",
        {"scenario": "twofa_login", "group": "pool-pbkdf2"},
        "login+validate",
    ),
    ("guess", "(2) otp/validate wrong code, not locked", "G", {"scenario": "guess", "group": "guess"}, "otp/validate"),
    ("locked", "(3) otp/validate while locked", "M", {"scenario": "locked", "group": "locked"}, "otp/validate"),
    (
        "me",
        "(4) GET me, full session",
        "M",
        {"scenario": "get", "path": "/api/auth/me", "group": "plain", "with_session": True},
        "GET",
    ),
    ("register", "(5) register", "M", {"scenario": "register"}, "register"),
    ("login", "(6) login alone (no 2FA: full session)", "M", {"scenario": "login", "group": "plain"}, "login"),
]
SQL_OF = {
    "raw": [],
    "constant": ["floor: bare APIView"],
    "row": ["floor: one row"],
    "session-row": ["floor: one row behind a session"],
    "hash": ["floor: one password hash"],
    "twofa": ["login (2FA: pending session)", "otp/validate correct code"],
    "twofa-pbkdf2": ["login (2FA: pending session)", "otp/validate correct code"],
    "guess": ["otp/validate wrong code (not locked)"],
    "locked": ["otp/validate while locked"],
    "me": ["GET me"],
    "register": ["register"],
    "login": ["login (no 2FA: full session)"],
}


FLOOR_KEYS = {"raw", "constant", "row", "session-row", "hash", "row@G"}
# One round. The one-row floor runs several times, so that every scenario is bracketed by a floor
# measured just before and just after it on the same server: the machine's noise drifts.
ROUND_ORDER = [
    "raw",
    "constant",
    "row",
    "session-row",
    "hash",
    "twofa",
    "twofa-pbkdf2",
    "row",
    "locked",
    "row",
    "me",
    "row",
    "register",
    "login",
    "row@G",
    "guess",
    "row@G",
]


def bracket_with_floors(sequence: list[tuple[str, dict]]) -> None:
    """Set each run's `ratio`: its CPU per unit over the mean of the nearest one-row floors
    measured before and after it in the round (on server G for G's runs, else on M)."""

    def cpu(run):
        return run["server_cpu_ms"] / run["completed"] if run["completed"] else None

    for index, (key, run) in enumerate(sequence):
        if key in ("row", "row@G"):
            continue
        floor_key = "row@G" if run["server"] == "G" else "row"
        before = next((cpu(r) for k, r in reversed(sequence[:index]) if k == floor_key), None)
        after = next((cpu(r) for k, r in sequence[index + 1 :] if k == floor_key), None)
        floors = [value for value in (before, after) if value]
        if floors and cpu(run):
            run["floor_cpu_ms"] = round(sum(floors) / len(floors), 4)
            run["ratio"] = cpu(run) / run["floor_cpu_ms"]


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
        "GUNICORN_ACCESS_LOG": "",
        # A recycled worker's boot would be billed to whichever scenario it fell in.
        "GUNICORN_MAX_REQUESTS": "0",
        "SESSION_COOKIE_AGE": "3600",
        **({"REDIS_URL": redis_url} if redis_url else {}),
    }


def migrate(env: dict) -> None:
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True)


def inprocess_stats(env: dict, iterations: int) -> dict:
    result = subprocess.run(
        [PYTHON, "-m", "bench.inprocess"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, "BENCH_HASH_ITERATIONS": str(iterations)},
        timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.inprocess failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout)


def seed(env: dict, total: int) -> dict:
    result = subprocess.run(
        [PYTHON, "-m", "bench.seed", str(total)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=3600
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.seed failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout)


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


# --- the run --------------------------------------------------------------------------------------
class Bench:
    def __init__(self, args):
        self.args = args
        self.started = time.monotonic()
        self.run_id = time.strftime("%Y%m%d-%H%M%S")
        self.logdir = RESULTS / f"run-{self.run_id}"
        self.logdir.mkdir(parents=True, exist_ok=True)
        database_url = os.environ.get("DATABASE_URL", "")
        self.postgres_url = database_url if is_postgres(database_url) else None
        self.redis_url = os.environ.get("REDIS_URL") or None
        self.databases = Databases(self.postgres_url)
        self.external = (
            ExternalCpu(self.postgres_url, self.redis_url) if (self.postgres_url or self.redis_url) else None
        )
        self.secret_key = secrets.token_urlsafe(64)
        self.encryption_key = base64.urlsafe_b64encode(os.urandom(32)).decode()
        self.servers: list[Server] = []
        self.load: LoadProcess | None = None
        self.report: dict = {
            "run_id": self.run_id,
            "machine": machine(),
            "git": git_revision(),
            "stack": {
                "database": "postgresql" if self.postgres_url else "sqlite",
                "cache": "redis" if self.redis_url else "database",
            },
            "options": {key: value for key, value in vars(args).items()},
        }

    def out_of_time(self) -> bool:
        return time.monotonic() - self.started > self.args.time_limit

    def env(self, database_url: str, **extra) -> dict:
        return {**server_env(database_url, self.redis_url, self.secret_key, self.encryption_key), **extra}

    def start_server(self, name: str, env: dict) -> Server:
        server = Server(name, env, self.logdir)
        self.servers.append(server)
        return server.start()

    def stop_server(self, server: Server) -> None:
        server.stop()
        self.servers.remove(server)

    def cleanup(self) -> None:
        if self.load:
            self.load.stop()
            self.load = None
        for server in list(self.servers):
            server.stop()
        self.servers = []
        if self.external:
            self.external.close()
            self.external = None
        self.databases.drop_all()

    def measure(self, server: Server, spec: dict) -> dict:
        return measure(self.load, server, spec, self.external)

    # The main benchmark ---------------------------------------------------------------------------
    def main(self) -> None:
        args = self.args
        database_url = self.databases.new("main")
        if self.external:
            self.external.watch(database_url)
        env = self.env(database_url)
        migrate(env)
        log(f"database {database_url}; redis {self.redis_url or '-'}; logs in {self.logdir}")
        log("counting queries and hashes per endpoint, timing the hasher (bench/inprocess.py)")
        stats_db = self.databases.new("inprocess")
        self.report["inprocess"] = inprocess_stats(self.env(stats_db), args.hash_iterations)

        servers = {
            # The accounts locked for scenario (3) stay locked for the whole run (the first lock
            # lasts an hour, not 30 s); no other scenario locks anyone, and the path is the same.
            "M": self.start_server("M", self.env(database_url, TWOFA_LOCKOUT_BASE_SECONDS="3600")),
            "G": self.start_server(
                "G", self.env(database_url, TWOFA_LOCKOUT_THRESHOLD=HUGE, TWOFA_CODE_FAILURE_LIMIT="0")
            ),
            "P": self.start_server("P", self.env(database_url, BENCH_PASSWORD_HASHER="pbkdf2-twice")),
        }
        self.load = LoadProcess(self.logdir)
        log("preparing accounts through the API")
        started = time.perf_counter()
        prepared = [
            self.load.prep(servers["M"].base, "plain", "plain", args.concurrency),
            self.load.prep(servers["M"].base, "guess", "2fa", args.concurrency),
            self.load.prep(servers["M"].base, "locked", "2fa", args.concurrency),
            self.load.prep(servers["M"].base, "pool", "2fa", args.pool),
            # Registered on M (cheaper); the first login on P re-hashes with P's hasher.
            self.load.prep(servers["P"].base, "pool-pbkdf2", "2fa", args.pool_pbkdf2, register_base=servers["M"].base),
        ]
        self.report["preparation"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "groups": {p["group"]: {"accounts": p["created"], "seconds": p["seconds"]} for p in prepared},
        }

        items = {key: (label, "M", spec, "GET") for key, label, spec in FLOORS}
        items.update({key: (label, server, spec, latency) for key, label, server, spec, latency in SCENARIOS})
        items["row@G"] = ("floor: APIView, one row by PK (server G)", "G", FLOORS[2][2], "GET")
        runs: dict[str, list[dict]] = {key: [] for key in items}

        log("warm-up round")
        for _key, (_label, server, spec, _latency) in items.items():
            self.measure(servers[server], {**spec, "duration": 0.3, "concurrency": args.concurrency})
        for round_number in range(1, args.rounds + 1):
            if self.out_of_time():
                log("time limit reached: no more rounds")
                break
            log(f"round {round_number} of {args.rounds}")
            sequence = []
            for key in ROUND_ORDER:
                _label, server, spec, _latency = items[key]
                duration = (
                    args.floor_seconds
                    if key in FLOOR_KEYS
                    else args.scenario_seconds * (1.6 if key == "twofa-pbkdf2" else 1)
                )
                result = self.measure(servers[server], {**spec, "duration": duration, "concurrency": args.concurrency})
                sequence.append((key, result))
                runs[key].append(result)
                log(
                    f"  {key:13} {result['requests'] / result['elapsed']:8.1f} req/s  "
                    f"{result['server_cpu_ms'] / max(1, result['completed']):7.2f} ms CPU/unit  "
                    f"unexpected {result['unexpected'] or '-'}  errors {result['errors'] or '-'}"
                )
            bracket_with_floors(sequence)

        summary = {}
        for key, (label, server, _spec, latency) in items.items():
            summary[key] = {"label": label, "server": server, **summarise(runs[key], latency)}
        self.report["scenarios"] = summary
        self.report["rounds"] = {
            key: [{k: v for k, v in run.items() if k != "latencies_ms"} for run in value] for key, value in runs.items()
        }
        self.report["memory_kib"] = {name: server.memory() for name, server in servers.items()}
        self.report["server_processes"] = {name: server.processes() for name, server in servers.items()}

        log(f"{args.writers} concurrent writers against 4 workers (server W)")
        writer = self.start_server("W", self.env(database_url, WEB_CONCURRENCY="4"))
        result = self.measure(
            writer, {"scenario": "writers", "duration": args.writer_seconds, "concurrency": args.writers}
        )
        self.report["memory_kib"]["W"] = writer.memory()
        self.stop_server(writer)
        for server in list(self.servers):
            self.stop_server(server)
        logs = "".join(path.read_text(errors="replace") for path in self.logdir.glob("server-*.log"))
        statuses: dict[str, int] = {}
        for by_status in result["statuses"].values():
            for status, count in by_status.items():
                statuses[status] = statuses.get(status, 0) + count
        self.report["writers"] = {
            "concurrency": args.writers,
            "workers": 4,
            "seconds": result["elapsed"],
            "requests": result["requests"],
            "statuses": statuses,
            "unexpected": result["unexpected"],
            "errors": result["errors"],
            "status_5xx": sum(count for status, count in statuses.items() if int(status) >= 500),
        }
        self.report["server_logs"] = {
            "database_is_locked": logs.count("database is locked"),
            "tracebacks": logs.count("Traceback"),
            "worker_timeouts": logs.count("WORKER TIMEOUT"),
        }

    # The scale check ------------------------------------------------------------------------------
    def scale(self) -> None:
        args = self.args
        log(f"scale: {args.scale_small:,} accounts against {args.scale_users:,}")
        small_url = self.databases.new("small")
        small_env = self.env(small_url, TWOFA_LOCKOUT_THRESHOLD=HUGE, TWOFA_CODE_FAILURE_LIMIT="0")
        migrate(small_env)
        if self.load is None:
            self.load = LoadProcess(self.logdir)
        server = self.start_server("S-prep", small_env)
        self.load.prep(server.base, "scale-guess", "2fa", args.scale_concurrency)
        self.load.prep(server.base, "scale-plain", "plain", args.scale_concurrency)
        self.stop_server(server)
        seed(small_env, args.scale_small)
        large_url = self.databases.new("large", template=small_url)
        large_env = self.env(large_url, TWOFA_LOCKOUT_THRESHOLD=HUGE, TWOFA_CODE_FAILURE_LIMIT="0")
        log(f"seeding {args.scale_users - args.scale_small:,} accounts")
        seeding = seed(large_env, args.scale_users)
        log(f"seeded in {seeding['seconds']} s")
        if self.external:
            self.external.watch(small_url)
            self.external.watch(large_url)
        small, large = self.start_server("S", small_env), self.start_server("L", large_env)
        specs = {
            "validate": {"scenario": "guess", "group": "scale-guess"},
            "me": {"scenario": "get", "path": "/api/auth/me", "group": "scale-plain", "with_session": True},
        }
        runs = {(name, size): [] for name in specs for size in ("small", "large")}
        for _name, spec in specs.items():  # warm-up
            for server in (small, large):
                self.measure(server, {**spec, "duration": 0.5, "concurrency": args.scale_concurrency})
        for round_number in range(args.scale_rounds):
            order = [("small", small), ("large", large)]
            if round_number % 2:
                order.reverse()
            for name, spec in specs.items():
                for size, server in order:
                    runs[(name, size)].append(
                        self.measure(
                            server, {**spec, "duration": args.scale_seconds, "concurrency": args.scale_concurrency}
                        )
                    )
        result = {
            "accounts": {"small": args.scale_small, "large": args.scale_users},
            "seeding": seeding,
            "concurrency": args.scale_concurrency,
            "database": "postgresql" if self.postgres_url else "sqlite",
        }
        for name in specs:
            latency = "otp/validate" if name == "validate" else "GET"
            both = {size: summarise(runs[(name, size)], latency) for size in ("small", "large")}
            per_round = [
                percentile(large_run["latencies_ms"][latency], 0.5)
                / percentile(small_run["latencies_ms"][latency], 0.5)
                for small_run, large_run in zip(runs[(name, "small")], runs[(name, "large")], strict=False)
            ]
            # Each round measures both databases back to back (in alternating order): the median of
            # the rounds' ratios is robust to a round that other work on the machine disturbed.
            result[name] = {
                **both,
                "p50_ratio": median(per_round),
                "p50_ratio_pooled": both["large"]["p50_ms"] / both["small"]["p50_ms"],
                "p50_ratio_rounds": [round(value, 3) for value in per_round],
            }
        self.report["scale"] = result
        self.stop_server(small)
        self.stop_server(large)


# --- the report -----------------------------------------------------------------------------------
def fmt(value, digits=1, suffix="") -> str:
    if value is None:
        return "–"
    return f"{value:,.{digits}f}{suffix}"


def table(report: dict) -> str:
    endpoints = report.get("inprocess", {}).get("endpoints", {})

    def sql(key):
        names = SQL_OF.get(key.split("@")[0], [])
        if key.split("@")[0] == "raw":
            return "0"
        found = [endpoints[name] for name in names if name in endpoints]
        if not found:
            return "–"
        text = "+".join(str(data["queries"]) for data in found)
        if any(data.get("cache_commands") for data in found):
            text += " (Redis " + "+".join(str(data.get("cache_commands") or 0) for data in found) + ")"
        return text

    postgres = report["stack"]["database"] == "postgresql"
    redis = report["stack"]["cache"] == "redis"
    extra = (" PostgreSQL CPU ms/req |" if postgres else "") + (" Redis CPU ms/req |" if redis else "")
    lines = [
        f"| scenario | server | req/s | p50 ms | p99 ms | server CPU ms/req | × one-row floor | SQL/req |{extra}",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |" + " ---: |" * (postgres + redis),
    ]
    for key, row in report.get("scenarios", {}).items():
        pair = key.startswith("twofa")
        rate = fmt(row["units_per_s"], 1, " logins/s") if pair else fmt(row["requests_per_s"], 0)
        cpu = fmt(row["cpu_ms_per_unit"], 2, " /login") if pair else fmt(row["cpu_ms_per_unit"], 2)
        line = (
            f"| {row['label']} | {row['server']} | {rate} | {fmt(row['p50_ms'], 2)} | {fmt(row['p99_ms'], 2)} "
            f"| {cpu} | {fmt(row['ratio_to_row_floor'], 2, '×')} | {sql(key)} |"
        )
        if postgres:
            line += f" {fmt(row.get('postgres_cpu_ms_per_unit'), 2)} |"
        if redis:
            line += f" {fmt(row.get('redis_cpu_ms_per_unit'), 2)} |"
        lines.append(line)
    return "\n".join(lines)


def targets(report: dict) -> list[dict]:
    scenarios, checks = report.get("scenarios", {}), []
    inprocess = report.get("inprocess", {})
    endpoints, hasher = inprocess.get("endpoints", {}), inprocess.get("hasher", {})

    def check(name, value, limit, ok, detail=""):
        checks.append({"target": name, "measured": value, "limit": limit, "met": bool(ok), "detail": detail})

    for key, limit in (("guess", 1.4), ("locked", 1.2), ("me", 1.5)):
        ratio = scenarios.get(key, {}).get("ratio_to_row_floor")
        if ratio is not None:
            check(
                f"{scenarios[key]['label']}: CPU ≤ {limit}× one-row floor",
                round(ratio, 2),
                limit,
                ratio <= limit,
                f"per round: {scenarios[key]['ratio_rounds']}",
            )
    logins = {name: data["password_hashes"] for name, data in endpoints.items() if name.startswith("login")}
    if logins:
        check("login: exactly one password hash per request", logins, 1, all(count == 1 for count in logins.values()))
    login_cpu = scenarios.get("login", {}).get("cpu_ms_per_unit")
    hash_floor = scenarios.get("hash", {}).get("cpu_ms_per_unit")
    constant_floor = scenarios.get("constant", {}).get("cpu_ms_per_unit")
    if login_cpu and hash_floor and constant_floor:
        # The hasher's own cost where the login runs: the hash floor (one check_password in a
        # bare APIView) less the bare APIView, same server, same rounds, same concurrency.
        in_server = hash_floor - constant_floor
        alone = hasher.get("check_password", {}).get("cpu_ms_median")
        concurrent = hasher.get("check_password_concurrent", {})
        check(
            "login: CPU ≤ hasher's own cost + 5 ms",
            round(login_cpu, 2),
            round(in_server + 5, 2),
            login_cpu <= in_server + 5,
            f"hasher in the server {in_server:.2f} ms (hash floor {hash_floor:.2f} − bare APIView {constant_floor:.2f}); "
            f"login costs {login_cpu - in_server:+.2f} ms more. Alone in one thread: {alone} ms, "
            f"{concurrent.get('threads')} at once: {concurrent.get('cpu_ms_median')} ms each",
        )
    params = hasher.get("params", {})
    if hasher.get("algorithm") == "argon2":
        ok = (
            params.get("memory_cost", 0) >= 19 * 1024
            and params.get("time_cost", 0) >= 2
            and params.get("parallelism", 0) >= 1
        )
        check("hasher at or above OWASP minimum (Argon2id 19 MiB, t=2, p=1)", params, "19456 KiB, t=2, p=1", ok)
    real, baseline = scenarios.get("twofa", {}), scenarios.get("twofa-pbkdf2", {})
    if real.get("cpu_ms_per_unit") and baseline.get("cpu_ms_per_unit"):
        # What the machine achieves is its cores over the CPU a login takes: on a shared machine
        # the measured rates also follow whatever else runs in each time slot, so both are shown.
        cores = report["machine"]["nproc"]
        capacity = {
            name: cores * 1000 / row["cpu_ms_per_unit"] for name, row in (("real", real), ("baseline", baseline))
        }
        ratio = capacity["real"] / capacity["baseline"]
        measured = (real["units_per_s"] / baseline["units_per_s"]) if baseline.get("units_per_s") else None
        check(
            "2FA logins/s ≥ 3× the PBKDF2-390k-twice login",
            round(ratio, 2),
            3,
            ratio >= 3,
            f"capacity from CPU per login: {capacity['real']:.1f} vs {capacity['baseline']:.1f} logins/s on "
            f"{cores} cores; measured meanwhile {real['units_per_s']:.1f} vs {baseline['units_per_s']:.1f} logins/s "
            f"({fmt(measured, 2)}×)",
        )
    writers, server_logs = report.get("writers"), report.get("server_logs", {})
    if writers:
        ok = writers["status_5xx"] == 0 and server_logs.get("database_is_locked", 0) == 0 and not writers["errors"]
        check(
            f"{writers['concurrency']} concurrent writers, {writers['workers']} workers: no 'database is locked', no 5xx",
            {
                "5xx": writers["status_5xx"],
                "database is locked": server_logs.get("database_is_locked"),
                "requests": writers["requests"],
            },
            0,
            ok,
        )
    all_5xx = sum(row.get("status_5xx", 0) for row in scenarios.values())
    if scenarios:
        check("no 5xx in any scenario", all_5xx, 0, all_5xx == 0)
    scale = report.get("scale")
    if scale:
        for name in ("validate", "me"):
            ratio = scale[name]["p50_ratio"]
            check(
                f"scale ({scale['database']}): p50 of {name} with {scale['accounts']['large']:,} accounts ≤ 1.2× "
                f"with {scale['accounts']['small']:,}",
                round(ratio, 3),
                1.2,
                ratio <= 1.2,
                f"pooled p50 {scale[name]['small']['p50_ms']:.2f} → {scale[name]['large']['p50_ms']:.2f} ms; "
                f"ratio per round {scale[name]['p50_ratio_rounds']}",
            )
    return checks


def render(report: dict) -> str:
    out = []
    m = report["machine"]
    out.append(
        f"Machine: {m['nproc']} cores ({m['cpu']}), {m['ram_gib']} GiB RAM, Python {m['python']}, "
        f"load average at start {' '.join(m['loadavg_at_start'])}. Stack: {report['stack']['database']}, "
        f"cache {report['stack']['cache']}. Code: {report['git']['commit']}"
        f"{' + uncommitted changes' if report['git']['dirty'] else ''}."
    )
    if report.get("scenarios"):
        opts = report["options"]
        out.append(
            f"{opts['rounds']} round(s), {opts['concurrency']} connections, floors {opts['floor_seconds']} s and "
            f"scenarios {opts['scenario_seconds']} s per round; 2 gunicorn workers × 4 threads per server.\n"
        )
        out.append(table(report))
        waits = {key: row["pool_waits"] for key, row in report["scenarios"].items() if row.get("pool_waits")}
        if waits:
            out.append(
                f"\nWARNING: accounts ran out of unused codes and waited for the next time step {waits}: "
                "those rates are understated (raise --pool / --pool-pbkdf2)."
            )
        odd = {
            key: {**row["unexpected"], **row["errors"]}
            for key, row in report["scenarios"].items()
            if row.get("unexpected") or row.get("errors")
        }
        if odd:
            out.append(f"\nUnexpected answers or errors: {odd}")
        foreign = median([row.get("foreign_cores_busy") for row in report["scenarios"].values()])
        out.append(f"\nOther processes kept {fmt(foreign, 2)} of {m['nproc']} cores busy meanwhile (median per run).")
        shares = [
            share
            for row in report["scenarios"].values()
            for share in row.get("busiest_worker_share_rounds", [])
            if share is not None
        ]
        if shares:
            out.append(
                f"The busiest worker did {fmt(median(shares), 2)} of the workers' CPU (median per run; "
                f"max {fmt(max(shares), 2)}; 0.50 is an even share of 2 workers)."
            )
    hasher = report.get("inprocess", {}).get("hasher")
    if hasher:
        out.append(
            f"Hasher alone ({hasher['algorithm']} {hasher['params']}): make_password "
            f"{hasher['make_password']['cpu_ms_median']} ms, check_password {hasher['check_password']['cpu_ms_median']} ms CPU; "
            f"PBKDF2-SHA256 390,000 iterations: {hasher['pbkdf2_sha256_390000_verify']['cpu_ms_median']} ms per hash."
        )
    memory = report.get("memory_kib")
    if memory:
        peaks = {
            name: max((worker.get("VmHWM", 0) for worker in workers.values()), default=0) / 1024
            for name, workers in memory.items()
        }
        out.append(
            "Peak RSS per worker (VmHWM): "
            + ", ".join(f"{name} {value:.0f} MiB" for name, value in peaks.items())
            + "."
        )
    if report.get("preparation"):
        out.append(f"Preparing accounts through the API took {report['preparation']['seconds']} s.")
    scale = report.get("scale")
    if scale:
        connections = f"{scale['concurrency']} connection{'' if scale['concurrency'] == 1 else 's'}"
        out.append(
            f"\nScale ({scale['database']}, {connections}): seeding "
            f"{scale['seeding']['inserted']:,} accounts took {scale['seeding']['seconds']} s.\n"
        )
        out.append(
            f"| endpoint | p50 ms, {scale['accounts']['small']:,} accounts | p50 ms, {scale['accounts']['large']:,} accounts "
            "| ratio (median of rounds) | server CPU ms/req, small → large |"
        )
        out.append("| --- | ---: | ---: | ---: | ---: |")
        for name, label in (("validate", "otp/validate, wrong code"), ("me", "GET me")):
            out.append(
                f"| {label} | {scale[name]['small']['p50_ms']:.2f} | {scale[name]['large']['p50_ms']:.2f} "
                f"| {scale[name]['p50_ratio']:.2f} | {fmt(scale[name]['small']['cpu_ms_per_unit'], 2)} → "
                f"{fmt(scale[name]['large']['cpu_ms_per_unit'], 2)} |"
            )
        noise = median(
            [scale[name][size].get("foreign_cores_busy") for name in ("validate", "me") for size in ("small", "large")]
        )
        out.append(f"\nOther processes kept {fmt(noise, 2)} of {m['nproc']} cores busy meanwhile.")
    out.append("\nTargets:")
    for item in report.get("targets", []):
        out.append(
            f"- [{'x' if item['met'] else ' '}] {item['target']}: {item['measured']}"
            f"{' — ' + item['detail'] if item['detail'] else ''}"
        )
    return "\n".join(out)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short round (under 2 minutes)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--floor-seconds", type=float)
    parser.add_argument("--scenario-seconds", type=float)
    parser.add_argument("--concurrency", type=int, default=16, help="connections per scenario")
    parser.add_argument("--pool", type=int, help="accounts with 2FA for scenario (1)")
    parser.add_argument("--pool-pbkdf2", type=int, help="accounts with 2FA for the PBKDF2 comparison")
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--writer-seconds", type=float)
    parser.add_argument("--hash-iterations", type=int)
    parser.add_argument("--scale", action="store_true", help="also compare 1,000 with 1,000,000 accounts")
    parser.add_argument("--scale-only", action="store_true", help="only the scale comparison")
    parser.add_argument("--scale-users", type=int, default=1_000_000)
    parser.add_argument("--scale-small", type=int, default=1_000)
    parser.add_argument("--scale-seconds", type=float, default=4.0)
    parser.add_argument("--scale-rounds", type=int, default=5)
    parser.add_argument(
        "--scale-concurrency",
        type=int,
        default=1,
        help="connections for the scale comparison: 1 measures service time, not queueing",
    )
    parser.add_argument("--time-limit", type=float, help="seconds after which no new round starts")
    parser.add_argument("--json", type=Path, help="where to write the results (default bench/results/)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "rounds": 1 if quick else 3,
        "floor_seconds": 1.5 if quick else 3.0,
        "scenario_seconds": 2.5 if quick else 5.0,
        "pool": 80 if quick else 240,
        "pool_pbkdf2": 48 if quick else 96,
        "writer_seconds": 4.0 if quick else 8.0,
        "hash_iterations": 8 if quick else 30,
        "time_limit": 150 if quick else 720,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    bench = Bench(args)

    def terminate(signum, frame):
        raise KeyboardInterrupt

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, terminate)
    try:
        if not args.scale_only:
            bench.main()
        if args.scale or args.scale_only:
            bench.scale()
    except KeyboardInterrupt:
        log("interrupted: stopping everything")
        bench.cleanup()
        return 130
    except Exception:
        bench.report["error"] = traceback.format_exc()
        log(f"failed:\n{bench.report['error']}")
    finally:
        bench.cleanup()
    report = bench.report
    report["targets"] = targets(report)
    report["seconds"] = round(time.monotonic() - bench.started, 1)
    text = render(report)
    report["rendered"] = text
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = args.json or RESULTS / f"bench-{bench.run_id}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    shutil.copyfile(path, RESULTS / "latest.json")
    print(text)
    log(f"done in {report['seconds']} s; results in {path}")
    return 1 if report.get("error") else 0


if __name__ == "__main__":
    sys.exit(main())
