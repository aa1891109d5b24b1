"""Decoded event JSON to the core's EventRecord, checking only what the core reads, fast."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson

from service.core.records import EventRecord
from service.core.times import to_us
from service.errors import DecodeError
from service.models.events import (
    MAX_EVENT_DEPTH,
    MAX_EVENT_NAME_LENGTH,
    MAX_LABELS_PER_RESOURCE,
    MAX_RELATED_RESOURCES,
    parse_event,
)

__all__ = ["decode_event", "event_record"]

# The forms the fast path takes as they are: a canonical lower-case uuid (what
# str(UUID(...)) gives back) and an RFC 3339 date-time. Anything else (upper case,
# urn: prefixes, unix timestamps, other ISO forms) goes to the pydantic model, which
# alone decides what else is valid and how to say what is not.
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_TIMESTAMP = re.compile(
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)?\Z", re.ASCII
)
_ID = "prefect.resource.id"
_ROLE = "prefect.resource.role"


def event_record(data: Any, raw: bytes | None = None) -> EventRecord:
    """A decoded event as the core reads it; raise `ValidationFailed` as `parse_event` does.

    The common event (canonical ids, RFC 3339 times, string labels) is checked here
    against every rule of `service.models.events.Event`, without building the model;
    any other input goes through the model itself, so what is accepted, the record it
    gives and the error messages are the model's (tests/unit/test_event_records.py
    holds the two paths to that). `raw`, the bytes `data` was decoded from, is kept
    for encoders (`EventRecord.json_value`).
    """
    record = _fast(data, raw) if type(data) is dict else None
    if record is None:
        record = EventRecord.from_validated(parse_event(data), data, raw)
    return record


def _fast(data: dict[str, Any], raw: bytes | None) -> EventRecord | None:
    """The record of a plainly valid event, or None to let the model judge it."""
    event_id = data.get("id")
    name = data.get("event")
    resource = data.get("resource")
    if (
        type(event_id) is not str
        or not _UUID.match(event_id)
        or type(name) is not str
        or len(name) > MAX_EVENT_NAME_LENGTH
        or not _labels(resource, False)
    ):
        return None
    occurred = _timestamp(data.get("occurred"))
    if occurred is None:
        return None
    received: int | None = None
    if "received" in data and data["received"] is not None:
        received = _timestamp(data["received"])
        if received is None:
            return None
    follows = data.get("follows")
    if follows is not None and (type(follows) is not str or not _UUID.match(follows)):
        return None
    related = data.get("related", [])
    if type(related) is not list or len(related) > MAX_RELATED_RESOURCES:
        return None
    for labels in related:
        if not _labels(labels, True):
            return None
    if "payload" in data and type(data["payload"]) is not dict:
        return None
    if _may_be_too_deep(data, raw):
        return None
    record = EventRecord.from_json(data, occurred, received)
    record.raw = raw
    return record


def _labels(labels: Any, related: bool) -> bool:
    """A resource's labels as Event's validators and dict[str, str] accept them."""
    if type(labels) is not dict or len(labels) > MAX_LABELS_PER_RESOURCE:
        return False
    for key, value in labels.items():
        if type(value) is not str or type(key) is not str:
            return False
    # Present and non-empty (a missing or empty label goes to the model for its message).
    return bool(labels.get(_ID)) and (not related or bool(labels.get(_ROLE)))


def _timestamp(value: Any) -> int | None:
    """Microseconds of an RFC 3339 timestamp (no zone: UTC), or None for the model to judge."""
    if type(value) is not str or not _TIMESTAMP.match(value):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None  # e.g. February 30th: the model names the error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return to_us(moment)


def _may_be_too_deep(data: dict[str, Any], raw: bytes | None) -> bool:
    """Whether the depth rule needs the model's check; False when it plainly holds.

    A value nested past MAX_EVENT_DEPTH levels needs that many opening brackets in the
    bytes (the event object being the first), so counting them, strings included, is a
    bound that costs no walk of the event.
    """
    if raw is None:
        return True
    return raw.count(b"{") + raw.count(b"[") > MAX_EVENT_DEPTH


def decode_event(raw: bytes | None, max_bytes: int) -> EventRecord:
    """Bytes to a validated event; DecodeError or ValidationFailed says why not."""
    if raw is None:
        msg = "empty record (no value)"
        raise DecodeError(msg, "empty")
    if len(raw) > max_bytes:
        msg = f"record of {len(raw)} bytes is over the {max_bytes}-byte limit"
        raise DecodeError(msg, "too_large")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        msg = f"not JSON: {exc}"
        raise DecodeError(msg, "not_json") from None
    if not isinstance(data, dict):
        msg = f"not a JSON object but {type(data).__name__}"
        raise DecodeError(msg, "not_object")
    # The bytes are what was validated: encoders embed them instead of encoding `data` again.
    return event_record(data, raw)
