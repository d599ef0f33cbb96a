"""Requests for Django's WSGI and ASGI handlers that are decoded as UTF-8 only.

Django takes `request.encoding` from any charset Python has a codec of (bz2, zlib, rot13), and
with a query string it decodes that at once, while building the request: a 500 before any
middleware runs. These requests keep Django's UTF-8 (DEFAULT_CHARSET) whatever the charset; a
request naming another is answered 415 by `middleware.Utf8RequestsMiddleware`.
"""

from django.core.handlers.asgi import ASGIRequest
from django.core.handlers.wsgi import WSGIRequest
from django.utils.http import parse_header_parameters


class Utf8Only:
    def _set_content_type_params(self, meta):
        # Django's own (django/http/request.py), less taking the encoding from the charset.
        self.content_type, self.content_params = parse_header_parameters(meta.get("CONTENT_TYPE", ""))


class Utf8WSGIRequest(Utf8Only, WSGIRequest):
    pass


class Utf8ASGIRequest(Utf8Only, ASGIRequest):
    pass
