"""Tripwire's extensions as served in Prefect's shape, and written back (docs/api.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.api.catalog import Stored
from service.api.prefect_shape import restored, served, url_targets
from service.errors import ValidationFailed
from service.models.actions import url_block_id
from service.models.automations import Automation, MetricTrigger, parse_automation

HOOK: dict[str, Any] = {
    "type": "call-webhook",
    "url": "https://example.com/hook",
    "method": "PUT",
    "headers": {"X-Token": "s"},
    "payload": "p",
}
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def automation(actions: list[dict[str, Any]], trigger: dict[str, Any] | None = None) -> Automation:
    return parse_automation(
        {"name": "a", "trigger": trigger or {"posture": "Reactive"}, "actions": actions}
    )


def test_a_url_with_its_own_served_block_id_is_the_url_and_another_id_is_refused() -> None:
    served_id = str(url_block_id(HOOK["url"], "PUT", {"X-Token": "s"}))
    (action,) = automation([{**HOOK, "block_document_id": served_id}]).actions
    assert "block_document_id" not in (action.model_extra or {})
    assert (action.model_extra or {})["url"] == HOOK["url"]
    other = str(url_block_id(HOOK["url"], "POST", {"X-Token": "s"}))  # another target
    with pytest.raises(ValidationFailed, match="exactly one of block_document_id or url"):
        automation([{**HOOK, "block_document_id": other}])


def test_prefects_write_back_of_a_served_automation_restores_the_stored_one() -> None:
    metric = {"name": "duration", "threshold": 5, "operator": ">", "range": 30}
    stored = Stored(automation([HOOK], {"posture": "Metric", "metric": metric}), NOW, NOW)
    data = served(stored)
    block_id = data["actions"][0]["block_document_id"]
    assert data["trigger"]["metric"]["range"] == "PT5M"
    assert data["trigger"]["metric"]["tripwire"]["range"] == "PT30S"
    # What Prefect's client sends back: no url, method, headers or `tripwire`.
    data["actions"] = [{"type": "call-webhook", "block_document_id": block_id, "payload": "p"}]
    del data["trigger"]["metric"]["tripwire"]
    back = restored(Automation.model_validate(data), stored, url_targets([stored]))
    assert back.actions == stored.automation.actions
    assert back.trigger == stored.automation.trigger
    # A deliberate change of the window is not a round trip: it is kept.
    data["trigger"]["metric"]["range"] = 600
    changed = restored(Automation.model_validate(data), stored, url_targets([stored]))
    assert isinstance(changed.trigger, MetricTrigger)
    assert changed.trigger.metric.range == timedelta(seconds=600)
    assert changed.trigger.metric.firing_for == timedelta(seconds=300)


def test_an_unknown_block_id_stays_a_prefect_block() -> None:
    stored = Stored(automation([HOOK]), NOW, NOW)
    prefect_block = "00000000-0000-4000-8000-000000000001"
    other = automation([{"type": "call-webhook", "block_document_id": prefect_block}])
    back = restored(other, None, url_targets([stored]))
    extra = back.actions[0].model_extra or {}
    assert extra.get("url") is None
    assert extra["block_document_id"] == prefect_block
