"""Settings of the 2FA API, read from the environment (and an optional `.env` file).

Every variable is listed with its default in docs/configuration.md. Development needs
none of them: DEBUG on, SQLite in `db.sqlite3`, the cache in that same database.
"""

import ipaddress
import warnings
from pathlib import Path

import dj_email_url
import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

# coreapi (pinned by the design, imported by DRF) imports setuptools' deprecated pkg_resources.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)

env = environ.Env()
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

DEBUG = env.bool("DEBUG", default=True)

SECRET_KEY = env.str("SECRET_KEY", default="")
if not DEBUG and (len(SECRET_KEY) < 50 or SECRET_KEY.startswith("django-insecure")):
    # Sessions are signed with it: a missing or guessable key would let anyone forge a login.
    raise ImproperlyConfigured("With DEBUG off, SECRET_KEY must be set to 50 or more random characters")
SECRET_KEY = SECRET_KEY or "django-insecure-development-only-never-use-in-production"

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "corsheaders",
    "rest_framework",
    "drf_yasg",
    "otp_app",  # before django_tasks_db: its `db_worker` command is otp_app's
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    # First: every response and every log line of a request has its id.
    "otp_app.middleware.RequestIdMiddleware",
    "otp_app.middleware.MetricsMiddleware",  # with METRICS_ENABLED only: every response, timed whole
    "otp_app.middleware.ContentSecurityPolicyMiddleware",  # every response passes it
    "otp_app.middleware.ServiceUnavailableMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "otp_app.middleware.SessionMiddleware",  # Django's, and the session's row names its client
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Before the first middleware that reads a body (CSRF), after CORS so a front end can read the 415.
    "otp_app.middleware.Utf8RequestsMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "otp_app.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # After authentication: staff without a second factor kept out of the admin, when required.
    "otp_app.middleware.AdminEnrolmentMiddleware",
]

ROOT_URLCONF = "otp_project.urls"
WSGI_APPLICATION = "otp_project.wsgi.application"
APPEND_SLASH = False  # the API's paths take an optional slash themselves (otp_app/urls.py)

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------------
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}")}
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# Behind a pooler in transaction mode (PgBouncer's `pool_mode = transaction`) each transaction
# may run on another server connection, so nothing may outlive a commit: not a cursor held open
# (what QuerySet.iterator() opens outside a transaction), which is why rows are then fetched whole;
# not a prepared statement, which Django leaves off (psycopg's prepare_threshold is None unless
# OPTIONS sets it); and this service keeps no other session state (SET, advisory locks, LISTEN).
if env.bool("DATABASE_TRANSACTION_POOLING", default=False):
    DATABASES["default"]["DISABLE_SERVER_SIDE_CURSORS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            # Several server processes write at once: WAL lets readers run beside the writer,
            # IMMEDIATE takes the write lock when a transaction starts (no deadlocked upgrade),
            # and the timeout makes a writer wait its turn instead of failing "database is locked".
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        }
    )

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and sessions ------------------------------------------------------------------------
# The cache holds the limits, so it must be one that every process shares: Redis when REDIS_URL
# is set (atomic counters, many instances); otherwise a table of the database (created by
# `migrate`), and then the failed-login counters have a table of their own (throttles.py).
# CACHE_URL may name another (e.g. `locmemcache://` for a single process in tests).
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            # Services (or test servers) that share one Redis keep apart by their prefix.
            "KEY_PREFIX": env.str("REDIS_KEY_PREFIX", default="otp"),
            "OPTIONS": {"socket_connect_timeout": 2, "socket_timeout": 2},
        }
    }
else:
    CACHES = {"default": env.cache("CACHE_URL", default="dbcache://otp_cache")}
    # Culling at Django's default 300 entries would let anyone who creates 300 keys (sign-ups from
    # 300 addresses) wipe every address's limit.
    CACHES["default"].setdefault("OPTIONS", {}).setdefault("MAX_ENTRIES", 10_000_000)
# Sessions live in the database, also with Redis: one statement reads a session with its account,
# fewer round trips than a session from Redis and then its account, and nothing is lost when
# Redis restarts (it keeps nothing on disk).
SESSION_ENGINE = "otp_app.session_backends.db"

