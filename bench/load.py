"""The load process: drives the API over keep-alive HTTP/1.1 from outside the servers, with one
connection and session cookie per simulated client, as bench/run.py commands it (see `serve`).
Only 127.0.0.1 is ever contacted; every loop is bounded by its duration or count. Passkeys
come from tests/support/authenticator.py, one software authenticator per account."""

import asyncio
import collections
import json
import random
import sys
import time
import uuid
from urllib.parse import urlsplit

import pyotp

from tests.support.authenticator import SoftwareAuthenticator

PASSWORD = "bench: correct horse battery staple"
STEP = 30
SESSIONS_PER_ACCOUNT = 20  # the live sessions of each account of a "many-sessions" group (GET sessions)
REQUEST_TIMEOUT = 60.0
# gunicorn closes a kept-alive connection after `keepalive` (2 s, gunicorn.conf.py) idle: reconnect
# well before that, or a request sent as the server closes is lost.
IDLE_RECONNECT = 1.0
# A measured connection is closed and opened again after this many requests or seconds,
# whichever comes first. Connections kept for a whole run may mostly land on one worker
# (whichever accepts first), which then serves them on one core while the other idles, and a
# ratio would compare a one-worker run with a two-worker floor. New connections go to the
# worker free to accept them.
REQUESTS_PER_CONNECTION = 20
SECONDS_PER_CONNECTION = 0.5
JSON_HEADERS = "Content-Type: application/json\r\n"


class HttpError(Exception):
    pass


class Reply:
    __slots__ = ("status", "session", "body")

    def __init__(self, status: int, session: str | None, body: bytes):
        self.status, self.session, self.body = status, session, body

    def json(self):
        return json.loads(self.body or b"null")


class Connection:
    """One keep-alive connection; reconnects by itself when the server closed it."""

    def __init__(self, base: str, rotate: bool = False):
        parts = urlsplit(base)
        if parts.hostname not in ("127.0.0.1", "localhost"):
            raise ValueError("the benchmark only talks to 127.0.0.1")
        self.host, self.port = "127.0.0.1", parts.port
        self.reader = self.writer = None
        self.last_used = 0.0
        self.rotate = rotate  # reopened now and then (REQUESTS_PER_CONNECTION): measured runs
        self.served, self.opened = 0, 0.0  # requests on the current connection, and when it opened

    async def close(self):
        if self.writer is not None:
            self.writer.close()
            try:
                await self.writer.wait_closed()
            except (ConnectionError, OSError):
                pass
        self.reader = self.writer = None

    async def request(self, method: str, path: str, body=None, session: str | None = None) -> Reply:
        return await asyncio.wait_for(self._request(method, path, body, session), REQUEST_TIMEOUT)

    async def _request(self, method, path, body, session) -> Reply:
        now = time.monotonic()
        if self.writer is not None and (
            now - self.last_used > IDLE_RECONNECT
            or (self.rotate and (self.served >= REQUESTS_PER_CONNECTION or now - self.opened > SECONDS_PER_CONNECTION))
        ):
            await self.close()
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            self.served, self.opened = 0, time.monotonic()
        self.served += 1
        payload = json.dumps(body).encode() if body is not None else b""
        head = f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
        if body is not None:
            head += f"{JSON_HEADERS}Content-Length: {len(payload)}\r\n"
        if session:
            head += f"Cookie: sessionid={session}\r\n"
        self.writer.write(head.encode() + b"\r\n" + payload)
        try:
            raw = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError) as error:
            await self.close()
            raise HttpError(f"connection lost: {type(error).__name__}") from None
        lines = raw.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, chunked, close, cookie = None, False, False, None
        for line in lines[1:]:
            if not line:
                continue
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "content-length":
                length = int(value)
            elif name == "transfer-encoding" and "chunked" in value.lower():
                chunked = True
            elif name == "connection" and value.lower() == "close":
                close = True
            elif name == "set-cookie" and value.startswith("sessionid="):
                cookie = value.split(";", 1)[0][len("sessionid=") :].strip('"')
        if chunked:
            data = b""
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                data += chunk[:-2]
        elif length is not None:
            data = await self.reader.readexactly(length)
        else:
            data = await self.reader.read()
            close = True
        self.last_used = time.monotonic()
        if close:
            await self.close()
        return Reply(status, cookie, data)


