"""Logging of `serve`: plain text or JSON lines, and one access-log line per request."""

from __future__ import annotations

import json
import logging
import sys
import time
from datetime import UTC, datetime
from typing import IO, Any

from flask import Flask, Response, g, request

access_log = logging.getLogger("shim.access")

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and an event's name and fields when present.

    The standard library's logging with this small formatter rather than a logging library: the shim's
    records are few and flat, and every library that logs through `logging` (waitress, azure) is then
    rendered the same way without adapters.
    """

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        event = getattr(record, "event", None)
        if event is not None:
            line["event"] = event
            line.update(getattr(record, "fields", {}))
        access = getattr(record, "access", None)
        if access is not None:
            line.update(access)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def setup(log_format: str = "text", level: str = "INFO", stream: IO[str] | None = None) -> None:
    """Configure the root logger once for the process (replacing any handler a previous setup left)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)


def install_access_log(app: Flask) -> None:
    """Log method, path, status, duration and key of every request; never a header value or a body."""

    @app.before_request
    def _start_timer() -> None:
        g.request_started = time.perf_counter()

    @app.after_request
    def _log_request(response: Response) -> Response:
        started = g.get("request_started")
        duration_ms = round((time.perf_counter() - started) * 1000, 1) if started is not None else None
        principal = g.get("principal")
        key = principal.public_key if principal is not None else None
        access_log.info(
            "%s %s %d %sms key=%s",
            request.method,
            request.path,
            response.status_code,
            duration_ms,
            key or "-",
            extra={
                "access": {
                    "method": request.method,
                    "path": request.path,
                    "status": response.status_code,
                    "durationMs": duration_ms,
                    "publicKey": key,
                }
            },
        )
        return response
