"""How the service logs: ``[logging] format = "text"`` (default, for a terminal) or
``"json"`` (one JSON object a line, for a log shipper).

A JSON line has ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message`` and,
where the code knows them (``extra={...}`` on the call), ``message_id``,
``partner_id``, ``correlation_id``, ``document_id``, ``job_id``, ``outbox_id``;
``exception`` holds a traceback. Either way every handler escapes the arguments of
each record (gateway.logsafe), so no partner value can start a line of its own
(alembic's dialect chatter is filtered in gateway.db.schema).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from gateway.logsafe import EscapeArgs

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
IDS = ("message_id", "partner_id", "correlation_id", "document_id", "job_id", "outbox_id")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in IDS:
            value = getattr(record, key, None)
            if value is not None:
                line[key] = str(value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_logging(level: str | int = "INFO", fmt: str = "text") -> None:
    """Replace the root logger's handlers with one on standard error in ``fmt``."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(EscapeArgs())
    root.addHandler(handler)
    root.setLevel(level)
