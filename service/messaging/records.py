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
    "DEAD_LETTER_CUT_BYTES",
    "DEAD_LETTER_CUT_KEY_BYTES",
    "PROGRESS_MAGIC",
    "RoutedMatch",
    "dead_letter_copies",
    "dead_letter_headers",
    "decode_child_firing",
    "decode_matches",
    "decode_progress",
    "encode_child_firing",
    "encode_matches",
    "encode_progress",
    "firing_record",
    "firing_record_bytes",
]


def _child(firing: Firing) -> dict[str, Any]:
    event = firing.triggering_event
    return {
        "id": firing.id,
        "trigger_id": firing.trigger_id,
        "bucket": firing.labels,
        "triggering_event": event.json_value() if event is not None else None,
        "fired_at": us_to_iso(firing.fired_at),
        "child_firings": [_child(child) for child in firing.child_firings],
    }


def firing_record(fired: AutomationFiring) -> dict[str, Any]:
    """The full firing record (schema in service/models/firings.py), for orjson.

    Events are their `json_value()`: the bytes they arrived as, where held.
    """
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
        "triggering_event": event.json_value() if event is not None else None,
        "triggering_value": firing.triggering_value,
        "window": (
            {"start": us_to_iso(firing.window[0]), "end": us_to_iso(firing.window[1])}
            if firing.window is not None
            else None
        ),
        "fired_at": us_to_iso(firing.fired_at),
        "child_firings": [_child(child) for child in firing.child_firings],
        "state_event": fired.state_event.json_value(),
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


# A dead-lettered record too large to copy (over the producer's or the broker's limit)
# is copied cut to this many bytes, then with no value at all; the original stays in
# its topic, at the partition and offset the headers name.
DEAD_LETTER_CUT_BYTES = 64 * 1024


# A dead-lettered copy's key is cut to this many bytes: a key over the producer's limit
# would make every copy too large (the whole record stays in its topic).
DEAD_LETTER_CUT_KEY_BYTES = 1024

DeadLetterCopy = tuple[bytes | None, bytes | None, list[tuple[str, bytes]]]


def dead_letter_copies(key: bytes | None, value: bytes | None) -> list[DeadLetterCopy]:
    """The (key, value, extra headers) to try for a dead-lettered copy, largest first."""
    key_size, value_size = len(key or b""), len(value or b"")
    if key_size <= DEAD_LETTER_CUT_KEY_BYTES and value_size <= DEAD_LETTER_CUT_BYTES:
        return [(key, value, [])]
    cut_key = key[:DEAD_LETTER_CUT_KEY_BYTES] if key is not None else None
    cut = [
        ("tripwire.truncated", b"true"),
        ("tripwire.original-bytes", str(value_size).encode()),
        ("tripwire.original-key-bytes", str(key_size).encode()),
    ]
    return [
        (key, value, []),
        (cut_key, value[:DEAD_LETTER_CUT_BYTES] if value is not None else None, cut),
        (cut_key, b"", cut),
    ]


# -- match records: route -> evaluate -----------------------------------------------------

# A match record carries many matches for one partition of the matches topic, so that
# Kafka and Faust pay per batch, not per match; each event is encoded once per record.
MATCH_RECORD_BYTES = 256 * 1024

# A match record (format 2) is MATCH_MAGIC, a 4-byte big-endian header length, the JSON
# header, then the events' JSON bytes back to back:
#
#     {"t": [trigger id, ...], "k": [key, ...], "r": [related resource, ...],
#      "e": [[id, name, occurred us, received us, follows, resource, [index in "r", ...],
#             byte length], ...],
#      "m": [index in "e", index in "t", index in "k", wall us,
#            source partition (-1: no source), offset, ordinal, ...]}   (7 ints per match)
#
# The header holds every field the core reads (evaluate needs no more than route), so
# evaluate slices each event's bytes without parsing them and its encoders embed them as
# they came. Trigger ids, keys and related resources (flow, deployment, tags) repeat
# across matches and events, so each distinct one is written and parsed once per record.
# Records of format 1 (a JSON object, first byte `{`, events inlined) are still read: an
# older worker may have written them.
MATCH_MAGIC = b"TWM2"
_LENGTH_BYTES = 4
_MATCH_INTS = 7


@dataclass(slots=True)
class RoutedMatch:
    """A match as evaluate reads it: trigger, key, event, processing time, source.

    Read-only by convention, not `frozen`: a frozen dataclass's `__init__` costs several
    times as much, and evaluate builds one per match.
    """

    trigger_id: str
    key: BucketKey
    event: EventRecord
    wall: int
    source: Position | None