# --- Users, passwords, sessions ---------------------------------------------------------------
AUTH_USER_MODEL = "otp_app.UserModel"
AUTHENTICATION_BACKENDS = ["otp_app.backends.AccountBackend"]
PASSWORD_HASHERS = [
    "otp_app.hashers.Argon2idHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {
        "NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator",
        "OPTIONS": {"user_attributes": ("email", "name")},
    },
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_NAME = "sessionid"
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
# A session ends 12 hours after its login, or after 30 minutes unused (NIST SP 800-63B's AAL2
# reauthentication limits); SESSION_IDLE_SECONDS=0 turns the idle limit off.
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 60 * 60)
SESSION_IDLE_SECONDS = env.int("SESSION_IDLE_SECONDS", default=30 * 60)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)

# --- HTTPS (production defaults; `manage.py check --deploy` stays quiet with them) ---------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
# Load balancers probe, and Prometheus scrapes each instance, over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^metrics$"]
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=not DEBUG)
# Behind a proxy that terminates TLS and sets X-Forwarded-Proto (only then!): "true".
if env.bool("SECURE_PROXY_SSL", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# --- Cross-origin -----------------------------------------------------------------------------
# The React app's development origin is trusted with DEBUG on only: a production deployment
# names its front ends itself, and trusts none until it does.
CORS_ALLOWED_ORIGINS = env.list("CORS_ALLOWED_ORIGINS", default=["http://localhost:3000"] if DEBUG else [])
CORS_ALLOW_CREDENTIALS = True
CORS_URLS_REGEX = r"^/api/.*$"
# A front end may read the request's id (to quote in a report) and how long to wait after a 429
# or 503: neither is a header browsers show to scripts by default.
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After"]
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

# --- Two-factor rules (TWOFA_*): every one may be set in the environment ---------------------
TWOFA_ISSUER = env.str("TWOFA_ISSUER", default="2FA API")
# Time steps (30 s) accepted either side of now, for clock drift (RFC 6238 §5.2).
TWOFA_VALID_WINDOW = env.int("TWOFA_VALID_WINDOW", default=1)
# Wrong codes in a row before the account locks; the lock then lasts BASE seconds, doubling with
# each further wrong code, at most MAX seconds.
TWOFA_LOCKOUT_THRESHOLD = env.int("TWOFA_LOCKOUT_THRESHOLD", default=5)
TWOFA_LOCKOUT_BASE_SECONDS = env.int("TWOFA_LOCKOUT_BASE_SECONDS", default=30)
TWOFA_LOCKOUT_MAX_SECONDS = env.int("TWOFA_LOCKOUT_MAX_SECONDS", default=3600)
# Wrong codes in a row after which the authenticator's codes stay refused until a recovery code
# is accepted or an administrator unlocks the account (NIST SP 800-63B-4: at most 100). 0 turns
# this off, for the benchmark's endless wrong codes only.
TWOFA_CODE_FAILURE_LIMIT = env.int("TWOFA_CODE_FAILURE_LIMIT", default=100)
if not 0 <= TWOFA_CODE_FAILURE_LIMIT <= 100:
    raise ImproperlyConfigured("TWOFA_CODE_FAILURE_LIMIT must be from 1 to 100 (0: off)")
# How long a pending login (password proven, code not yet) waits for otp/validate.
TWOFA_PENDING_SECONDS = env.int("TWOFA_PENDING_SECONDS", default=300)
# Failed logins allowed per account and per client address, as "count/period" (s, m, h, d).
TWOFA_LOGIN_FAILURES_PER_ACCOUNT = env.str("TWOFA_LOGIN_FAILURES_PER_ACCOUNT", default="10/15m")
TWOFA_LOGIN_FAILURES_PER_ADDRESS = env.str("TWOFA_LOGIN_FAILURES_PER_ADDRESS", default="100/15m")
# Registrations per client address, as DRF rates ("count/second|minute|hour|day"): enough for a
# developer or an office behind one address, never an hour-long wait; each costs a password hash.
TWOFA_REGISTER_RATE = env.str("TWOFA_REGISTER_RATE", default="20/minute")
TWOFA_MAX_BODY_BYTES = env.int("TWOFA_MAX_BODY_BYTES", default=16 * 1024)
# How long after proving the second factor in a session otp/disable needs no fresh code.
TWOFA_REAUTH_SECONDS = env.int("TWOFA_REAUTH_SECONDS", default=15 * 60)
# Fernet keys (comma-separated) that encrypt TOTP secrets: the first encrypts, all decrypt.
# Make one with: python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"
TWOFA_ENCRYPTION_KEYS = env.list("TWOFA_ENCRYPTION_KEYS", default=[])
if not TWOFA_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("With DEBUG off, TWOFA_ENCRYPTION_KEYS must be set (see README)")
    from otp_app.crypto import key_from_secret_key

    TWOFA_ENCRYPTION_KEYS = [key_from_secret_key(SECRET_KEY)]
# Origins whose pages may send state-changing requests with the session cookie, besides the
# API's own origin (Swagger UI): the CORS front ends and any CSRF-trusted origins.
TWOFA_TRUSTED_ORIGINS = [*CORS_ALLOWED_ORIGINS, *CSRF_TRUSTED_ORIGINS]

# Passkeys (WebAuthn). The RP ID is the domain passkeys are bound to (the site's host name or a
# parent of it); a passkey made for one RP ID never works for another, so choose it once.
TWOFA_WEBAUTHN_RP_ID = env.str("TWOFA_WEBAUTHN_RP_ID", default="localhost")
TWOFA_WEBAUTHN_RP_NAME = env.str("TWOFA_WEBAUTHN_RP_NAME", default=TWOFA_ISSUER)
# Origins whose pages may use passkeys, besides the API's own origin: by default the front ends.
TWOFA_WEBAUTHN_ORIGINS = env.list("TWOFA_WEBAUTHN_ORIGINS", default=CORS_ALLOWED_ORIGINS)
# Seconds a passkey challenge stays valid; each is used once, by the attempt that sends it.
TWOFA_WEBAUTHN_TIMEOUT = env.int("TWOFA_WEBAUTHN_TIMEOUT", default=300)
if TWOFA_WEBAUTHN_TIMEOUT <= 0:
    raise ImproperlyConfigured("TWOFA_WEBAUTHN_TIMEOUT must be a positive number of seconds")
# Passkey sign-ins (without a password) started per client address, as a DRF rate.
TWOFA_PASSKEY_SIGN_IN_RATE = env.str("TWOFA_PASSKEY_SIGN_IN_RATE", default="60/minute")
# The /demo/ page, which walks the whole API in a browser: on by default with DEBUG only.
TWOFA_DEMO_PAGE = env.bool("TWOFA_DEMO_PAGE", default=DEBUG)
# Require a second factor. TWOFA_REQUIRED: an account without one may only enrol one (me,
# logout, otp/generate, otp/verify, passkey registration); every other full-session endpoint
# answers 403. TWOFA_REQUIRED_FOR_STAFF (or TWOFA_REQUIRED): staff without one stay out of the admin.
TWOFA_REQUIRED = env.bool("TWOFA_REQUIRED", default=False)
TWOFA_REQUIRED_FOR_STAFF = env.bool("TWOFA_REQUIRED_FOR_STAFF", default=False)

# The client address of every limit and of the audit trail (otp_app/client_address.py): the
# connection's, unless the connection comes from one of TRUSTED_PROXIES (addresses or networks)
# and RATELIMIT_IP_META_KEY names the request.META key of the header that proxy sets
# (HTTP_X_REAL_IP, HTTP_X_FORWARDED_FOR). Headers from anyone else are the client's own words.
RATELIMIT_IP_META_KEY = env.str("RATELIMIT_IP_META_KEY", default="") or None
if RATELIMIT_IP_META_KEY and not RATELIMIT_IP_META_KEY.startswith("HTTP_"):
    # A header as written (X-Real-IP) is no META key: every client would count as the proxy.
    raise ImproperlyConfigured("RATELIMIT_IP_META_KEY must name a header's META key, e.g. HTTP_X_REAL_IP")
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=["127.0.0.1", "::1"])
try:
    [ipaddress.ip_network(proxy, strict=False) for proxy in TRUSTED_PROXIES]
