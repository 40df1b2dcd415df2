"""JSON-lines log formatter: one object per line with the request id and, in a worker, the task id.

Fields: ts (ISO 8601 UTC), level, logger, message, request_id (the HTTP request's X-Request-ID; in a
Celery task, the request id of the HTTP request that enqueued it, or `task:<id>`), task_id and
task (inside a Celery task), exc (a formatted traceback, when there is one).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any


def _current_task() -> Any:
    try:
        from celery import current_task
    except ImportError:  # pragma: no cover
        return None
    task = current_task
    return task if task and getattr(task, "request", None) and task.request.id else None


class JsonLinesFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        task = _current_task()
        if task is not None:
            out["task_id"] = task.request.id
            out["task"] = task.name
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False, default=str)
