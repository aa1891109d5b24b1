"""Prefect's `prefect.automation.triggered` / `.resolved` events built from firings (spec §11)."""

from __future__ import annotations

from typing import Any

from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.times import us_to_iso
from service.core.triggers import CompiledAutomation, CompiledEventTrigger

__all__ = ["state_change_event"]

_EVENT_NAMES = {
    "Triggered": "prefect.automation.triggered",
    "Resolved": "prefect.automation.resolved",
}


def state_change_event(
    automation: CompiledAutomation, firing: Firing, event_id: str
) -> EventRecord:
    """The event Prefect's `act()` publishes on the ordinary events topic for a firing."""
    resource = {
        "prefect.resource.id": f"prefect.automation.{automation.id}",
        "prefect.resource.name": automation.name,
    }
    root = automation.root
    if isinstance(root, CompiledEventTrigger):
        resource["prefect.posture"] = root.posture
    triggering = firing.triggering_event
    related: list[dict[str, str]] = []
    if triggering is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.event.{triggering.id}",
                "prefect.resource.role": "triggering-event",
            }
        )
    # Built as the JSON Event.model_dump(mode="json") would give, without validating
    # what we construct ourselves: a firing's cost is mostly this event otherwise.
    data: dict[str, Any] = {
        "id": event_id,
        "occurred": us_to_iso(firing.fired_at),
        "event": _EVENT_NAMES[firing.state],
        "resource": resource,
        "related": related,
        "payload": {
            "triggering_labels": dict(firing.labels),
            "triggering_event": triggering.to_json() if triggering is not None else None,
        },
        "follows": None,
        "received": None,
    }
    return EventRecord.from_json(data, firing.fired_at, firing.fired_at)
