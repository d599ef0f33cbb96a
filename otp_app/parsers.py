"""JSON bodies, bounded in size and nesting.

DRF's JSONParser reads the whole stream, however large, and lets a deeply nested document
crash the decoder with RecursionError; this one refuses both with a 4xx.
"""
import io

from django.conf import settings
from rest_framework import exceptions, parsers

from .exceptions import RequestTooLarge


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.TWOFA_MAX_BODY_BYTES
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if declared and declared.isdigit() and int(declared) > limit:
            raise RequestTooLarge
        body = stream.read(limit + 1) if stream is not None else b""
        if len(body) > limit:
            raise RequestTooLarge
        try:
            return super().parse(io.BytesIO(body), media_type, parser_context)
        except RecursionError:
            raise exceptions.ParseError("JSON parse error - nested too deeply")
