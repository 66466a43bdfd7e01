"""Log lines a partner cannot forge.

A request path is percent-decoded before anyone logs it (``/partners/x%0aFAKE LINE``
is a path with a newline in it), header values and query strings are the
client's own bytes: written as they are, they could add a line to the log that
looks like the gateway's. Every partner-controlled value that goes into a log
line passes through :func:`printable`, which escapes control characters
(C0, DEL, C1, the Unicode line and paragraph separators) and lone surrogates
(bytes that were not UTF-8) the way Python writes them in a string literal, and
shortens very long values. :class:`SafeAccessLogger` is aiohttp's access logger
with every field so escaped; :class:`EscapeArgs`, installed on the service's log
handlers (``gateway serve``), escapes the text arguments of every log call, so a
module that logs a partner value (an ISA id, an exception quoting a SQL parameter)
cannot be made to write two lines either. Format strings are ours and keep their
layout; tracebacks stay multi-line.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from aiohttp.web_log import AccessLogger

__all__ = ["EscapeArgs", "SafeAccessLogger", "printable"]

# C0 controls, DEL, C1 controls, line/paragraph separators, lone surrogates.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\\\\]")
MAX_LOGGED = 1000


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char == "\\":
        return "\\\\"
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}"


def printable(value: Any, limit: int = MAX_LOGGED) -> str:
    """``value`` as text safe for one log line: control characters escaped, at most
    ``limit`` characters (then ``...``)."""
    text = value if isinstance(value, str) else str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    return _UNSAFE.sub(_escape, text)


class SafeAccessLogger(AccessLogger):
    """aiohttp's access logger, with every logged text passed through :func:`printable`."""

    def _format_line(self, request: Any, response: Any, time: float) -> Any:
        return [
            (key, printable(value) if isinstance(value, str) else value)
            for key, value in super()._format_line(request, response, time)
        ]


class EscapeArgs(logging.Filter):
    """Escapes the text (and exception) arguments of every record it sees."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and record.args:
            record.args = tuple(_escaped_arg(a) for a in record.args)
        return True


def _escaped_arg(value: Any) -> Any:
    if isinstance(value, str):
        return printable(value, limit=MAX_ARG)
    if isinstance(value, BaseException):
        return printable(str(value), limit=MAX_ARG)
    return value


MAX_ARG = 20_000  # a log argument is cut here (a SQL error can quote a whole batch)
