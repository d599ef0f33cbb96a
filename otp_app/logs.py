"""Log lines a client cannot forge: every message is written on one line, its control
characters escaped, by the service's handlers and by gunicorn's error and access logs.

Emails, paths, hosts and user agents reach log messages; a newline in one would start a line
that reads as the service's own. Tracebacks are the service's own text and stay as they are.
"""

import logging
import re

from gunicorn import glogging

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
            plain = handler.formatter or logging.Formatter()
            handler.setFormatter(EscapingFormatter(plain._fmt, plain.datefmt))
