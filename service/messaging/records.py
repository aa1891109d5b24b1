"""Record formats on Tripwire's topics: firing records, matches, dead letters."""

from __future__ import annotations

from typing import Any

import orjson

from service.core.engine import AutomationFiring
from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.routing import Match
from service.core.store import BucketKey
from service.core.times import us_to_iso
from service.models.firings import SCHEMA_VERSION
from service.state.documents import Position, decode_firing, encode_firing

__all__ = [
    "dead_letter_headers",
    "decode_child_firing",
    "decode_match",
    "encode_child_firing",
    "encode_match",
    "firing_record",
    "firing_record_bytes",
]


def _child(firing: Firing) -> dict[str, Any]:
    event = firing.triggering_event
    return {
        "id": firing.id,
        "trigger_id": firing.trigger_id,
        "bucket": firing.labels,
        "triggering_event": event.to_json() if event is not None else None,
        "fired_at": us_to_iso(firing.fired_at),
        "child_firings": [_child(child) for child in firing.child_firings],
    }


def firing_record(fired: AutomationFiring) -> dict[str, Any]:
    """The full firing record (schema in service/models/firings.py)."""
    firing, automation = fired.firing, fired.automation
    event = firing.triggering_event
    model = automation.model
    return {
        "schema_version": SCHEMA_VERSION,
        "id": firing.id,
        "automation_id": automation.id,
        "automation_name": automation.name,
        "trigger_id": firing.trigger_id,
        "state": firing.state,
        "bucket": firing.labels,
        "triggering_event": event.to_json() if event is not None else None,
        "triggering_value": firing.triggering_value,
        "window": (
            {"start": us_to_iso(firing.window[0]), "end": us_to_iso(firing.window[1])}
            if firing.window is not None
            else None
        ),
        "fired_at": us_to_iso(firing.fired_at),
        "child_firings": [_child(child) for child in firing.child_firings],
        "state_event": fired.state_event.to_json(),
        "actions": [a.model_dump(mode="json") for a in model.actions],
        "actions_on_trigger": [a.model_dump(mode="json") for a in model.actions_on_trigger],
        "actions_on_resolve": [a.model_dump(mode="json") for a in model.actions_on_resolve],
    }


def firing_record_bytes(fired: AutomationFiring) -> bytes:
    """The firing record as JSON bytes."""
    return orjson.dumps(firing_record(fired))


def dead_letter_headers(
    reason: str, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Headers of a dead-lettered record; its value and key are the original bytes."""
    return [
        ("tripwire.reason", reason.encode()),
        ("tripwire.topic", topic.encode()),
        ("tripwire.partition", str(partition).encode()),
        ("tripwire.offset", str(offset).encode()),
    ]


# -- match records: route -> evaluate -----------------------------------------------------


def encode_match(match: Match, source: Position | None) -> bytes:
    """One (trigger, key, event) match, the event embedded as its validated JSON.

    `source` is where the routing came from, so evaluate can recognise a match that a
    re-read of the events topic produced again.
    """
    event = match.event
    return orjson.dumps(
        {
            "s": source,
            "t": match.trigger.id,
            "k": list(match.key),
            "w": match.wall,
            "i": event.id,
            "o": event.occurred,
            "r": event.received,
            "e": event.to_json(),
        }
    )


def decode_match(data: bytes) -> tuple[str, BucketKey, EventRecord, int, Position | None]:
    """(trigger id, key, event, processing time, source position) of a match record."""
    doc = orjson.loads(data)
    event = EventRecord.from_json(doc["e"], doc["o"], doc["r"])
    event.id = doc["i"]
    source = doc["s"]
    return doc["t"], tuple(doc["k"]), event, doc["w"], tuple(source) if source else None


# -- child firings: evaluate -> compose ----------------------------------------------------


def encode_child_firing(parent_id: str, firing: Firing) -> bytes:
    """A child firing on its way to its composite parent."""
    return orjson.dumps({"p": parent_id, "f": encode_firing(firing)})


def decode_child_firing(data: bytes) -> tuple[str, Firing]:
    """(parent trigger id, child firing) of a child-firing record."""
    doc = orjson.loads(data)
    return doc["p"], decode_firing(doc["f"])
