"""Per endpoint, the SQL queries, password hashes and Redis commands of one call through Django's
test client; the password hasher's cost alone, and the passkey signature check's. Run by
bench/run.py on its own database with the servers' settings; prints one JSON document."""

import hashlib
import json
import os
import statistics
import sys
import threading
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
django.setup()

import pyotp  # noqa: E402
from django.conf import settings  # noqa: E402
from django.contrib.auth.hashers import check_password, get_hasher, get_hashers, make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from otp_app import passkeys  # noqa: E402
from otp_app.models import Passkey, UserModel  # noqa: E402
from tests.support.authenticator import SoftwareAuthenticator  # noqa: E402

PASSWORD = "bench: correct horse battery staple"
STEP = 30


class HashCounter:
    """Counts password hashes: each hasher's encode, verify and harden_runtime, outermost call only."""

    def __init__(self):
        self.count = 0
        self.calls: list[str] = []
        self._depth = threading.local()

    def install(self):
        for hasher in get_hashers():
            for name in ("encode", "verify", "harden_runtime"):
                setattr(hasher, name, self._wrap(hasher, name, getattr(hasher, name)))

    def _wrap(self, hasher, name, method):
        def counted(*args, **kwargs):
            depth = getattr(self._depth, "value", 0)
            if depth == 0:
                self.count += 1
                self.calls.append(f"{hasher.algorithm}.{name}")
            self._depth.value = depth + 1
            try:
                return method(*args, **kwargs)
            finally:
                self._depth.value = depth

        return counted


class CacheCounter:
    """Counts Redis commands (sessions and limits live there when REDIS_URL is set)."""

    def __init__(self):
        self.count = 0
        try:
            import redis
        except ImportError:
            return
        original = redis.client.Redis.execute_command
        counter = self

        def execute_command(self, *args, **kwargs):
            counter.count += 1
            return original(self, *args, **kwargs)

        redis.client.Redis.execute_command = execute_command


def code(secret: str, step: int) -> str:
    return pyotp.TOTP(secret).at(step * STEP)