except ValueError as error:
    raise ImproperlyConfigured(f"TRUSTED_PROXIES: {error}") from None

# Prometheus metrics at /metrics (otp_app/metrics.py, docs/operations.md): off unless enabled, and
# then only for the client addresses or networks allowed (by the rule above), or for a request
# bearing the token, from anywhere. How many logins fail, and when, is nobody else's business.
METRICS_ENABLED = env.bool("METRICS_ENABLED", default=False)
METRICS_ALLOWED_ADDRESSES = env.list("METRICS_ALLOWED_ADDRESSES", default=["127.0.0.1", "::1"])
try:
    [ipaddress.ip_network(address, strict=False) for address in METRICS_ALLOWED_ADDRESSES]
except ValueError as error:
    raise ImproperlyConfigured(f"METRICS_ALLOWED_ADDRESSES: {error}") from None
METRICS_BEARER_TOKEN = env.str("METRICS_BEARER_TOKEN", default="")
if METRICS_BEARER_TOKEN and (len(METRICS_BEARER_TOKEN) < 32 or not METRICS_BEARER_TOKEN.isascii()):
    # It opens the metrics from anywhere: a short one could be guessed.
    raise ImproperlyConfigured("METRICS_BEARER_TOKEN must be 32 or more ASCII characters")

