"""Prefect's `prefect.automation.action.triggered/executed/failed` events of one action."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

__all__ = [
    "ACTION_EVENT_PREFIX",
    "Outcome",
    "action_event_id",
    "outcome_events",
]

ACTION_EVENT_PREFIX = "prefect.automation.action."

Outcome = Literal["executed", "failed"]


def action_event_id(firing_id: str, index: int, kind: str) -> str:
    """Deterministic: a redelivered firing's events carry the ids of the first delivery's."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"tripwire:action-event:{firing_id}:{index}:{kind}"))


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def outcome_events(
    record: Mapping[str, Any],
    index: int,
    action_type: str,
    action_event: Mapping[str, Any] | None,
    outcome: Outcome,
    finished: datetime,
    reason: str | None = None,
    details: Mapping[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The `.triggered` then the `.executed` (or `.failed`) event, as Prefect builds them.

    As Prefect's `Action.succeed()` / `Action.fail()` do.

    `action_event` is the action's triggering event (the firing's triggering event for
    `actions`, its state event for `actions_on_trigger/resolve`). The invocation is the
    firing id, as in run-deployment's idempotency key. Unlike Prefect, `.triggered` does
    not `follow` the triggering event: it is keyed by the automation and may land in
    another events partition than its leader, whose router would then hold it 15 minutes.
    """
    firing_id = str(record["id"])
    state_event: Mapping[str, Any] = record.get("state_event") or {}
    resource: dict[str, str] = {
        "prefect.resource.id": f"prefect.automation.{record['automation_id']}",
        "prefect.resource.name": str(record.get("automation_name", "")),
    }
    posture = (state_event.get("resource") or {}).get("prefect.posture")
    if posture is not None:
        # Prefect names the root trigger's type; the firing record says it only for an
        # event trigger, the one kind with a posture.
        resource["prefect.trigger-type"] = "event"
        resource["prefect.posture"] = str(posture)
    related: list[dict[str, str]] = []
    if state_event.get("id"):
        related.append(
            {
                "prefect.resource.id": f"prefect.event.{state_event['id']}",
                "prefect.resource.role": "automation-triggered-event",
            }
        )
    if action_event is not None and action_event.get("id"):
        related.append(
            {
                "prefect.resource.id": f"prefect.event.{action_event['id']}",
                "prefect.resource.role": "triggering-event",
            }
        )
    action_details = {"action_index": index, "action_type": action_type, "invocation": firing_id}
    triggered_id = action_event_id(firing_id, index, "triggered")
    triggered = {
        "id": triggered_id,
        "occurred": str(record["fired_at"]),
        "event": f"{ACTION_EVENT_PREFIX}triggered",
        "resource": resource,
        "related": related,
        "payload": action_details,
        "follows": None,
    }
    payload: dict[str, Any] = dict(action_details)
    if outcome == "failed":
        payload["reason"] = reason or "failed"
    payload.update(details or {})
    result = {
        "id": action_event_id(firing_id, index, outcome),
        "occurred": _iso(finished),
        "event": f"{ACTION_EVENT_PREFIX}{outcome}",
        "resource": resource,
        "related": related,
        "payload": payload,
        "follows": triggered_id,
    }
    return [triggered, result]
