"""Log setup, and the context every log line of a job carries.

With `LOOPWRIGHT_LOG_FORMAT=json` each line on stderr is one JSON object (time, level, logger,
message and, where known, run id, job id, repo, loop and step), so a log pipeline can follow
one run across the worker, the loop, the model and GitHub without parsing prose. The context
lives in context variables: the worker sets the job's around it, `bot.app` the run's, and
`bot.model` the step's around each model call. asyncio copies context into the tasks a job
starts, so lines logged anywhere below carry it with no logger passed around.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from bot.settings import Settings

#: The context fields, in the order a JSON line lists them.
CONTEXT_FIELDS = ("run_id", "job_id", "repo", "loop", "step")

_CONTEXT: dict[str, contextvars.ContextVar[Any]] = {
    name: contextvars.ContextVar(f"loopwright_log_{name}", default=None) for name in CONTEXT_FIELDS
}


def current(name: str) -> Any:
    """One context field's value in the running task (None when not set)."""
    return _CONTEXT[name].get()


@contextlib.contextmanager
def context(**fields: Any) -> Iterator[None]:
    """Set context fields for the lines logged inside (and the tasks started inside); the
    previous values come back on exit. None leaves a field as it is."""
    tokens = [
        (_CONTEXT[name], _CONTEXT[name].set(value))
        for name, value in fields.items()
        if value is not None
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind(**fields: Any) -> None:
    """Set context fields for the rest of the running task (a run id, known only once the run
    is recorded, for the lines after it). The task's context ends with the task."""
    for name, value in fields.items():
        if value is not None:
            _CONTEXT[name].set(value)


class ContextFilter(logging.Filter):
    """Copy the context fields onto each record (as attributes), where a formatter finds them.
    Installed on the handler, it sees records from every logger."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name in CONTEXT_FIELDS:
            if not hasattr(record, name):
                setattr(record, name, _CONTEXT[name].get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record. The redacting filter runs before (on the handler), so the
    message and traceback arrive here already redacted; `extra=` fields that are not the
    standard record attributes are kept under their own names."""

    _STANDARD = frozenset(
        vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
        | {"message", "asctime", "_loopwright_redacted", *CONTEXT_FIELDS}
    )

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                doc[name] = value
        for key, value in vars(record).items():
            if key not in self._STANDARD and not key.startswith("_"):
                doc[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            doc["exception"] = record.exc_text
        if record.stack_info:
            doc["stack"] = record.stack_info
        return json.dumps(doc, default=str, ensure_ascii=False)


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def configure(settings: Settings, level: str) -> None:
    """Send every log record to stderr, redacted, as text (as `loopwright` always has) or as
    JSON lines (`LOOPWRIGHT_LOG_FORMAT=json`); uncaught exceptions are redacted too."""
    # bot.cli owns the redacting filter and excepthooks; imported here, when a command starts,
    # so bot.cli may import this module at its top.
    from bot.cli import RedactingFilter, _redacting_excepthooks
    from bot.text import redactor

    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT))
    # Redaction first: the context filter adds fields, the formatter sees only clean text.
    handler.addFilter(RedactingFilter(settings.secret_values()))
    handler.addFilter(ContextFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    for noisy in ("httpx", "httpx2", "openai"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _redacting_excepthooks(redactor(settings.secret_values()))
