"""Record formats on Tripwire's topics: firing records, matches, dead letters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from service.core.engine import AutomationFiring
from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.routing import Match
from service.core.store import BucketKey
from service.core.times import us_to_iso
from service.models.firings import SCHEMA_VERSION
from service.state.codec import firing_from_json, firing_json
from service.state.documents import Position

__all__ = [
    "RoutedMatch",
    "dead_letter_headers",
    "decode_child_firing",
    "decode_matches",
    "encode_child_firing",
    "encode_matches",
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

# A match record carries many matches for one partition of the matches topic, so that
# Kafka and Faust pay per batch, not per match; each event is encoded once per record.
MATCH_RECORD_BYTES = 256 * 1024


@dataclass(frozen=True, slots=True)
class RoutedMatch:
    """A match as evaluate reads it: trigger, key, event, processing time, source."""

    trigger_id: str
    key: BucketKey
    event: EventRecord
    wall: int
    source: Position | None


def encode_matches(matches: list[tuple[Match, Position | None]]) -> list[bytes]:
    """Match records for one partition, split so that none grows much past 256 KiB."""
    records: list[bytes] = []
    events: list[orjson.Fragment] = []
    entries: list[list[Any]] = []
    index_of: dict[int, int] = {}
    size = 0
    for match, source in matches:
        event = match.event
        index = index_of.get(id(event))
        if index is None:
            if entries and size >= MATCH_RECORD_BYTES:
                records.append(_match_record(events, entries))
                events, entries, index_of, size = [], [], {}, 0
            encoded = orjson.dumps(event.to_json())
            size += len(encoded)
            index = index_of[id(event)] = len(events)
            events.append(orjson.Fragment(encoded))
            entries_event = [event.id, event.occurred, event.received]
        else:
            entries_event = None
        entries.append(
            [index, match.trigger.id, list(match.key), match.wall, source, entries_event]
        )
    if entries:
        records.append(_match_record(events, entries))
    return records


def _match_record(events: list[orjson.Fragment], entries: list[list[Any]]) -> bytes:
    return orjson.dumps({"e": events, "m": entries})


def decode_matches(data: bytes) -> list[RoutedMatch]:
    """The matches of one match record, in the order they were routed."""
    doc = orjson.loads(data)
    events: list[EventRecord | None] = [None] * len(doc["e"])
    out = []
    for index, trigger_id, key, wall, source, meta in doc["m"]:
        event = events[index]
        if event is None:
            event_id, occurred, received = meta
            event = EventRecord.from_json(doc["e"][index], occurred, received)
            event.id = event_id
            events[index] = event
        out.append(
            RoutedMatch(trigger_id, tuple(key), event, wall, tuple(source) if source else None)
        )
    return out


# -- child firings: evaluate -> compose ----------------------------------------------------


def encode_child_firing(parent_id: str, firing: Firing) -> bytes:
    """A child firing on its way to its composite parent."""
    return orjson.dumps({"p": parent_id, "f": firing_json(firing)})


def decode_child_firing(data: bytes) -> tuple[str, Firing]:
    """(parent trigger id, child firing) of a child-firing record."""
    doc = orjson.loads(data)
    return doc["p"], firing_from_json(doc["f"])
