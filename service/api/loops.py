"""Does an automation's trigger match the action outcome events of its own firings?"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from service.actions.outcome_events import Outcome, outcome_events
from service.core.records import EventRecord
from service.core.triggers import CompiledEventTrigger, compile_automation
from service.models.automations import Automation

__all__ = ["action_event_loops"]

# Any instant will do: matching never looks at time.
_SOME_TIME = 1_700_000_000_000_000
_WHEN = datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
_OUTCOMES: tuple[Outcome, ...] = ("executed", "failed")


def action_event_loops(automation: Automation) -> list[str]:
    """Ids of the event triggers that its own `prefect.automation.action.*` events match.

    Each action of a firing publishes `.triggered` and `.executed` (or `.failed`) about
    the automation itself (docs/actions.md); a trigger expecting them fires again on
    every firing, as it would on Prefect's server. service/core/self_trigger.py probes the
    state events only, as they are the core's; these come from the action worker.
    """
    if not (automation.actions or automation.actions_on_trigger or automation.actions_on_resolve):
        return []  # no action, no action event
    compiled = compile_automation(automation.with_ids())
    resource: dict[str, str] = {"prefect.resource.id": f"prefect.automation.{compiled.id}"}
    if isinstance(compiled.root, CompiledEventTrigger):
        resource["prefect.posture"] = compiled.root.posture
    record: dict[str, Any] = {
        "id": str(uuid.UUID(int=1)),
        "automation_id": str(compiled.id),
        "automation_name": compiled.name,
        "fired_at": "2023-11-14T22:13:20Z",
        "state_event": {"id": str(uuid.UUID(int=2)), "resource": resource},
    }
    triggering = {"id": str(uuid.UUID(int=3))}
    probes = [
        EventRecord.from_json(event, _SOME_TIME, _SOME_TIME)
        for outcome in _OUTCOMES
        for event in outcome_events(record, 0, "do-nothing", triggering, outcome, _WHEN, "probe")
    ]
    return [
        trigger.id
        for trigger in compiled.event_triggers()
        if any(trigger.covers(probe) for probe in probes)
    ]