class _MatchRecord:
    """One match record being built."""

    __slots__ = ("events", "index_of", "keys", "matches", "raws", "related", "size", "triggers")

    def __init__(self) -> None:
        self.raws: list[bytes] = []
        self.events: list[list[Any]] = []
        self.matches: list[int] = []
        self.index_of: dict[int, int] = {}
        self.triggers: dict[str, int] = {}
        self.keys: dict[BucketKey, int] = {}
        self.related: dict[bytes, int] = {}
        self.size = 0

    def add_event(self, event: EventRecord) -> int:
        raw = event.raw if event.raw is not None else orjson.dumps(event.to_json())
        related = self.related
        indexes = []
        for resource in event.related:
            encoded = orjson.dumps(resource)
            index = related.get(encoded)
            if index is None:
                index = related[encoded] = len(related)
            indexes.append(index)
        index = self.index_of[id(event)] = len(self.raws)
        self.raws.append(raw)
        self.events.append(
            [
                event.id,
                event.name,
                event.occurred,
                event.received,
                event.follows,
                event.resource,
                indexes,
                len(raw),
            ]
        )
        self.size += len(raw)
        return index

    def add_match(self, event: int, match: Match, source: Position | None) -> None:
        trigger = self.triggers.get(match.trigger.id)
        if trigger is None:
            trigger = self.triggers[match.trigger.id] = len(self.triggers)
        key = self.keys.get(match.key)
        if key is None:
            key = self.keys[match.key] = len(self.keys)
        partition, offset, ordinal = source if source is not None else (-1, 0, 0)
        self.matches += (event, trigger, key, match.wall, partition, offset, ordinal)

    def to_bytes(self) -> bytes:
        header = orjson.dumps(
            {
                "t": list(self.triggers),
                "k": list(self.keys),
                "r": [orjson.Fragment(encoded) for encoded in self.related],
                "e": self.events,
                "m": self.matches,
            }
        )
        length = len(header).to_bytes(_LENGTH_BYTES, "big")
        return b"".join([MATCH_MAGIC, length, header, *self.raws])


def encode_matches(matches: list[tuple[Match, Position | None]]) -> list[bytes]:
    """Match records for one partition, split so that none grows much past 256 KiB."""
    records: list[bytes] = []
    record = _MatchRecord()
    for match, source in matches:
        event = match.event
        index = record.index_of.get(id(event))
        if index is None:
            if record.matches and record.size >= MATCH_RECORD_BYTES:
                records.append(record.to_bytes())
                record = _MatchRecord()
            index = record.add_event(event)
        record.add_match(index, match, source)
    if record.matches:
        records.append(record.to_bytes())
    return records


def decode_matches(data: bytes) -> list[RoutedMatch]:
    """The matches of one match record, in the order they were routed."""
    if data[:1] == b"{":
        return _decode_json_matches(data)
    if data[: len(MATCH_MAGIC)] != MATCH_MAGIC:
        msg = f"not a match record (starts with {data[:8]!r})"
        raise ValueError(msg)
    start = len(MATCH_MAGIC) + _LENGTH_BYTES
    pos = start + int.from_bytes(data[len(MATCH_MAGIC) : start], "big")
    doc = orjson.loads(memoryview(data)[start:pos])
    related = doc["r"]
    events = []
    # Events of one record share their related resources' dicts: nothing changes them.
    for event_id, name, occurred, received, follows, resource, indexes, length in doc["e"]:
        end = pos + length
        events.append(
            EventRecord.from_raw(
                data[pos:end],
                (event_id, name, occurred, received, follows),
                resource,
                [related[index] for index in indexes],
            )
        )
        pos = end
    if pos != len(data):
        msg = f"match record of {len(data)} bytes, its header accounts for {pos}"
        raise ValueError(msg)
    triggers: list[str] = doc["t"]
    keys = [tuple(key) for key in doc["k"]]
    flat = doc["m"]
    if len(flat) % _MATCH_INTS:
        msg = f"match record with {len(flat)} match fields, not a multiple of {_MATCH_INTS}"
        raise ValueError(msg)
    fields = iter(flat)
    return [
        RoutedMatch(
            triggers[trigger],
            keys[key],
            events[event],
            wall,
            (partition, offset, ordinal) if partition >= 0 else None,
        )
        for event, trigger, key, wall, partition, offset, ordinal in zip(
            *([fields] * _MATCH_INTS), strict=True
        )
    ]


def _decode_json_matches(data: bytes) -> list[RoutedMatch]:
    """A match record of format 1: `{"e": [event JSON, ...], "m": [...]}`."""
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


# -- progress records: route -> every matches partition --------------------------------

# Among the match records: the marks of the events partitions one route stage owns
# (service/core/watermarks.py), sent to every matches partition, so each evaluate
# partition knows how far all its sources were read, idle ones included.
PROGRESS_MAGIC = b"TWP2"
_PROGRESS_V1 = b"TWP1"  # one partition's watermark, before order marks existed

# (source partition, watermark, order mark)
Progress = tuple[int, int, int]


def encode_progress(marks: list[Progress]) -> bytes:
    """A progress record: each source partition's watermark and order mark."""
    return PROGRESS_MAGIC + orjson.dumps(marks)


def decode_progress(data: bytes) -> list[Progress] | None:
    """The marks of a progress record; None for any other record."""
    magic = data[: len(PROGRESS_MAGIC)]
    if magic == PROGRESS_MAGIC:
        return [(int(s), int(w), int(o)) for s, w, o in orjson.loads(data[len(magic) :])]
    if magic == _PROGRESS_V1:
        # A record of the previous version, still in the topic after an upgrade: its
        # watermark stands for both marks (it is the earlier of the two).
        source, watermark = orjson.loads(data[len(magic) :])
        return [(int(source), int(watermark), int(watermark))]
    return None


# -- child firings: evaluate -> compose ----------------------------------------------------


def encode_child_firing(parent_id: str, firing: Firing) -> bytes:
    """A child firing on its way to its composite parent."""
    return orjson.dumps({"p": parent_id, "f": firing_json(firing)})


def decode_child_firing(data: bytes) -> tuple[str, Firing]:
    """(parent trigger id, child firing) of a child-firing record."""
    doc = orjson.loads(data)
    return doc["p"], firing_from_json(doc["f"])
