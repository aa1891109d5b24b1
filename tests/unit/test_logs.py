"""JSON log lines carry the same fields in every process, and the context passed with extra=."""

from __future__ import annotations

import logging
import sys

import orjson
import pytest

from service.logs import JsonFormatter, configure_logging


def _record(**extra: object) -> logging.LogRecord:
    logger = logging.getLogger("tripwire.test")
    return logger.makeRecord(
        "tripwire.test", logging.WARNING, __file__, 1, "fired %s", ("x",), None, extra=extra
    )


def test_a_json_line_has_the_common_fields_and_the_context_given() -> None:
    line = orjson.loads(
        JsonFormatter("actions").format(
            _record(automation_id="a1", trigger_id="t1", firing_id="f1", unrelated="no")
        )
    )
    assert line.pop("ts").endswith("+00:00")
    assert line == {
        "level": "warning",
        "logger": "tripwire.test",
        "process": "actions",
        "message": "fired x",
        "automation_id": "a1",
        "trigger_id": "t1",
        "firing_id": "f1",
    }


def test_context_fields_not_given_are_left_out_and_errors_carry_their_traceback() -> None:
    message = "boom"
    try:
        raise ValueError(message)
    except ValueError:
        record = _record()
        record.exc_info = sys.exc_info()
    line = orjson.loads(JsonFormatter("worker").format(record))
    assert "automation_id" not in line
    assert "ValueError: boom" in line["exc"]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_configure_logging_leaves_one_handler(log_format: str) -> None:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    try:
        configure_logging(log_format, "worker")  # type: ignore[arg-type]
        configure_logging(log_format, "worker")  # type: ignore[arg-type]
        assert len(root.handlers) == 1
        formatted = root.handlers[0].format(_record(trigger_id="t9"))
        if log_format == "json":
            assert orjson.loads(formatted)["trigger_id"] == "t9"
        else:
            assert formatted.endswith("fired x [trigger_id=t9]")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
