"""JSON bodies: UTF-8 only, bounded in size and nesting.

DRF's JSONParser reads the whole stream, however large, decodes it with whatever codec the
request's charset names (bz2 and zlib included), and lets a deeply nested document crash the
decoder with RecursionError; this one refuses all three with a 4xx.
"""

import io

from django.conf import settings
from django.utils.http import parse_header_parameters
from rest_framework import exceptions, parsers

from .exceptions import RequestTooLarge
from .middleware import UTF8_ONLY, is_utf8


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        _, params = parse_header_parameters(media_type or "")
        if not is_utf8(params.get("charset")):
            raise exceptions.UnsupportedMediaType(media_type, detail=UTF8_ONLY)
        limit = settings.TWOFA_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise RequestTooLarge
        # The limit holds for what is parsed: the bytes read are decoded as UTF-8, never with
        # the codec that Django took from the charset (request.encoding).
        utf8_context = {**(parser_context or {}), "encoding": "utf-8"}
        try:
            return super().parse(io.BytesIO(body), media_type, utf8_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply") from None