# --- Security emails ---------------------------------------------------------------------------
# Each is a task (otp_app/notifications.py). `database`: a row written in the transaction of the
# change it reports, sent by `manage.py db_worker`, tried again while the mail server refuses it;
# `immediate`: sent during the request, once, so that a development server needs no worker.
TASKS_BACKEND = env.str("TASKS_BACKEND", default="immediate" if DEBUG else "database")
_TASK_BACKENDS = {
    "immediate": "django_tasks.backends.immediate.ImmediateBackend",
    "database": "django_tasks_db.DatabaseBackend",
}
if TASKS_BACKEND not in _TASK_BACKENDS:
    raise ImproperlyConfigured("TASKS_BACKEND must be immediate or database")
TASKS = {"default": {"BACKEND": _TASK_BACKENDS[TASKS_BACKEND]}}
# Where mail goes, as a URL: smtp://user:password@host:25, submission://user:password@host (587,
# STARTTLS), ?ssl=true for implicit TLS, ?timeout=<seconds>; console: prints it. By default the
# console with DEBUG on, else an SMTP server on this machine (a local MTA relays it on).
# Not kept as a setting: Django's debug page would show the password in it.
_email = dj_email_url.parse(env.str("EMAIL_URL", default="console:" if DEBUG else "smtp://localhost:25"))
if "EMAIL_BACKEND" not in _email:
    raise ImproperlyConfigured(f"EMAIL_URL must start with one of {', '.join(dj_email_url.SCHEMES)}")
