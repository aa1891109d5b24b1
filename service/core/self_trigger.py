"""Does an automation's trigger match its own `prefect.automation.*` state events?"""

from __future__ import annotations

import uuid

from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.state_events import state_change_event
from service.core.triggers import compile_automation
from service.models.automations import Automation

__all__ = ["self_triggering"]

# Any instant will do: matching never looks at time.
_SOME_TIME = 1_700_000_000_000_000


def self_triggering(automation: Automation) -> list[str]:
    """The ids of the automation's event triggers that its own state events would match.

    A firing publishes `prefect.automation.triggered` (or `.resolved`) about the
    automation itself; a trigger that expects it fires again on its own firing.
    """
    compiled = compile_automation(automation.with_ids())
    probe_event = EventRecord.from_json(
        {
            "id": str(uuid.UUID(int=0)),
            "occurred": "2023-11-14T22:13:20Z",
            "event": "prefect.flow-run.Completed",
            "resource": {"prefect.resource.id": "prefect.flow-run.probe"},
        },
        _SOME_TIME,
        _SOME_TIME,
    )
    probes = []
    for state in ("Triggered", "Resolved"):
        firing = Firing(
            id=str(uuid.UUID(int=1)),
            automation_id=compiled.id,
            trigger_id=compiled.root.id if compiled.root is not None else "",
            state=state,
            labels={},
            triggering_event=probe_event,
            fired_at=_SOME_TIME,
        )
        probes.append(state_change_event(compiled, firing, str(uuid.UUID(int=2))))
    return [
        trigger.id
        for trigger in compiled.event_triggers()
        if any(trigger.covers(probe) for probe in probes)
    ]
