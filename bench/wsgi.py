"""WSGI entry point of the benchmark's servers: the project with bench.settings, and in front of
it the raw floor, `/bench/raw`, answered before Django sees the request."""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402

CONSTANT = b'{"status": "ok"}'
django_application = get_wsgi_application()


def raw_wsgi(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(CONSTANT)))])
    return [CONSTANT]


def application(environ, start_response):
    if environ.get("PATH_INFO") == "/bench/raw":
        return raw_wsgi(environ, start_response)
    return django_application(environ, start_response)