EMAIL_BACKEND = _email["EMAIL_BACKEND"]
EMAIL_HOST = _email["EMAIL_HOST"] or "localhost"
EMAIL_PORT = _email["EMAIL_PORT"] or 25
EMAIL_HOST_USER = _email["EMAIL_HOST_USER"] or ""
EMAIL_HOST_PASSWORD = _email["EMAIL_HOST_PASSWORD"] or ""
EMAIL_USE_TLS = _email["EMAIL_USE_TLS"]
EMAIL_USE_SSL = _email["EMAIL_USE_SSL"]
EMAIL_FILE_PATH = _email["EMAIL_FILE_PATH"]
# A mail server that accepts the connection and then says nothing must not hold a worker forever.
EMAIL_TIMEOUT = _email["EMAIL_TIMEOUT"] or 20
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default=_email.get("DEFAULT_FROM_EMAIL", "no-reply@localhost"))
# A message the mail server did not take is tried again after RETRY seconds, doubling each time,
# at most RETRY_MAX seconds apart, until it is taken (or its mailbox is refused for good).
TWOFA_EMAIL_RETRY_SECONDS = env.int("TWOFA_EMAIL_RETRY_SECONDS", default=60)
TWOFA_EMAIL_RETRY_MAX_SECONDS = env.int("TWOFA_EMAIL_RETRY_MAX_SECONDS", default=3600)
# A message still being sent this long after a worker took it lost that worker (killed, its
# machine gone): every worker checks for such messages and runs them again. Far longer than a
# send can take (EMAIL_TIMEOUT bounds each wait on the mail server).
TWOFA_EMAIL_STALE_SECONDS = env.int("TWOFA_EMAIL_STALE_SECONDS", default=600)
if min(TWOFA_EMAIL_RETRY_SECONDS, TWOFA_EMAIL_RETRY_MAX_SECONDS, TWOFA_EMAIL_STALE_SECONDS) <= 0:
    raise ImproperlyConfigured("TWOFA_EMAIL_RETRY_SECONDS, _RETRY_MAX_SECONDS and _STALE_SECONDS must be positive")

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["otp_app.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["otp_app.permissions.TrustedOrigin"],
    "DEFAULT_PARSER_CLASSES": ["otp_app.parsers.JSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "EXCEPTION_HANDLER": "otp_app.exceptions.handle_exception",
    "DEFAULT_THROTTLE_RATES": {"register": TWOFA_REGISTER_RATE, "passkey-sign-in": TWOFA_PASSKEY_SIGN_IN_RATE},
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}

SWAGGER_USE_COMPAT_RENDERERS = False
SWAGGER_SETTINGS = {
    "USE_SESSION_AUTH": False,
    "DEFAULT_AUTO_SCHEMA_CLASS": "otp_app.openapi.AutoSchema",
    "SECURITY_DEFINITIONS": {
        "session": {
            # Swagger 2.0 cannot declare a cookie; this names the header that carries it.
            "type": "apiKey",
            "in": "header",
            "name": "Cookie",
            "description": "The `sessionid` cookie set by login (HttpOnly). Browsers, Swagger UI, "
            "Postman and Insomnia send it by themselves; with curl use a cookie jar (-c/-b).",
        }
    },
    "DEFAULT_MODEL_RENDERING": "example",
}

# --- Internationalisation, static files, logging ---------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
# WhiteNoise serves the admin's, Swagger UI's and ReDoc's assets with DEBUG off; from the apps'
# own folders when `collectstatic` has not been run.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
warnings.filterwarnings("ignore", message="No directory at", category=UserWarning)  # before collectstatic

# Every message is written on one line, its control characters escaped (otp_app/logs.py): an
# email, path or host with a newline cannot start a line of its own. gunicorn's logs do the same.
# Each line names its request's id; LOG_FORMAT=json writes one JSON object per line instead of text
# (gunicorn.conf.py reads it too, for gunicorn's own logs).
LOG_FORMAT = env.str("LOG_FORMAT", default="text")
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured("LOG_FORMAT must be text or json")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "text": {
            "class": "otp_app.logs.EscapingFormatter",
            "format": "%(levelname)s %(name)s [req=%(request_id)s]: %(message)s",
        },
        "json": {"class": "otp_app.logs.JsonFormatter"},
        "django.server": {
            "class": "otp_app.logs.EscapingFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "filters": {
        "request_id": {"()": "otp_app.logs.RequestIdFilter"},
        "one_line_warning": {"()": "otp_app.logs.OneLineWarning"},
        "require_debug_true": {"()": "django.utils.log.RequireDebugTrue"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["request_id"]},
        # runserver's request lines, as Django writes them (with DEBUG on), escaped.
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_FORMAT == "json" else "django.server",
            "filters": ["require_debug_true", "request_id"],
        },
    },
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        # Django's own handlers (a console with DEBUG on; mail to ADMINS, of whom there are none)
        # would write unescaped: its records go to the root's handler instead.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        # Django logs every 4xx as a warning; the access log has them already, and wrong codes or
        # passwords by the thousand would flood it. Errors (5xx) are still logged.
        "django.request": {"level": env.str("DJANGO_REQUEST_LOG_LEVEL", default="ERROR")},
        # A Host header not in ALLOWED_HOSTS is a 400 and one warning line, not an error with a
        # traceback: scanners send them by the thousand.
        "django.security.DisallowedHost": {"filters": ["one_line_warning"]},
    },
}