class Account:
    __slots__ = ("email", "id", "secret", "last_step", "session", "authenticator")

    def __init__(self, email: str):
        self.email, self.id, self.secret, self.last_step, self.session = email, None, None, None, None
        self.authenticator: SoftwareAuthenticator | None = None


class Exhausted(Exception):
    """A connection has sent all the requests prepared for it."""


def current_step() -> int:
    return int(time.time() // STEP)


def code(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * STEP)


def wrong_code(secret: str) -> str:
    """A 6-digit code that no step the server could accept (now ±1, and the next) matches."""
    now = current_step()
    taken = {code(secret, step) for step in range(now - 2, now + 4)}
    while True:
        guess = f"{random.randrange(10**6):06d}"
        if guess not in taken:
            return guess


class Recorder:
    """Latencies (ms) and statuses of one measured run."""

    def __init__(self):
        self.latencies: dict[str, list[float]] = {}
        self.statuses: dict[str, dict[str, int]] = {}
        self.unexpected: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.completed = 0  # units of work (a request; a login + validate pair)
        self.pool_waits = 0

    def add(self, label: str, started: float, reply: Reply | None, expected: tuple[int, ...]) -> bool:
        self.latencies.setdefault(label, []).append(round((time.perf_counter() - started) * 1000, 3))
        by_status = self.statuses.setdefault(label, {})
        by_status[str(reply.status)] = by_status.get(str(reply.status), 0) + 1
        if reply.status not in expected:
            key = f"{label} {reply.status}"
            self.unexpected[key] = self.unexpected.get(key, 0) + 1
            return False
        return True

    def error(self, label: str, error: Exception):
        key = f"{label}: {error}"[:160]
        self.errors[key] = self.errors.get(key, 0) + 1

    def result(self) -> dict:
        return {
            "latencies_ms": self.latencies,
            "statuses": self.statuses,
            "unexpected": self.unexpected,
            "errors": self.errors,
            "completed": self.completed,
            "pool_waits": self.pool_waits,
        }


class Load:
    def __init__(self):
        self.groups: dict[str, list[Account]] = {}
        self.register_counter = 0
        self.run_tag = uuid.uuid4().hex[:8]

    # --- preparing accounts through the API --------------------------------------------------
    async def prep(
        self, base: str, group: str, kind: str, count: int, concurrency: int = 8, register_base: str | None = None
    ) -> dict:
        accounts = [Account(f"{group}-{self.run_tag}-{index}@example.com") for index in range(count)]
        queue = list(accounts)
        failures: dict[str, int] = {}

        async def worker():
            connection = Connection(base)
            registrar = Connection(register_base) if register_base else connection
            try:
                while queue:
                    account = queue.pop()
                    try:
                        await self._prepare(connection, registrar, account, kind)
                    except Exception as error:  # noqa: BLE001 - reported to the driver
                        key = f"{type(error).__name__}: {error}"[:200]
                        failures[key] = failures.get(key, 0) + 1
                        await connection.close()
            finally:
                await connection.close()
                await registrar.close()

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(min(concurrency, count))))
        ready = [
            account
            for account in accounts
            if account.session and (kind != "2fa" or account.secret) and (kind != "passkey" or account.authenticator)
        ]
        self.groups.setdefault(group, []).extend(ready)
        return {
            "group": group,
            "created": len(ready),
            "failures": failures,
            "seconds": round(time.perf_counter() - started, 2),
            "ids": [a.id for a in ready],
        }

    async def _prepare(self, connection: Connection, registrar: Connection, account: Account, kind: str):
        reply = await registrar.request(
            "POST", "/api/auth/register", {"email": account.email, "name": "Bench", "password": PASSWORD}
        )
        if reply.status != 201:
            raise HttpError(f"register {reply.status} {reply.body[:200]!r}")
        reply = await connection.request("POST", "/api/auth/login", {"email": account.email, "password": PASSWORD})
        if reply.status != 200 or not reply.session:
            raise HttpError(f"login {reply.status} {reply.body[:200]!r}")
        account.session, account.id = reply.session, reply.json()["user"]["id"]
        if kind == "passkey":
            await self._add_passkey(connection, account)
            return
        if kind == "many-sessions":  # SESSIONS_PER_ACCOUNT live sessions, the last one used
            for _ in range(SESSIONS_PER_ACCOUNT - 1):
                reply = await connection.request(
                    "POST", "/api/auth/login", {"email": account.email, "password": PASSWORD}
                )
                if reply.status != 200 or not reply.session:
                    raise HttpError(f"login {reply.status} {reply.body[:200]!r}")
                account.session = reply.session
            return
        if kind != "2fa":
            return
        reply = await connection.request("POST", "/api/auth/otp/generate", {}, account.session)
        if reply.status != 200:
            raise HttpError(f"otp/generate {reply.status} {reply.body[:200]!r}")
        secret = reply.json()["base32"]
        step = current_step()
        reply = await connection.request("POST", "/api/auth/otp/verify", {"token": code(secret, step)}, account.session)
        if reply.status != 200:
            raise HttpError(f"otp/verify {reply.status} {reply.body[:200]!r}")
        account.session = reply.session or account.session
        account.secret, account.last_step = secret, step

    async def _add_passkey(self, connection: Connection, account: Account):
        """The account's first second factor: a passkey (2FA on, later logins pending)."""
        reply = await connection.request("POST", "/api/auth/passkeys/registration/options", {}, account.session)
        if reply.status != 200:
            raise HttpError(f"passkeys/registration/options {reply.status} {reply.body[:200]!r}")
        authenticator = SoftwareAuthenticator(origin=f"http://{connection.host}:{connection.port}", rp_id="localhost")
        credential = authenticator.register(reply.json()["publicKey"])
        reply = await connection.request(
            "POST", "/api/auth/passkeys/registration", {"credential": credential}, account.session
        )
        if reply.status != 201:
            raise HttpError(f"passkeys/registration {reply.status} {reply.body[:200]!r}")
        account.session = reply.session or account.session
        account.authenticator = authenticator

    # --- measured runs ------------------------------------------------------------------------
    async def run(self, spec: dict, wait_for_go) -> dict:
        scenario = spec["scenario"]
        base, concurrency = spec["base"], spec["concurrency"]
        accounts = self.groups.get(spec.get("group", ""), [])
        setup = getattr(self, f"setup_{scenario}", None)
        state = await setup(base, accounts, spec) if setup else {}
        await wait_for_go()
        recorder = Recorder()
        step = getattr(self, f"step_{scenario}")
        connections = [Connection(base, rotate=True) for _ in range(concurrency)]
        cpu_before = time.process_time()
        started = time.perf_counter()
        deadline = started + spec["duration"]

        async def client(index: int):
            connection = connections[index]
            while time.perf_counter() < deadline:
                try:
                    await step(connection, index, accounts, state, recorder)
                except Exhausted:
                    break
                except (TimeoutError, HttpError, OSError) as error:
                    recorder.error(scenario, error if str(error) else type(error).__name__)
                    await connection.close()
                    await asyncio.sleep(0.05)  # a server that refuses connections is not hammered

        try:
            await asyncio.gather(*(client(index) for index in range(concurrency)))
        finally:
            elapsed = time.perf_counter() - started
            client_cpu = time.process_time() - cpu_before
            for connection in connections:
                await connection.close()
        return {**recorder.result(), "elapsed": round(elapsed, 4), "client_cpu_s": round(client_cpu, 4)}

    # GET floors and GET me: one session per connection, rows read round robin.
    async def setup_get(self, base, accounts, spec):
        return {
            "ids": [a.id for a in accounts if a.id],
            "turn": 0,
            "path": spec["path"],
            "with_session": spec.get("with_session", False),
        }

    async def step_get(self, connection, index, accounts, state, recorder):
        path = self._get_path(state, spec_path=state["path"])
        session = accounts[index % len(accounts)].session if state["with_session"] else None
        started = time.perf_counter()
        reply = await connection.request("GET", path, session=session)
        if recorder.add("GET", started, reply, (200,)):
            recorder.completed += 1

    def _get_path(self, state, spec_path):
        if "{id}" not in spec_path:
            return spec_path
        state["turn"] += 1
        return spec_path.replace("{id}", state["ids"][state["turn"] % len(state["ids"])])

    # Scenario 1: login + otp/validate with a correct code never used before, many accounts.
    async def setup_twofa_login(self, base, accounts, spec):
        return {"queue": collections.deque(accounts), "in_flight": set()}

    async def _next_account(self, state, recorder) -> tuple[Account, int]:
        """An account and a step whose code it has not used: the current step or the next one
        (both stay inside the server's ±1 window while the request is in flight)."""
        queue, in_flight = state["queue"], state["in_flight"]
        for _attempt in range(2):
            now = current_step()
            for _ in range(len(queue)):
                account = queue[0]
                queue.rotate(-1)
                # One login at a time per account: a login may rewrite the password hash (the
                # PBKDF2 comparison re-hashes at every login), which ends that account's other
                # pending sessions.
                if account.email in in_flight:
                    continue
                if account.last_step is None or account.last_step < now + 1:
                    step = now if account.last_step is None or account.last_step < now else now + 1
                    account.last_step = step
                    return account, step
            recorder.pool_waits += 1  # every account used this step: wait for the next one
            await asyncio.sleep(max(0.05, (now + 1) * STEP - time.time() + 0.05))
        raise HttpError("account pool exhausted")

    async def step_twofa_login(self, connection, index, accounts, state, recorder):
        account, step = await self._next_account(state, recorder)
        state["in_flight"].add(account.email)
        try:
            await self._twofa_login(connection, account, step, recorder)
        finally:
            state["in_flight"].discard(account.email)

    async def _twofa_login(self, connection, account, step, recorder):
        started = time.perf_counter()
        reply = await connection.request("POST", "/api/auth/login", {"email": account.email, "password": PASSWORD})
        if not recorder.add("login", started, reply, (200,)) or not reply.session:
            return
        second = time.perf_counter()
        reply = await connection.request(
            "POST", "/api/auth/otp/validate", {"token": code(account.secret, step)}, reply.session
        )
        ok = recorder.add("otp/validate", second, reply, (200,))
        recorder.add("login+validate", started, reply, (200,))
        if ok:
            recorder.completed += 1

    # Scenarios 2 and 3: wrong codes from pending sessions (one account per connection).
    async def _pending_sessions(self, base, accounts, concurrency) -> list[str]:
        connection, sessions = Connection(base), []
        try:
            for account in accounts[:concurrency]:
                reply = await connection.request(
                    "POST", "/api/auth/login", {"email": account.email, "password": PASSWORD}
                )
                if reply.status != 200 or not reply.session:
                    raise HttpError(f"pending login {reply.status} {reply.body[:200]!r}")
                sessions.append(reply.session)
        finally:
            await connection.close()
        return sessions

    async def setup_guess(self, base, accounts, spec):
        return {"sessions": await self._pending_sessions(base, accounts, spec["concurrency"])}

    async def step_guess(self, connection, index, accounts, state, recorder):
        await self._wrong_code(connection, index, accounts, state, recorder, expected=400)

    async def _wrong_code(self, connection, index, accounts, state, recorder, *, expected: int):
        """One wrong code from this connection's pending session, answered `expected`."""
        sessions = state["sessions"]
        account = accounts[index % len(sessions)]
        started = time.perf_counter()
        reply = await connection.request(
            "POST", "/api/auth/otp/validate", {"token": wrong_code(account.secret)}, sessions[index % len(sessions)]
        )
        if recorder.add("otp/validate", started, reply, (expected,)):
            recorder.completed += 1

    async def setup_locked(self, base, accounts, spec):
        sessions = await self._pending_sessions(base, accounts, spec["concurrency"])
        connection = Connection(base)
        try:
            for account, session in zip(accounts, sessions, strict=False):
                for _attempt in range(30):  # the lock comes after TWOFA_LOCKOUT_THRESHOLD wrong codes
                    reply = await connection.request(
                        "POST", "/api/auth/otp/validate", {"token": wrong_code(account.secret)}, session
                    )
                    if reply.status == 429:
                        break
                else:
                    raise HttpError(f"{account.email} did not lock: {reply.status} {reply.body[:200]!r}")
        finally:
            await connection.close()
        return {"sessions": sessions}

    async def step_locked(self, connection, index, accounts, state, recorder):
        await self._wrong_code(connection, index, accounts, state, recorder, expected=429)

    # Scenario 5: register, a new email each time.
    async def step_register(self, connection, index, accounts, state, recorder):
        _email, registered = await self._register(connection, "reg", recorder)
        if registered:
            recorder.completed += 1

    async def _register(self, connection, prefix: str, recorder) -> tuple[str, bool]:
        """Register a new email; the email, and whether the answer was the expected 201."""
        self.register_counter += 1
        email = f"{prefix}-{self.run_tag}-{self.register_counter}@example.com"
        started = time.perf_counter()
        reply = await connection.request(
            "POST", "/api/auth/register", {"email": email, "name": "Bench", "password": PASSWORD}
        )
        return email, recorder.add("register", started, reply, (201,))

    # Scenario 6: login alone (accounts without 2FA: a full session, as most logins are).
    async def step_login(self, connection, index, accounts, state, recorder):
        account = random.choice(accounts)
        started = time.perf_counter()
        reply = await connection.request("POST", "/api/auth/login", {"email": account.email, "password": PASSWORD})
        if recorder.add("login", started, reply, (200,)):
            recorder.completed += 1

    # Scenarios 7 and 8: passkeys/authentication, a fixed number of requests prepared in the setup
    # (unmeasured): each needs a session holding an unused challenge, for (7) a pending session
    # (a login, with its password hash, then the options), for (8) a new anonymous one (the
    # options). Connection i sends all the requests of account i, in the order their assertions
    # were signed, so each passkey's signature counter grows request by request.
    async def setup_passkey_second_factor(self, base, accounts, spec):
        return await self._prepare_assertions(base, accounts, spec, pending=True)

    async def setup_passkey_sign_in(self, base, accounts, spec):
        return await self._prepare_assertions(base, accounts, spec, pending=False)

    async def _prepare_assertions(self, base, accounts, spec, *, pending: bool) -> dict:
        concurrency, count = spec["concurrency"], spec["count"]
        if len(accounts) < concurrency:
            raise HttpError(f"{len(accounts)} passkey accounts for {concurrency} connections")
        queues = [collections.deque() for _ in range(concurrency)]

        async def prepare(index: int):
            account, connection = accounts[index], Connection(base)
            try:
                for _ in range(count // concurrency + (index < count % concurrency)):
                    session = None
                    if pending:
                        reply = await connection.request(
                            "POST", "/api/auth/login", {"email": account.email, "password": PASSWORD}
                        )
                        if reply.status != 200 or not reply.session:
                            raise HttpError(f"pending login {reply.status} {reply.body[:200]!r}")
                        session = reply.session
                    reply = await connection.request("POST", "/api/auth/passkeys/authentication/options", {}, session)
                    if reply.status != 200 or not (reply.session or session):
                        raise HttpError(f"passkeys/authentication/options {reply.status} {reply.body[:200]!r}")
                    assertion = account.authenticator.authenticate(reply.json()["publicKey"], origin=base)
                    queues[index].append((reply.session or session, assertion))
            finally:
                await connection.close()

        await asyncio.gather(*(prepare(index) for index in range(concurrency)))
        return {"queues": queues}

    async def step_passkey_second_factor(self, connection, index, accounts, state, recorder):
        await self._passkey_authentication(connection, index, state, recorder)

    async def step_passkey_sign_in(self, connection, index, accounts, state, recorder):
        await self._passkey_authentication(connection, index, state, recorder)

    async def _passkey_authentication(self, connection, index, state, recorder):
        queue = state["queues"][index]
        if not queue:
            raise Exhausted
        session, assertion = queue.popleft()
        started = time.perf_counter()
        reply = await connection.request(
            "POST", "/api/auth/passkeys/authentication", {"credential": assertion}, session
        )
        if recorder.add("passkeys/authentication", started, reply, (200,)):
            recorder.completed += 1

    # 16 concurrent writers: register, login, otp/generate x3 (an UPDATE each), logout.
    async def step_writers(self, connection, index, accounts, state, recorder):
        email, _registered = await self._register(connection, "write", recorder)
        started = time.perf_counter()
        reply = await connection.request("POST", "/api/auth/login", {"email": email, "password": PASSWORD})
        recorder.add("login", started, reply, (200,))
        session = reply.session
        if session:
            secret = None
            for _ in range(3):
                started = time.perf_counter()
                reply = await connection.request("POST", "/api/auth/otp/generate", {}, session)
                if recorder.add("otp/generate", started, reply, (200,)):
                    secret = reply.json()["base32"]
            if secret:  # 2FA on: a security email enqueued in the same transaction
                started = time.perf_counter()
                token = code(secret, current_step())
                reply = await connection.request("POST", "/api/auth/otp/verify", {"token": token}, session)
                recorder.add("otp/verify", started, reply, (200,))
                session = reply.session or session
            started = time.perf_counter()
            reply = await connection.request("POST", "/api/auth/logout", {}, session)
            recorder.add("logout", started, reply, (200,))
        recorder.completed += 1


async def serve():
    """Take bench/run.py's commands, one JSON line each on stdin, and answer with events on stdout:

    {"cmd": "prep", "base": URL, "group": NAME, "kind": "2fa"|"plain"|"passkey"|"many-sessions", "count": N}
        -> {"event": "prepared", ...}          accounts created through the API
    {"cmd": "run", "scenario": NAME, "base": URL, "duration": S, "concurrency": C, ...}
        -> {"event": "ready"}                  setup done (pending sessions, locks, challenges): not measured
    {"cmd": "go"}
        -> {"event": "done", ...}              latencies, statuses, elapsed; nothing in flight
    {"cmd": "quit"}
    """
    load = Load()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def send(message: dict):
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def read_command() -> dict:
        line = await reader.readline()
        if not line:
            raise SystemExit(0)  # the driver went away
        return json.loads(line)

    async def wait_for_go():
        send({"event": "ready"})
        command = await read_command()
        if command.get("cmd") != "go":
            raise SystemExit(f"expected go, got {command}")

    while True:
        command = await read_command()
        try:
            if command["cmd"] == "quit":
                return
            if command["cmd"] == "prep":
                send(
                    {
                        "event": "prepared",
                        **await load.prep(
                            command["base"],
                            command["group"],
                            command["kind"],
                            command["count"],
                            command.get("concurrency", 8),
                            command.get("register_base"),
                        ),
                    }
                )
            elif command["cmd"] == "run":
                send({"event": "done", **await load.run(command, wait_for_go)})
            else:
                send({"event": "error", "error": f"unknown command {command}"})
        except SystemExit:
            raise
        except Exception as error:  # noqa: BLE001 - reported to the driver, which stops the run
            send({"event": "error", "error": f"{type(error).__name__}: {error}"})


if __name__ == "__main__":
    asyncio.run(serve())
