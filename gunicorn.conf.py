"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py otp_project.wsgi`.

Each may be overridden by the environment (GUNICORN_* below) or on the command line.
"""

import os
import shutil
import tempfile
from pathlib import Path

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
# Password hashing is CPU-bound: about one worker per core, with a few threads each for the
# requests that wait on the database.
workers = int(os.environ.get("WEB_CONCURRENCY", os.cpu_count() or 2))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
# A worker whose main loop is silent this long is restarted. With threads this bounds a stuck
# process, not a request: nothing in gunicorn bounds how long a client takes to send one, so a
# proxy that reads requests whole must sit in front (README, "Deploying"; docs/nginx.conf).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
# Idle kept-alive connections wait in the worker's poller, not in a thread. Behind a balancer
# that keeps its connections to gunicorn open, set this above the balancer's idle timeout, or
# its requests race gunicorn's closing of the connection.
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "2"))
# The largest request the API needs, with room (short paths, bodies of TWOFA_MAX_BODY_BYTES,
# a browser's two dozen headers and its cookie): larger ones are refused (414, 431) before
# the application sees them.
limit_request_line = 2048
limit_request_fields = 50
limit_request_field_size = 4096
# Restart workers now and then, so a slow leak can never grow without bound.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "10000"))
max_requests_jitter = 1000
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None  # "" turns it off
errorlog = "-"
# Both logs escape control characters in what they write, as the service's own log does: a
# newline in a path or header cannot start a line of its own. With LOG_FORMAT=json (read by the
# service's settings too) they write one JSON object per line, as the service does.
json_logs = os.environ.get("LOG_FORMAT") == "json"  # not a gunicorn setting: gunicorn ignores it
logger_class = "otp_app.logs.JsonGunicornLogger" if json_logs else "otp_app.logs.GunicornLogger"
# The access log writes no query string or body: the request id the response carries, then the
# method, path and protocol, not the request line (%(r)s), which holds the query string.
access_log_format = '%(h)s [req=%({x-request-id}o)s] "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket has one default path per machine user, so several instances (or
# test servers) on one machine would overwrite each other's; this service does not use it.
control_socket_disable = True

# Prometheus metrics (otp_app/metrics.py, with METRICS_ENABLED): each worker writes its counts to
# files in PROMETHEUS_MULTIPROC_DIR, and a scrape of any worker adds up all of them, those of
# workers since replaced too, so a restart loses no count. Without the variable, a temporary
# directory is made for this server and removed when it stops. Either is emptied at start: no
# count carries over from an earlier run.
_TEMPORARY = "TWOFA_METRICS_TEMPORARY_DIR"  # not a gunicorn setting: the directory made here


def on_starting(server):
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory or directory == os.environ.get(_TEMPORARY):
        # None named, or the one an earlier master made for itself (inherited through a USR2
        # upgrade), which that master removes when it stops: a directory of this server's own.
        directory = tempfile.mkdtemp(prefix="otp-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = os.environ[_TEMPORARY] = directory
    Path(directory).mkdir(parents=True, exist_ok=True)
    for stale in Path(directory).glob("*.db"):
        stale.unlink()


def child_exit(server, worker):
    # Imported here, after on_starting named the directory: prometheus_client reads it once.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if os.environ.get(_TEMPORARY):
        shutil.rmtree(os.environ[_TEMPORARY], ignore_errors=True)
