"""gunicorn settings for production: `gunicorn -c gunicorn.conf.py otp_project.wsgi`.

Each may be overridden by the environment (GUNICORN_* below) or on the command line.
"""

import os

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
# newline in a path or header cannot start a line of its own.
logger_class = "otp_app.logs.GunicornLogger"
# The access log writes no query string or body: the method, path and protocol, not the request
# line (%(r)s), which holds the query string.
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(M)sms'
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
# gunicorn's control socket has one default path per machine user, so several instances (or
# test servers) on one machine would overwrite each other's; this service does not use it.
control_socket_disable = True
