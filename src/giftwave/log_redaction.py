"""Secrets kept out of the logs, whoever writes the line.

A credential in a URL (``?token=``, ``?ticket=``, an overlay's ``?key=``) or a header is
written to the log by code that never meant to: uvicorn logs every WebSocket's path and query
when it accepts it, access logs write every request line, an HTTP client's error quotes the
URL it called. Logs are read by more people, and kept longer, than any session lives; one
token from a log could request a payout. So the one handler every giftwave process logs
through (logs.py) runs ``RedactSecrets``, which rewrites the values of such parameters,
``Authorization`` headers and bearer tokens to ``[redacted]`` in the message, its arguments
and its traceback, before anything is formatted.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any, Final

REDACTED: Final = "[redacted]"

# A query or form parameter whose name ends in one of these: its value, up to the next
# separator. The name must start at a boundary, so "?token=" and "&api_key=" match.
_PARAMETER: Final = re.compile(
    r"(?i)(?<![\w.-])([\w.-]*(?:token|ticket|key|secret|password|signature))=([^&\s\"'#<>]+)"
)
# The same names as keys of a JSON object or a Python dict's repr: "token": "…".
_FIELD: Final = re.compile(
    r"(?i)([\"'][\w.-]*(?:token|ticket|secret|password|authorization)[\"']\s*:\s*)"
    r"([\"'])[^\"']*\2"
)
# An Authorization header as a line, a header list or a dict: its whole value.
_AUTHORIZATION: Final = re.compile(
    r"(?i)\b(authorization[\"']?\s*[:=,]\s*[\"']?)(?!\[redacted\])(?:(bearer|basic)\s+)?"
    r"[^\s\"',;}\])]+"
)
_BEARER: Final = re.compile(r"(?i)\b(bearer)\s+[\w.~+/=-]+")
_PLAIN: Final = (int, float, bool, type(None))


def redact(text: str) -> str:
    """``text`` with every credential value it shows replaced by ``[redacted]``."""
    if "=" not in text and ":" not in text and "earer" not in text:
        return text  # nothing any pattern could match: the usual log line
    text = _PARAMETER.sub(rf"\1={REDACTED}", text)
    text = _FIELD.sub(rf"\1\2{REDACTED}\2", text)
    text = _AUTHORIZATION.sub(
        lambda m: f"{m.group(1)}{m.group(2) + ' ' if m.group(2) else ''}{REDACTED}", text
    )
    return _BEARER.sub(rf"\1 {REDACTED}", text)


def _redact_arg(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, (*_PLAIN, bytes)):
        return value  # numbers keep their type: "%d" still formats them
    shown = str(value)
    cleaned = redact(shown)
    return value if cleaned == shown else cleaned  # a URL object, an exception with a URL


class RedactSecrets(logging.Filter):
    """A handler's filter: the record's message, arguments and traceback, redacted."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_redact_arg(a) for a in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {k: _redact_arg(v) for k, v in record.args.items()}
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
