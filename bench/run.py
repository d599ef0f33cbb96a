"""Drives one benchmark run (`python -m bench.run`, `make bench`): starts the servers, prepares
accounts, runs the rounds and the optional scale check, then prints and saves the report."""

import argparse
import base64
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path

from bench.processes import (
    HUGE,
    PYTHON,
    RESULTS,
    ROOT,
    Databases,
    ExternalCpu,
    LoadProcess,
    Server,
    git_revision,
    is_postgres,
    log,
    machine,
    migrate,
    server_env,
)
from bench.report import median, percentile, render, summarise, targets
from bench.scenarios import (
    COUNTED_KEYS,
    FLOOR_KEYS,
    FLOORS,
    OVERHEAD_PAIRS,
    SCENARIOS,
    bracket_with_floors,
    measure,
    round_order,
)

DESCRIPTION = """The benchmark driver: `python -m bench.run [--quick] [--scale]` (or `make bench`).

1. Starts gunicorn with gunicorn.conf.py (production settings, DEBUG off) on a fresh database:
   SQLite, or PostgreSQL + Redis when DATABASE_URL / REDIS_URL are set. Several servers share
   that database: M (the production rules), G (the lockout threshold out of reach, for wrong
   codes that never lock), P (the PBKDF2 comparison hasher, bench/hashers.py) and, for the
   concurrent-writers check, W (4 workers).
2. Prepares accounts through the API, from a separate load process (bench/load.py).
3. Counts SQL queries and password hashes per endpoint, and times the hasher alone
   (bench/inprocess.py, its own database); times rows.py's statements against the ORM
   (bench/statements.py, its own database).
4. Runs rounds: in each, every floor and every scenario once, interleaved, on a noisy machine.
   Server CPU per request comes from /proc (gunicorn master, live workers and reaped ones).
5. Optionally (--scale) compares latency with 1,000 and with 1,000,000 accounts.
Prints a Markdown table, writes bench/results/bench-<time>.json (and latest.json), and stops
everything it started, also on Ctrl-C or an error.
"""


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


def statements_stats(env: dict, quick: bool) -> dict:
    """bench/statements.py's JSON; an error there is reported, and the run goes on."""
    batches = ["--batches", "6", "--calls", "100"] if quick else []
    command = [PYTHON, "-m", "bench.statements", "--json", "--use-database-url", *batches]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=env, timeout=600)
    if result.returncode != 0:
        log(f"bench.statements failed:\n{result.stderr[-4000:]}")
        return {"error": result.stderr[-4000:]}
    return json.loads(result.stdout)