def wrong(secret: str) -> str:
    now = int(time.time() // STEP)
    taken = {code(secret, step) for step in range(now - 2, now + 4)}
    return next(f"{n:06d}" for n in range(1, 10**6) if f"{n:06d}" not in taken)


API = "/api/auth/"


def client() -> Client:
    return Client(HTTP_HOST="127.0.0.1")


def post(someone: Client, path: str, body: dict | None = None):
    """An unmeasured request: setting the scene for a measured one."""
    return someone.post(API + path, json.dumps(body or {}), content_type="application/json")


def main() -> dict:
    call_command("migrate", verbosity=0, interactive=False)
    hashes, cache_commands = HashCounter(), CacheCounter()
    hashes.install()
    endpoints: dict[str, dict] = {}

    def measure(name, client, method, path, body=None, expect=None):
        hashes.count, hashes.calls = 0, []
        cache_commands.count = 0
        with CaptureQueriesContext(connection) as queries:
            if method == "GET":
                response = client.get(path)
            else:
                response = client.post(path, json.dumps(body or {}), content_type="application/json")
        endpoints[name] = {
            "status": response.status_code,
            "expected": expect,
            "queries": len(queries.captured_queries),
            "sql": [query["sql"][:300] for query in queries.captured_queries],
            "password_hashes": hashes.count,
            "hash_calls": list(hashes.calls),
            "cache_commands": cache_commands.count if settings.REDIS_URL else None,
        }
        return response

    # An account without 2FA: register, login (full session), me, enrol, logout.
    ann = client()
    measure(
        "register",
        ann,
        "POST",
        API + "register",
        {"email": "ann@example.com", "name": "Ann", "password": PASSWORD},
        201,
    )
    measure(
        "login (no 2FA: full session)",
        ann,
        "POST",
        API + "login",
        {"email": "ann@example.com", "password": PASSWORD},
        200,
    )
    measure("GET me", ann, "GET", API + "me", expect=200)
    response = measure("otp/generate", ann, "POST", API + "otp/generate", {}, 200)
    secret = response.json()["base32"]
    step = int(time.time() // STEP)
    measure("otp/verify", ann, "POST", API + "otp/verify", {"token": code(secret, step)}, 200)
    measure("logout", ann, "POST", API + "logout", {}, 200)
    # Later logins of that account are pending until a code is proven.
    measure(
        "login (2FA: pending session)",
        ann,
        "POST",
        API + "login",
        {"email": "ann@example.com", "password": PASSWORD},
        200,
    )
    measure("otp/validate wrong code (not locked)", ann, "POST", API + "otp/validate", {"token": wrong(secret)}, 400)
    measure("otp/validate correct code", ann, "POST", API + "otp/validate", {"token": code(secret, step + 1)}, 200)
    measure("GET me (after 2FA)", ann, "GET", API + "me", expect=200)
    measure("otp/disable", ann, "POST", API + "otp/disable", {}, 200)
    # Failed logins.
    measure(
        "login wrong password",
        client(),
        "POST",
        API + "login",
        {"email": "ann@example.com", "password": "nope, wrong"},
        400,
    )
    measure(
        "login unknown email",
        client(),
        "POST",
        API + "login",
        {"email": "nobody@example.com", "password": PASSWORD},
        400,
    )

    def logged_in(name):
        """A client logged in to a new account without 2FA (a full session)."""
        email = f"{name.lower()}@example.com"
        someone = client()
        post(someone, "register", {"email": email, "name": name, "password": PASSWORD})
        post(someone, "login", {"email": email, "password": PASSWORD})
        return someone, email

    # A locked account: wrong codes until 429, then one more attempt.
    bob, bob_email = logged_in("Bob")
    bob_secret = post(bob, "otp/generate").json()["base32"]
    post(bob, "otp/verify", {"token": code(bob_secret, step)})
    post(bob, "logout")
    post(bob, "login", {"email": bob_email, "password": PASSWORD})
    for _ in range(30):
        if post(bob, "otp/validate", {"token": wrong(bob_secret)}).status_code == 429:
            break
    measure("otp/validate while locked", bob, "POST", API + "otp/validate", {"token": wrong(bob_secret)}, 429)

    # Floors.
    carol, _ = logged_in("Carol")
    row_id = str(UserModel.objects.get(email="ann@example.com").pk)
    measure("floor: bare APIView", client(), "GET", "/bench/constant", expect=200)
    measure("floor: one row", client(), "GET", f"/bench/row?id={row_id}", expect=200)
    measure("floor: one row behind a session", carol, "GET", f"/bench/session-row?id={row_id}", expect=200)
    measure("floor: one password hash", client(), "GET", "/bench/hash", expect=200)
    measure("floor: one password hash", client(), "GET", "/bench/hash", expect=200)  # the first made the hash

    # Erin, logged in 20 times: the list of her sessions.
    erin, erin_email = logged_in("Erin")
    for _ in range(19):
        erin = client()
        post(erin, "login", {"email": erin_email, "password": PASSWORD})
    measure("GET sessions (20 live sessions)", erin, "GET", API + "sessions", expect=200)

    # Passkeys: Dave's first second factor is a passkey; then one request of scenario (7) (from a
    # pending session) and one of (8) (from no session), each after its options.
    dave, dave_email = logged_in("Dave")
    authenticator = SoftwareAuthenticator(origin="http://127.0.0.1", rp_id="localhost")
    options = post(dave, "passkeys/registration/options").json()["publicKey"]
    post(dave, "passkeys/registration", {"credential": authenticator.register(options)})
    post(dave, "logout")
    post(dave, "login", {"email": dave_email, "password": PASSWORD})
    options = post(dave, "passkeys/authentication/options").json()["publicKey"]
    measure(
        "passkeys/authentication (pending session: second factor)",
        dave,
        "POST",
        API + "passkeys/authentication",
        {"credential": authenticator.authenticate(options)},
        200,
    )
    anonymous = client()
    options = post(anonymous, "passkeys/authentication/options").json()["publicKey"]
    measure(
        "passkeys/authentication (no session: sign-in)",
        anonymous,
        "POST",
        API + "passkeys/authentication",
        {"credential": authenticator.authenticate(options)},
        200,
    )
    public_key = bytes(Passkey.objects.get(user__email=dave_email).public_key)

    return {
        "endpoints": endpoints,
        "hasher": hasher_cost(int(os.environ.get("BENCH_HASH_ITERATIONS", "20"))),
        "security_email": email_enqueue_cost(
            UserModel.objects.get(email=dave_email), batches=6, calls=int(os.environ.get("BENCH_EMAIL_CALLS", "100"))
        ),
        "second_factor": second_factor_cost(
            dave_email,
            authenticator,
            batches=int(os.environ.get("BENCH_SECOND_FACTOR_BATCHES", "5")),
            calls=int(os.environ.get("BENCH_SECOND_FACTOR_CALLS", "20")),
        ),
        "passkey_signature": signature_cost(
            authenticator, public_key, int(os.environ.get("BENCH_SIGNATURE_CALLS", "2000"))
        ),
        "database": connection.vendor,
        "cache": settings.CACHES["default"]["BACKEND"],
        "session_engine": settings.SESSION_ENGINE,
    }


def _timed(function, iterations: int) -> dict:
    cpu, wall = [], []
    for _ in range(iterations):
        started_cpu, started_wall = time.process_time(), time.perf_counter()
        function()
        cpu.append((time.process_time() - started_cpu) * 1000)
        wall.append((time.perf_counter() - started_wall) * 1000)
    return {
        "cpu_ms_median": round(statistics.median(cpu), 2),
        "cpu_ms_min": round(min(cpu), 2),
        "wall_ms_median": round(statistics.median(wall), 2),
        "iterations": iterations,
    }


def _timed_concurrently(function, threads: int, iterations: int) -> dict:
    """CPU per call while `threads` calls run at once, as in a server's worker threads: a
    memory-hard hash costs more CPU when several share the caches and memory bandwidth."""
    cpu: list[float] = []

    def work():
        for _ in range(iterations):
            started = time.thread_time()
            function()
            cpu.append((time.thread_time() - started) * 1000)

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return {"cpu_ms_median": round(statistics.median(cpu), 2), "threads": threads, "iterations": iterations}


def hasher_cost(iterations: int) -> dict:
    from bench.hashers import PBKDF2TwiceHasher

    hasher = get_hasher("default")
    encoded = make_password(PASSWORD)
    params = {
        name: getattr(hasher, name)
        for name in ("time_cost", "memory_cost", "parallelism", "iterations")
        if hasattr(hasher, name)
    }
    pbkdf2 = PBKDF2TwiceHasher()
    pbkdf2_encoded = pbkdf2.encode(PASSWORD, pbkdf2.salt())
    return {
        "hasher": f"{type(hasher).__module__}.{type(hasher).__qualname__}",
        "algorithm": hasher.algorithm,
        "params": params,
        "make_password": _timed(lambda: make_password(PASSWORD), iterations),
        "check_password": _timed(lambda: check_password(PASSWORD, encoded), iterations),
        "check_password_concurrent": _timed_concurrently(
            lambda: check_password(PASSWORD, encoded),
            int(os.environ.get("BENCH_SERVER_THREADS", "8")),
            max(2, iterations // 4),
        ),
        "pbkdf2_sha256_390000_verify": _timed(lambda: pbkdf2.verify(PASSWORD, pbkdf2_encoded), max(3, iterations // 5)),
    }


def signature_cost(authenticator: SoftwareAuthenticator, public_key: bytes, calls: int) -> dict:
    """CPU of `passkeys.verify_assertion` on one prepared sign-in assertion (py_webauthn's whole
    check: parsing, client data, RP ID hash, flags, the COSE key and the ECDSA P-256 signature),
    and of the ECDSA verification alone; median of `calls` calls, in µs."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from webauthn.helpers import base64url_to_bytes, decode_credential_public_key, decoded_public_key_to_cryptography

    challenge = os.urandom(32)
    credential = authenticator.authenticate({"rpId": "localhost"}, challenge=challenge)
    origins = ["http://127.0.0.1"]

    def check():
        passkeys.verify_assertion(
            credential, challenge=challenge, origins=origins, public_key=public_key, user_verification=True
        )

    response = credential["response"]
    signed = (
        base64url_to_bytes(response["authenticatorData"])
        + hashlib.sha256(base64url_to_bytes(response["clientDataJSON"])).digest()
    )
    signature = base64url_to_bytes(response["signature"])
    key = decoded_public_key_to_cryptography(decode_credential_public_key(public_key))

    def ecdsa():
        key.verify(signature, signed, ec.ECDSA(hashes.SHA256()))

    return {"verify_assertion": _timed_us(check, calls), "ecdsa_p256_verify": _timed_us(ecdsa, calls)}


def second_factor_cost(passkey_email: str, authenticator: SoftwareAuthenticator, batches: int, calls: int) -> dict:
    """CPU of the request that completes a login, TOTP against passkey, with `GET me` beside them:
    the Django handler's CPU per request (what a server's worker runs, less the HTTP parsing), in
    interleaved batches, each request prepared unmeasured (its login, its options). Median µs.
    Each TOTP login is a different account's: a code is accepted once per step and account."""
    kinds = (
        "GET me",
        "otp/validate, correct code (pending session)",
        "passkeys/authentication (pending session)",
        "passkeys/authentication (no session: sign-in)",
    )
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}

    def timed(someone, kind):
        handler = someone.handler

        def call(environ):
            started = time.thread_time_ns()
            try:
                return handler(environ)
            finally:
                cpu[kind].append((time.thread_time_ns() - started) / 1000)

        someone.handler = call
        return someone

    def logged_in(email):
        someone = client()
        post(someone, "login", {"email": email, "password": PASSWORD})
        return someone

    totp_accounts = []
    for number in range(batches * calls):
        email = f"second-factor-{number}@example.com"
        someone = client()
        post(someone, "register", {"email": email, "name": "Totp", "password": PASSWORD})
        post(someone, "login", {"email": email, "password": PASSWORD})
        secret = post(someone, "otp/generate").json()["base32"]
        enrolled = int(time.time() // STEP)
        post(someone, "otp/verify", {"token": code(secret, enrolled)})
        totp_accounts.append((email, secret, enrolled))
    post(client(), "register", {"email": "second-factor-me@example.com", "name": "Me", "password": PASSWORD})
    me = timed(logged_in("second-factor-me@example.com"), "GET me")
    refused = 0
    for batch in range(batches):
        validations, second_factors, sign_ins = [], [], []
        for email, secret, enrolled in totp_accounts[batch * calls : (batch + 1) * calls]:
            validations.append(
                (timed(logged_in(email), "otp/validate, correct code (pending session)"), secret, enrolled)
            )
        for _ in range(calls):
            pending = logged_in(passkey_email)
            options = post(pending, "passkeys/authentication/options").json()["publicKey"]
            second_factors.append((timed(pending, "passkeys/authentication (pending session)"), options))
            anonymous = client()
            options = post(anonymous, "passkeys/authentication/options").json()["publicKey"]
            sign_ins.append((timed(anonymous, "passkeys/authentication (no session: sign-in)"), options))
        responses = [me.get(API + "me") for _ in range(calls)]
        for someone, secret, enrolled in validations:
            step = max(int(time.time() // STEP), enrolled + 1)  # a step after the enrolment's: single use
            responses.append(post(someone, "otp/validate", {"token": code(secret, step)}))
        for someone, options in second_factors + sign_ins:
            responses.append(
                post(someone, "passkeys/authentication", {"credential": authenticator.authenticate(options)})
            )
        refused += sum(response.status_code != 200 for response in responses)
    medians = {kind: round(statistics.median(values), 1) for kind, values in cpu.items()}
    return {"cpu_us_median": medians, "calls": batches * calls, "not_200": refused}


def email_enqueue_cost(user, batches: int, calls: int) -> dict:
    """What a security email adds to the request that reports its change: the same event recorded
    in a transaction (audit.record, as the flows do) with its email enqueued and without (the
    receiver disconnected), in interleaved batches; median CPU per call, in µs. The settings are
    the servers': the database task backend, so the email is an INSERT of a task row."""
    from django.db import transaction
    from django.test import RequestFactory
    from django_tasks_db.models import DBTaskResult

    from otp_app import audit, notifications, signals
    from otp_app.models import SecurityEvent

    kind = SecurityEvent.Kind.RECOVERY_CODES_REGENERATED
    signal, uid = signals.BY_KIND[kind], f"notifications-{kind}"
    request = RequestFactory().post("/api/auth/otp/recovery-codes", REMOTE_ADDR="127.0.0.1")
    tasks_before = DBTaskResult.objects.count()

    def record():
        with transaction.atomic():
            audit.record(request, kind, user=user)

    def batch():
        started = time.process_time_ns()
        for _ in range(calls):
            record()
        return (time.process_time_ns() - started) / 1000 / calls

    record()  # warm: templates, statements, the task's backend
    with_email, without = [], []
    try:
        for _ in range(batches):
            with_email.append(batch())
            signal.disconnect(dispatch_uid=uid)
            without.append(batch())
            signal.connect(notifications.enqueue, dispatch_uid=uid)
    finally:
        signal.connect(notifications.enqueue, dispatch_uid=uid)
    enqueued = DBTaskResult.objects.count() - tasks_before
    return {
        "with_email_us": round(statistics.median(with_email), 1),
        "without_us": round(statistics.median(without), 1),
        "difference_us": round(statistics.median(a - b for a, b in zip(with_email, without, strict=True)), 1),
        "calls": batches * calls,
        "tasks_enqueued": enqueued,
        "backend": settings.TASKS["default"]["BACKEND"],
    }


def _timed_us(function, calls: int) -> dict:
    function()  # warm: imports, caches
    cpu = []
    for _ in range(calls):
        started = time.process_time_ns()
        function()
        cpu.append((time.process_time_ns() - started) / 1000)
    return {"cpu_us_median": round(statistics.median(cpu), 1), "calls": calls}


if __name__ == "__main__":
    json.dump(main(), sys.stdout)
