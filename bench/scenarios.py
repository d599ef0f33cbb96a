"""What the benchmark measures: the floors (what a request costs with nothing of this service in
it) and the scenarios (the service's own paths), the order of a round, and one measurement."""

from bench.processes import TICK, ExternalCpu, LoadProcess, Server, machine_busy_ticks


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
    (
        "sessions",
        "(9) GET sessions, 20 live sessions",
        "M",
        {"scenario": "get", "path": "/api/auth/sessions", "group": "many-sessions", "with_session": True},
        "GET",
    ),
    # A fixed number of requests per run ("count", set by bench/run.py), each prepared unmeasured.
    (
        "passkey-2fa",
        "(7) passkey as the second factor: passkeys/authentication from a pending session",
        "M",
        {"scenario": "passkey_second_factor", "group": "passkey"},
        "passkeys/authentication",
    ),
    (
        "passkey-signin",
        "(8) passkey sign-in: passkeys/authentication from no session",
        "M",
        {"scenario": "passkey_sign_in", "group": "passkey"},
        "passkeys/authentication",
    ),
]
COUNTED_KEYS = {"passkey-2fa", "passkey-signin"}
# Operations' cost, side by side: the same scenario on two servers that differ only in metrics
# and log format, each writing its access log as a deployment does (server T: the default text
# logs, no metrics; server O: METRICS_ENABLED and LOG_FORMAT=json). Both have G's limits, so
# that the wrong codes of the guess group never lock anyone.
OVERHEAD_PAIRS = [
    ("guess@text", "guess@ops", "otp/validate wrong code", ("guess", "otp/validate")),
    ("me@text", "me@ops", "GET me", ("me", "GET")),
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
    "passkey-2fa": ["passkeys/authentication (pending session: second factor)"],
    "passkey-signin": ["passkeys/authentication (no session: sign-in)"],
    "sessions": ["GET sessions (20 live sessions)"],
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
    # Last, so that the scenarios before them run exactly as they did before passkeys.
    "row",
    "passkey-2fa",
    "row",
    "passkey-signin",
    "row",
    "sessions",
    "row",
    # Each pair runs as A B B A (T O O T, or O T T O every other round: round_order), so that a
    # drift of the machine during the block weighs on both servers alike.
    "guess@text",
    "guess@ops",
    "guess@ops",
    "guess@text",
    "me@text",
    "me@ops",
    "me@ops",
    "me@text",
]


def round_order(round_number: int) -> list[str]:
    """ROUND_ORDER, with each overhead pair swapped in even rounds: whichever of a pair runs
    second would otherwise always meet the machine's drift the same way."""
    if round_number % 2:
        return ROUND_ORDER
    swap = {}
    for text, ops, _name, _scenario in OVERHEAD_PAIRS:
        swap.update({text: ops, ops: text})
    return [swap.get(key, key) for key in ROUND_ORDER]


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