def seed(env: dict, total: int) -> dict:
    result = subprocess.run(
        [PYTHON, "-m", "bench.seed", str(total)], cwd=ROOT, capture_output=True, text=True, env=env, timeout=3600
    )
    if result.returncode != 0:
        raise RuntimeError(f"bench.seed failed:\n{result.stderr[-4000:]}")
    return json.loads(result.stdout)


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
        log("timing rows.py's statements against the ORM (bench/statements.py)")
        self.report["statements"] = statements_stats(self.env(self.databases.new("statements")), args.quick)

        servers = {
            # The accounts locked for scenario (3) stay locked for the whole run (the first lock
            # lasts an hour, not 30 s); no other scenario locks anyone, and the path is the same.
            "M": self.start_server("M", self.env(database_url, TWOFA_LOCKOUT_BASE_SECONDS="3600")),
            "G": self.start_server(
                "G", self.env(database_url, TWOFA_LOCKOUT_THRESHOLD=HUGE, TWOFA_CODE_FAILURE_LIMIT="0")
            ),
            "P": self.start_server("P", self.env(database_url, BENCH_PASSWORD_HASHER="pbkdf2-twice")),
        }
        # Operations' overhead: T and O differ only in metrics and the log format (OVERHEAD_PAIRS).
        never_locked = {"TWOFA_LOCKOUT_THRESHOLD": HUGE, "TWOFA_CODE_FAILURE_LIMIT": "0", "GUNICORN_ACCESS_LOG": "-"}
        servers["T"] = self.start_server("T", self.env(database_url, **never_locked, LOG_FORMAT="text"))
        servers["O"] = self.start_server(
            "O", self.env(database_url, **never_locked, LOG_FORMAT="json", METRICS_ENABLED="true")
        )
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
            # One account per connection: each connection signs with its own passkey, in order.
            self.load.prep(servers["M"].base, "passkey", "passkey", args.concurrency),
            # One account per connection, each with 20 live sessions (scenario 9).
            self.load.prep(servers["M"].base, "many-sessions", "many-sessions", args.concurrency),
        ]
        self.report["preparation"] = {
            "seconds": round(time.perf_counter() - started, 1),
            "groups": {p["group"]: {"accounts": p["created"], "seconds": p["seconds"]} for p in prepared},
        }

        items = {key: (label, "M", spec, "GET") for key, label, spec in FLOORS}
        items.update({key: (label, server, spec, latency) for key, label, server, spec, latency in SCENARIOS})
        items["row@G"] = ("floor: APIView, one row by PK (server G)", "G", FLOORS[2][2], "GET")
        for text, ops, name, (scenario, latency) in OVERHEAD_PAIRS:
            spec = next(spec for key, _label, _server, spec, _latency in SCENARIOS if key == scenario)
            items[text] = (f"{name}: text logs, no metrics (server T)", "T", spec, latency)
            items[ops] = (f"{name}: JSON logs and metrics (server O)", "O", spec, latency)
        # Scenarios (7) and (8) run a fixed number of prepared requests (duration: only a bound).
        counts = {"passkey-2fa": args.passkey_second_factors, "passkey-signin": args.passkey_sign_ins}
        for key in COUNTED_KEYS:
            label, server, spec, latency = items[key]
            items[key] = (label, server, {**spec, "count": counts[key]}, latency)
        runs: dict[str, list[dict]] = {key: [] for key in items}

        log("warm-up round")
        for key, (_label, server, spec, _latency) in items.items():
            warm = {"count": 2 * args.concurrency} if key in COUNTED_KEYS else {}
            self.measure(servers[server], {**spec, **warm, "duration": 0.3, "concurrency": args.concurrency})
        for round_number in range(1, args.rounds + 1):
            if self.out_of_time():
                log("time limit reached: no more rounds")
                break
            log(f"round {round_number} of {args.rounds}")
            sequence = []
            for key in round_order(round_number):
                _label, server, spec, _latency = items[key]
                duration = (
                    args.floor_seconds
                    if key in FLOOR_KEYS
                    else 60.0
                    if key in COUNTED_KEYS
                    else args.scenario_seconds * (1.6 if key == "twofa-pbkdf2" else 1)
                )
                result = self.measure(servers[server], {**spec, "duration": duration, "concurrency": args.concurrency})
                result["round"] = round_number
                sequence.append((key, result))
                runs[key].append(result)
                log(
                    f"  {key:14} {result['requests'] / result['elapsed']:8.1f} req/s  "
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one short round (about 3 minutes)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--floor-seconds", type=float)
    parser.add_argument("--scenario-seconds", type=float)
    parser.add_argument("--concurrency", type=int, default=16, help="connections per scenario")
    parser.add_argument("--pool", type=int, help="accounts with 2FA for scenario (1)")
    parser.add_argument("--pool-pbkdf2", type=int, help="accounts with 2FA for the PBKDF2 comparison")
    parser.add_argument("--passkey-second-factors", type=int, help="requests per round of scenario (7)")
    parser.add_argument("--passkey-sign-ins", type=int, help="requests per round of scenario (8)")
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
        "passkey_second_factors": 160 if quick else 300,
        "passkey_sign_ins": 400 if quick else 1000,
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
