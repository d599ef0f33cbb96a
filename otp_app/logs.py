"""Log lines a client cannot forge: every message is written on one line, its control
characters escaped, by the service's handlers and by gunicorn's error and access logs; each names
the request it belongs to (its request id), as readable text or, with LOG_FORMAT=json, as one JSON
object per line.

Emails, paths, hosts and user agents reach log messages; a newline in one would start a line
that reads as the service's own. Tracebacks are the service's own text and stay as they are.
"""

import json
import logging
import re
from contextvars import ContextVar
from datetime import UTC, datetime

from gunicorn import glogging

# The id of the request being answered (middleware.RequestIdMiddleware); "" outside requests.
request_id: ContextVar[str] = ContextVar("request_id", default="")

# C0 and C1 controls and DEL (newlines, carriage returns, tabs, terminal escapes), Unicode's line
# and paragraph separators, bidirectional marks and overrides (text shown in another order than
# written), and lone surrogates (which a UTF-8 log cannot encode: the line would be lost).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def escape(text: str) -> str:
    """`text` with each unsafe character written as its Python escape: \\n, \\x1b, \\u2028."""
    return _UNSAFE.sub(lambda unsafe: unsafe.group().encode("unicode_escape").decode("ascii"), text)


class EscapingFormatter(logging.Formatter):
    """A Formatter whose message (the record's text with its arguments) is escaped; the
    traceback, appended after it, is not."""

    def formatMessage(self, record):
        record.message = escape(record.message)
        return super().formatMessage(record)


def fields(**values) -> dict:
    """`extra` for a log call whose `values` a JSON line writes as fields of their own:
    `logger.info("...", extra=logs.fields(kind=kind))`."""
    return {"fields": values}


class RequestIdFilter(logging.Filter):
    """Gives each record its request's id, `record.request_id` ("-" outside requests), unless the
    record names one itself (gunicorn's access lines, written once the request is over)."""

    def filter(self, record):
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get() or "-"
        return True


class JsonFormatter(EscapingFormatter):
    """One JSON object per line: time, level, logger, message, request_id, the record's `fields`
    and its traceback, if any, as `exc_info`.

    JSON escapes the control characters of C0 and the quotes; the other characters that
    `escape()` stands for are written as JSON escapes too, so a line stays one line for any
    reader and UTF-8 can encode every line.
    """

    def format(self, record):
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        line |= {name: value for name, value in getattr(record, "fields", {}).items() if name not in line}
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack_info"] = self.formatStack(record.stack_info)
        text = json.dumps(line, ensure_ascii=False, default=str)
        return _UNSAFE.sub(lambda unsafe: f"\\u{ord(unsafe.group()):04x}", text)


class OneLineWarning(logging.Filter):
    """Turns a logger's records into warnings without their traceback.

    For refusals of a client's mistake (a Host header not in ALLOWED_HOSTS), which Django logs as
    errors with a traceback that says nothing, and which scanners cause by the thousand.
    """

    def filter(self, record):
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info = record.exc_text = record.stack_info = None
        return True


class GunicornLogger(glogging.Logger):
    """gunicorn's logger (gunicorn.conf.py: `logger_class`) with its handlers' messages escaped;
    its settings (accesslog, errorlog, loglevel, syslog) work as they do for gunicorn's own."""

    def setup(self, cfg):
        super().setup(cfg)
        for handler in [*self.error_log.handlers, *self.access_log.handlers]:
            handler.setFormatter(self.formatter(handler.formatter or logging.Formatter()))
            handler.addFilter(RequestIdFilter())

    def formatter(self, plain: logging.Formatter) -> logging.Formatter:
        return EscapingFormatter(plain._fmt, plain.datefmt)


class JsonGunicornLogger(GunicornLogger):
    """gunicorn's logs as JSON lines (gunicorn.conf.py, with LOG_FORMAT=json). An access line has
    the request id the response carries, the method, the path without its query string, the
    status, the duration and the client's address: no body, header or cookie."""

    def formatter(self, plain: logging.Formatter) -> logging.Formatter:
        return JsonFormatter()

    def access(self, resp, req, environ, request_time):
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        status = str(atoms["s"])
        access = {
            "method": atoms["m"],
            "path": atoms["U"],
            "status": int(status) if status.isdigit() else status,
            "duration_ms": round(request_time.total_seconds() * 1000, 3),
            "remote_address": atoms["h"],
        }
        self.access_log.info(
            "%s %s %s",
            access["method"],
            access["path"],
            access["status"],
            extra={"request_id": atoms.get("{x-request-id}o", "-"), **fields(**access)},
        )
