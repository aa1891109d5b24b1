"""Events at the edges the fuzzing found: deep nesting, timestamps at datetime's limits."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest

from service.core.engine import Engine
from service.errors import ValidationFailed
from service.event_records import decode_event
from service.messaging.records import decode_matches, encode_matches, firing_record_bytes
from service.models.automations import parse_automations
from service.models.events import MAX_EVENT_DEPTH, parse_event
from service.state.memory import MemoryStateStore


def _event(**fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": "2026-01-01T00:00:00Z",
        "event": "fuzz.event",
        "resource": {"prefect.resource.id": f"fuzz.{uuid.uuid4()}"},
        **fields,
    }


def _nested(levels: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize("field", ["payload", "an_ignored_extra"])
def test_an_event_nested_past_the_limit_is_invalid_naming_the_field(field: str) -> None:
    # The event object is level 1, its field's value level 2.
    parse_event(_event(**{field: _nested(MAX_EVENT_DEPTH - 1)}))
    with pytest.raises(ValidationFailed, match=f"{field}: nested more than 128 levels"):
        parse_event(_event(**{field: {"one-more": _nested(MAX_EVENT_DEPTH - 1)}}))


def test_the_deepest_valid_event_can_be_written_back_in_every_record() -> None:
    automations = parse_automations(
        [
            {
                "name": "fuzz",
                "trigger": {
                    "type": "event",
                    "posture": "Reactive",
                    "expect": ["fuzz.event"],
                    "for_each": ["prefect.resource.id"],
                    "threshold": 1,
                    "within": 600,
                },
                "actions": [{"type": "do-nothing"}],
            }
        ]
    )
    engine = Engine(automations, MemoryStateStore())
    deepest = _event(payload=_nested(MAX_EVENT_DEPTH - 1))
    record = decode_event(orjson.dumps(deepest), 10**7)
    (fired,) = engine.process(record, 1_767_225_600_000_000)
    assert orjson.loads(firing_record_bytes(fired))["triggering_event"]["id"] == deepest["id"]
    router = Engine(automations, MemoryStateStore()).router
    (match,) = router.route(decode_event(orjson.dumps(deepest), 10**7), 1_767_225_600_000_000)
    (encoded,) = encode_matches([(match, None)])
    (routed,) = decode_matches(encoded)
    assert routed.event.to_json() == deepest
    # Restored from a stored bucket, an event has no bytes left and is encoded again.
    assert orjson.loads(orjson.dumps(routed.event.to_json())) == deepest


@pytest.mark.parametrize(
    ("occurred", "window"),
    [
        ("9999-12-31T23:59:00Z", ("9999-12-31T", "9999-12-31T23:59:59.999999Z")),
        ("0001-01-01T00:00:00Z", ("0001-01-01T00:00:00Z", "0001-01-01T00:10:00Z")),
    ],
)
def test_a_window_past_datetimes_range_is_written_clamped_not_crashing(
    occurred: str, window: tuple[str, str]
) -> None:
    automations = parse_automations(
        [
            {
                "name": "fuzz",
                "trigger": {
                    "type": "event",
                    "posture": "Reactive",
                    "expect": ["fuzz.event"],
                    "for_each": ["prefect.resource.id"],
                    "threshold": 1,
                    "within": 600,
                },
                "actions": [{"type": "do-nothing"}],
            }
        ]
    )
    engine = Engine(automations, MemoryStateStore())
    record = decode_event(orjson.dumps(_event(occurred=occurred)), 10**6)
    (fired,) = engine.process(record, 1_767_225_600_000_000)
    written = orjson.loads(firing_record_bytes(fired))["window"]
    assert written["start"].startswith(window[0])
    assert written["end"] == window[1]
