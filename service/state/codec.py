"""Bytes for the RocksDB state store: order-preserving keys and orjson values.

Keys
----
A key is a one-byte table prefix followed by components; RocksDB orders keys bytewise, so
every component is encoded so that byte order equals the order the in-memory store uses:

* Times (signed int64 microseconds) are 8 bytes big-endian with the sign bit flipped, so
  byte order is numeric order, negative times included.
* Strings (trigger ids, event ids, meta names) and the elements of bucket keys are UTF-8
  with every NUL byte escaped as ``00 FF`` and a ``00 01`` terminator. The choice, rather
  than a length prefix, keeps byte order equal to Python's string order (a length prefix
  would sort ``"b"`` before ``"aa"``); the terminator cannot occur inside an encoded string,
  so any string is allowed (no fixed length, NULs included) and a string's encoding is a
  prefix scan's prefix. Terminator ``01`` sorts below escape ``FF``, so ``"a"`` sorts before
  ``"a"`` + NUL.
* A bucket key (``tuple[str, ...]``) is its elements' encodings concatenated: unambiguous
  because each element is self-delimiting, and ordered like Python's tuples (a shorter
  tuple that is a prefix of a longer one sorts first). ``()`` is ``b""``. Bucket keys are
  still placed last in every composite key.

Values
------
JSON via orjson, never pickle. An event record is ``{"event": <Prefect JSON>, "occurred":
us, "received": us | null}`` (its `json_value()`, the event's bytes as received where the
record holds them, plus the record's own times, since a record can carry a `received` its
event lacks); it is read back with `EventRecord.from_json`, without validating the event
again.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.store import Bucket, BucketKey, HeldEvent

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "TIME_WIDTH",
    "bucket_from_json",
    "decode_bucket",
    "decode_event",
    "decode_firings",
    "decode_held",
    "decode_int",
    "decode_key",
    "decode_str",
    "decode_time",
    "encode_bucket",
    "encode_event",
    "encode_firings",
    "encode_held",
    "encode_int",
    "encode_key",
    "encode_str",
    "encode_time",
    "event_from_json",
    "event_json",
    "firing_from_json",
    "firing_json",
    "prefix_end",
]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
TIME_WIDTH = 8

_SIGN = 2**63
_NUL = b"\x00"
_ESCAPED_NUL = b"\x00\xff"
_TERMINATOR = b"\x00\x01"


# -- key components ---------------------------------------------------------------------
def encode_time(value: int) -> bytes:
    """8 bytes whose byte order is the numeric order of signed int64 `value`."""
    if not INT64_MIN <= value <= INT64_MAX:
        msg = f"time {value} is outside the signed 64-bit range the state store keeps"
        raise ValueError(msg)
    return (value + _SIGN).to_bytes(TIME_WIDTH, "big")


def decode_time(data: bytes, pos: int = 0) -> int:
    """The time encoded at `data[pos:pos + 8]`."""
    return int.from_bytes(data[pos : pos + TIME_WIDTH], "big") - _SIGN


def encode_str(value: str) -> bytes:
    """Self-delimiting, order-preserving bytes of any string (NULs escaped, 00 01 ends it)."""
    raw = value.encode("utf-8", "surrogatepass")
    if _NUL in raw:
        raw = raw.replace(_NUL, _ESCAPED_NUL)
    return raw + _TERMINATOR


def decode_str(data: bytes, pos: int = 0) -> tuple[str, int]:
    """The string encoded at `data[pos:]` and the position just after its terminator."""
    end = data.index(_NUL, pos)
    if data[end + 1] == 0x01:  # the common case: no NUL inside the string
        return data[pos:end].decode("utf-8", "surrogatepass"), end + 2
    parts: list[bytes] = []
    while True:
        marker = data[end + 1]
        if marker == 0x01:
            parts.append(data[pos:end])
            return b"".join(parts).decode("utf-8", "surrogatepass"), end + 2
        if marker != 0xFF:
            msg = f"corrupt string encoding at byte {end} of key {data!r}"
            raise ValueError(msg)
        parts.append(data[pos:end] + _NUL)
        pos = end + 2
        end = data.index(_NUL, pos)


def encode_key(key: BucketKey) -> bytes:
    """A bucket key: its elements' encodings, concatenated."""
    return b"".join(encode_str(part) for part in key)


def decode_key(data: bytes, pos: int = 0) -> BucketKey:
    """The bucket key that fills `data[pos:]` (bucket keys always end a composite key)."""
    parts: list[str] = []
    size = len(data)
    while pos < size:
        part, pos = decode_str(data, pos)
        parts.append(part)
    return tuple(parts)


def prefix_end(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix` (None: no bound)."""
    trimmed = prefix.rstrip(b"\xff")
    if not trimmed:
        return None
    return trimmed[:-1] + bytes([trimmed[-1] + 1])


# -- values -------------------------------------------------------------------------------
def encode_int(value: int) -> bytes:
    return orjson.dumps(value)


def decode_int(data: bytes) -> int:
    value = orjson.loads(data)
    if not isinstance(value, int):
        msg = f"expected a stored integer, found {data!r}"
        raise TypeError(msg)
    return value


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


def encode_event(record: EventRecord) -> bytes:
    """An event record: the Prefect event's JSON plus the record's times."""
    return orjson.dumps(event_json(record))


def decode_event(data: bytes) -> EventRecord:
    return event_from_json(orjson.loads(data))


def encode_bucket(bucket: Bucket, *, satisfied: bool) -> bytes:
    """A bucket; `satisfied` rides along so a re-put knows whether the satisfied set changes."""
    last = None if bucket.last_event is None else event_json(bucket.last_event)
    return orjson.dumps(
        {
            "start": bucket.start,
            "end": bucket.end,
            "count": bucket.count,
            "last_event": last,
            "satisfied": satisfied,
        }
    )


def decode_bucket(data: bytes) -> Bucket:
    return bucket_from_json(orjson.loads(data))


def bucket_from_json(value: dict[str, Any]) -> Bucket:
    """A bucket from its already-parsed JSON (see `encode_bucket`)."""
    last = value["last_event"]
    return Bucket(
        start=value["start"],
        end=value["end"],
        count=value["count"],
        last_event=None if last is None else event_from_json(last),
    )


def encode_held(events: list[HeldEvent]) -> bytes:
    """Held events as `[[occurred, event_id, held_at], ...]`."""
    return orjson.dumps([[e.occurred, e.event_id, e.held_at] for e in events])


def decode_held(data: bytes) -> list[HeldEvent]:
    return [
        HeldEvent(occurred=occurred, event_id=event_id, held_at=held_at)
        for occurred, event_id, held_at in orjson.loads(data)
    ]


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


def encode_firings(firings: list[Firing]) -> bytes:
    """Firings (child firings nested recursively) as a JSON list."""
    return orjson.dumps([firing_json(firing) for firing in firings])


def decode_firings(data: bytes) -> list[Firing]:
    return [firing_from_json(value) for value in orjson.loads(data)]
