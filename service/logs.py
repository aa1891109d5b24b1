"""Logging of every Tripwire process: one JSON object per line, or plain text for people."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = [
    "CONTEXT_FIELDS",
    "NOTICE",
    "JsonFormatter",
    "LogLevel",
    "configure_logging",
    "log_handler",
    "notice",
]

LogFormat = Literal["json", "text"]
LogLevel = Literal["debug", "info", "notice", "warning", "error"]

# Between INFO and WARNING, as in syslog: the default level shows warnings and the few
# lines that say a process started or is ready, not the hundred INFO lines of Faust,
# aiokafka and uvicorn at every start.
NOTICE = 25
logging.addLevelName(NOTICE, "NOTICE")
_LEVELS: dict[LogLevel, int] = {
    "debug": logging.DEBUG,
    "info": logging.INFO,
    "notice": NOTICE,
    "warning": logging.WARNING,
    "error": logging.ERROR,
}
# HTTP clients log every request at INFO: noise in a CLI command's output at any level
# but debug.
_QUIET_BELOW_DEBUG = ("httpx", "httpcore")

# Passed with `extra=` where they apply; a JSON line carries each one that was given,
# so a log search by automation, trigger or firing finds every process's lines.
CONTEXT_FIELDS = (
    "automation_id",
    "trigger_id",
    "firing_id",
    "event_id",
    "action",
    "topic",
    "partition",
    "offset",
    "reason",
)

_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class JsonFormatter(logging.Formatter):
    """ts, level, logger, process, message; the context fields given; exc on errors."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "process": self.process,
            "message": record.getMessage(),
        }
        fields = record.__dict__
        for name in CONTEXT_FIELDS:
            value = fields.get(name)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        # default=str: a context value that is not JSON (a UUID, a path) is still logged.
        return orjson.dumps(line, default=str).decode()


class _TextFormatter(logging.Formatter):
    """The plain format, with the context fields given appended as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = record.__dict__
        context = " ".join(
            f"{name}={fields[name]}" for name in CONTEXT_FIELDS if fields.get(name) is not None
        )
        return f"{text} [{context}]" if context else text


def log_handler(log_format: LogFormat, process: str) -> logging.Handler:
    """A stderr handler with the formatter of `log_format`."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter(process) if log_format == "json" else _TextFormatter(_TEXT_FORMAT)
    )
    return handler


def configure_logging(
    log_format: LogFormat, process: str, level: LogLevel | int = "notice"
) -> None:
    """Make the root logger write `log_format` lines at `level` and above, only."""
    number = _LEVELS[level] if isinstance(level, str) else level
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(log_handler(log_format, process))
    root.setLevel(number)
    for name in _QUIET_BELOW_DEBUG:
        logging.getLogger(name).setLevel(number if number <= logging.DEBUG else logging.WARNING)


def notice(logger: logging.Logger, message: str, *args: object) -> None:
    """Log at NOTICE: a line the default level shows (a process started, ready)."""
    logger.log(NOTICE, message, *args)
