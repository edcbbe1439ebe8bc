"""One logging setup for every giftwave process, JSON or text lines, and the audit lines.

Every command (``serve`` and its ``--workers`` children, ``demo``, ``migrate``, the ledger
writer child) calls ``setup_logging`` once at start: one handler on the root logger, to
stderr, with ``RedactSecrets`` on it, so every line (ours, uvicorn's, a library's) is
redacted and formatted the same way. uvicorn is run with ``log_config=None`` and its loggers
propagate to that handler.

A line carries the request id of the HTTP request or WebSocket it was written while serving
(``REQUEST_ID``, bound by ``api/request_observer.py``). Audit lines (``audit``) are INFO lines
of the ``giftwave.audit`` logger with a stable event name and the ids and amounts an operator
needs to reconstruct a money event; docs/operations.md lists them.
"""

from __future__ import annotations

import logging
import sys
import time
from contextvars import ContextVar
from typing import Any, Final, Literal

import orjson

from giftwave.log_redaction import RedactSecrets, redact

LogFormat = Literal["json", "text"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
REQUEST_ID: Final[ContextVar[str | None]] = ContextVar("giftwave_request_id", default=None)
AUDIT_LOGGER: Final = "giftwave.audit"
# uvicorn's loggers: they must reach our handler, not handlers of their own.
_UVICORN_LOGGERS: Final = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}  # uvicorn's, with terminal colours
)
_audit_log = logging.getLogger(AUDIT_LOGGER)


def audit(event: str, **fields: int | str | None) -> None:
    """One audit line: ``event`` (``audit.topup_credited``...) with its ids and amounts.

    Fields are plain values named with their unit (``coins``, ``amount_cents``); never a
    secret. The event is the line's message, so a text log shows it too."""
    _audit_log.info(event, extra={"audit": fields})


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, value in record.__dict__.items():
        if key in _RECORD_ATTRIBUTES or key.startswith("_"):
            continue
        if key == "audit" and isinstance(value, dict):
            fields.update(value)
        elif isinstance(value, (str, int, float, bool)) or value is None:
            fields[key] = redact(value) if isinstance(value, str) else value
        else:
            fields[key] = redact(str(value))
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts (ISO 8601 UTC), level, logger, msg, request_id when
    bound, exc (the traceback) when present, then the record's extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info and not record.exc_text:
            record.exc_text = redact(self.formatException(record.exc_info))
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = record.stack_info
        for key, value in _extra_fields(record).items():
            line.setdefault(key, value)  # an extra never hides a standard field
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """For a person at a terminal: time, level, logger, request id, message, extra fields."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        request_id = REQUEST_ID.get()
        fields = _extra_fields(record)
        if fields:
            text += " " + " ".join(f"{k}={v}" for k, v in fields.items())
        return text if request_id is None else f"{text} request_id={request_id}"


def _iso_utc(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def default_format() -> LogFormat:
    """JSON for a collector, text for a person: a terminal on stderr means a person."""
    return "text" if sys.stderr.isatty() else "json"


def setup_logging(log_format: LogFormat | None = None, level: LogLevel = "INFO") -> None:
    """The root logger's one handler (stderr, redacted, formatted); uvicorn's loggers
    propagate to it. Calling it again replaces the handler: a process has exactly one."""
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RedactSecrets())
    handler.setLevel(level)  # uvicorn's loggers set levels of their own
    handler.setFormatter(
        JsonFormatter() if (log_format or default_format()) == "json" else TextFormatter()
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic names each of its plugins as it loads them, at every schema check.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    # httpx names every request it sends at INFO: a webhook delivery, a bench client's each
    # gift. Our own lines say what a delivery did; at DEBUG, httpx's come back.
    quiet = logging.DEBUG if level == "DEBUG" else logging.WARNING
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(quiet)
    for name in _UVICORN_LOGGERS:
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers.clear()
        uvicorn_logger.propagate = True
    logging.captureWarnings(True)


def setup_logging_from_environment() -> None:
    """``setup_logging`` with GIFTWAVE_LOG_FORMAT and GIFTWAVE_LOG_LEVEL; a process whose
    settings do not load (the command reports why) still gets the default setup."""
    from giftwave.config import ConfigError, load_settings

    try:
        settings = load_settings()
    except ConfigError:
        setup_logging()
        return
    setup_logging(settings.log_format, settings.log_level)
