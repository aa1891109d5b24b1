"""Firings and their deterministic ids: derived from trigger, key and window, never random."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from service.core.ids import uuid5_str
from service.core.records import EventRecord
from service.core.times import us_to_iso

__all__ = ["FIRING_NAMESPACE", "Firing", "child_firing_json", "composite_firing_id", "firing_id"]

FIRING_NAMESPACE = uuid.UUID("0b5f2a4e-7c1d-5e8f-9a3b-4d6e8f0a1c2b")


@dataclass(frozen=True, slots=True)
class Firing:
    """One trigger firing; for a composite, `child_firings` holds the firings it consumed."""

    id: str
    trigger_id: str
    automation_id: str
    fired_at: int
    labels: dict[str, str]
    triggering_event: EventRecord | None
    state: str = "Triggered"
    window: tuple[int, int] | None = None
    child_firings: tuple[Firing, ...] = field(default_factory=tuple)
    triggering_value: float | None = None


def firing_id(
    trigger_id: str,
    key: tuple[str, ...],
    window: tuple[int, int],
    triggering_event: EventRecord | None,
    state: str = "Triggered",
) -> str:
    """Derive a firing id from (trigger, key, window, event, state), never at random.

    A redelivered firing therefore carries the same id and its consumers can dedupe it.
    """
    event_id = triggering_event.id if triggering_event is not None else "-"
    name = f"{trigger_id}|{key!r}|{window[0]}|{window[1]}|{event_id}|{state}"
    return uuid5_str(FIRING_NAMESPACE, name)


def composite_firing_id(trigger_id: str, children: tuple[Firing, ...]) -> str:
    """A composite firing is identified by the child firings it consumed."""
    name = f"{trigger_id}|" + "|".join(child.id for child in children)
    return uuid5_str(FIRING_NAMESPACE, name)


def child_firing_json(firing: Firing) -> dict[str, Any]:
    """A child firing as the replay contract prints it."""
    out: dict[str, Any] = {
        "trigger_id": firing.trigger_id,
        "bucket": firing.labels,
        "triggering_event": firing.triggering_event.id if firing.triggering_event else None,
        "fired_at": us_to_iso(firing.fired_at),
    }
    if firing.child_firings:
        out["child_firings"] = [child_firing_json(child) for child in firing.child_firings]
    return out
