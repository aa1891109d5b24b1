"""JSON for stored events and firings: the values of the worker's documents and records.

An event record is ``{"event": <Prefect JSON>, "occurred": us, "received": us | null}``
(its `json_value()`, the event's bytes as received where the record holds them, plus
the record's own times, since a record can carry a `received` its event lacks); it is
read back with `EventRecord.from_json`, without validating the event again. A firing
nests its triggering event so, and its child firings. JSON via orjson, never pickle.
"""

from __future__ import annotations

import math
from typing import Any

from service.core.firings import Firing
from service.core.records import EventRecord

__all__ = ["event_from_json", "event_json", "firing_from_json", "firing_json"]


def event_json(record: EventRecord) -> dict[str, Any]:
    """An event ready for orjson, its times included (they may differ from its JSON).

    The event itself is its `json_value()`: held bytes are embedded, not encoded again.
    """
    return {
        "event": record.json_value(),
        "occurred": record.occurred,
        "received": record.received,
    }


def event_from_json(data: dict[str, Any]) -> EventRecord:
    """The inverse of `event_json`."""
    return EventRecord.from_json(data["event"], data["occurred"], data["received"])


def _float_json(value: float | None) -> float | str | None:
    # orjson writes NaN and infinities as null; keep them as their names instead.
    if value is not None and not math.isfinite(value):
        return repr(value)  # "nan", "inf", "-inf"
    return value


def _float_from(value: float | str | None) -> float | None:
    return float(value) if isinstance(value, str) else value


def firing_json(firing: Firing) -> dict[str, Any]:
    """A firing ready for orjson (see `event_json`), nested child firings included."""
    event = firing.triggering_event
    return {
        "id": firing.id,
        "trigger_id": firing.trigger_id,
        "automation_id": firing.automation_id,
        "fired_at": firing.fired_at,
        "labels": firing.labels,
        "triggering_event": None if event is None else event_json(event),
        "state": firing.state,
        "window": None if firing.window is None else list(firing.window),
        "child_firings": [firing_json(child) for child in firing.child_firings],
        "triggering_value": _float_json(firing.triggering_value),
    }


def firing_from_json(value: dict[str, Any]) -> Firing:
    """The inverse of `firing_json`."""
    event = value["triggering_event"]
    window = value["window"]
    return Firing(
        id=value["id"],
        trigger_id=value["trigger_id"],
        automation_id=value["automation_id"],
        fired_at=value["fired_at"],
        labels=value["labels"],
        triggering_event=None if event is None else event_from_json(event),
        state=value["state"],
        window=None if window is None else (window[0], window[1]),
        child_firings=tuple(firing_from_json(child) for child in value["child_firings"]),
        triggering_value=_float_from(value["triggering_value"]),
    )
