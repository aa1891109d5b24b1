"""Each process role exports its own metrics; quiet logging by default; CLI global options."""

from __future__ import annotations

import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families

from service import metrics
from service.cli import main
from service.logs import NOTICE, configure_logging
from service.readiness import health_body


def _names(role: metrics.Role) -> set[str]:
    text = metrics.exposition(role).decode()
    return {f.name for f in text_string_to_metric_families(text) if f.name.startswith("tripwire_")}


def test_each_role_exports_only_its_own_metrics() -> None:
    metrics.ACTION_ATTEMPTS.labels("webhook")
    metrics.API_REQUESTS.labels("/api/automations/", "200")
    worker, actions, api = _names("worker"), _names("actions"), _names("api")
    assert "tripwire_events_consumed" in worker
    assert "tripwire_action_attempts" in actions
    assert "tripwire_api_requests" in api
    assert not worker & actions and not worker & api and not actions & api
    # The process collectors the default registry used to give, in every role.
    for role in ("worker", "actions", "api"):
        assert b"process_cpu_seconds_total" in metrics.exposition(role)  # type: ignore[arg-type]


def test_one_health_shape() -> None:
    assert health_body(False, {"x": 1}) == {
        "status": "not_ready",
        "ready": False,
        "checks": {"x": 1},
    }
    assert health_body(True, {})["status"] == "ok"


@pytest.fixture
def root_logging() -> object:
    root = logging.getLogger()
    saved = list(root.handlers), root.level
    yield root
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.NOTSET)


def test_the_default_level_shows_notices_and_warnings_only(root_logging: object) -> None:
    configure_logging("text", "worker")
    assert not logging.getLogger("faust").isEnabledFor(logging.INFO)
    assert logging.getLogger("service.worker").isEnabledFor(NOTICE)
    assert logging.getLogger("aiokafka").isEnabledFor(logging.WARNING)
    configure_logging("text", "worker", "info")
    assert logging.getLogger("faust").isEnabledFor(logging.INFO)
    # HTTP client lines stay out of every command's output below debug.
    assert not logging.getLogger("httpx").isEnabledFor(logging.INFO)
    configure_logging("text", "worker", "debug")
    assert logging.getLogger("httpx").isEnabledFor(logging.DEBUG)


def test_version_and_log_level_are_global_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("tripwire ")
    with pytest.raises(SystemExit) as refused:
        main(["--log-level", "loud", "worker"])
    assert refused.value.code == 2
