"""Match records (route -> evaluate) and the encoders that embed an event's received bytes."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.routing import Match
from service.core.store import Bucket
from service.core.triggers import CompiledEventTrigger, compile_automation
from service.event_records import decode_event
from service.messaging import records
from service.messaging.records import (
    MATCH_MAGIC,
    decode_child_firing,
    decode_matches,
    encode_child_firing,
    encode_matches,
)
from service.state.documents import DocumentStore, Position, bucket_doc_key

from .conftest import at, automation, eid, make_event, reactive


def _trigger(name: str) -> CompiledEventTrigger:
    return compile_automation(automation(reactive(name, expect=["x"]), name=name)).event_triggers()[
        0
    ]


def _raw(name: str, *, padding: int = 0, **extra: Any) -> bytes:
    """An event's bytes as a producer might write them: spaced, key order of its own."""
    data = {
        "event": "prefect.flow-run.Completed",
        "id": eid(name),
        "occurred": "2026-01-01T00:00:00.123456Z",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{name}"},
        "related": [
            {"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow"},
            {"prefect.resource.id": "prefect.tag.nightly", "prefect.resource.role": "tag"},
        ],
        "payload": {"pad": "x" * padding},
        **extra,
    }
    return orjson.dumps(data, option=orjson.OPT_INDENT_2)


def _fields(event: EventRecord) -> tuple[Any, ...]:
    return (
        event.id,
        event.name,
        event.occurred,
        event.received,
        event.follows,
        event.resource,
        event.related,
        event.to_json(),
    )


def _routed(
    events: list[EventRecord], triggers: list[CompiledEventTrigger]
) -> list[tuple[Match, Position | None]]:
    out: list[tuple[Match, Position | None]] = []
    for offset, event in enumerate(events):
        for index, trigger in enumerate(triggers):
            key = (event.resource["prefect.resource.id"],)
            out.append((Match(trigger, key, event, at(100 + offset)), (2, offset, index)))
    return out


def test_matches_round_trip_with_the_events_bytes_untouched() -> None:
    raws = [_raw("a"), _raw("b", follows=eid("a")), _raw("c")]
    events = [decode_event(raw, 1 << 20) for raw in raws]
    events[2].with_received(at(7))  # a record's own `received`, absent from its JSON
    triggers = [_trigger("t1"), _trigger("t2")]
    routed = _routed(events, triggers)
    routed[1] = (routed[1][0], None)  # a match routed without a source position

    [record] = encode_matches(routed)
    assert record.startswith(MATCH_MAGIC)
    decoded = decode_matches(record)

    assert [(m.trigger_id, m.key, m.wall, m.source) for m in decoded] == [
        (match.trigger.id, match.key, match.wall, source) for match, source in routed
    ]
    for match, (original, _) in zip(decoded, routed, strict=True):
        assert match.event.raw == original.event.raw
        assert _fields(match.event) == _fields(original.event)
    assert decoded[4].event.received == at(7)
    assert decoded[2].event.follows == eid("a")
    # One event routed to two triggers is one record on the other side too.
    assert decoded[0].event is decoded[1].event


def test_an_event_with_extra_fields_and_non_ascii_text_keeps_its_exact_bytes() -> None:
    raw = _raw("ü", extra_field={"nested": ["é", 1.5e300, None]})
    # Text as a producer may escape it, which orjson would write back as UTF-8.
    raw = raw.replace(
        b'"pad": ""', b'"pad": "\\u00e9 \\ud83d\\ude00 \xc3\xbc \xe2\x9c\x93 \xe6\x97\xa5"'
    )
    assert orjson.dumps(orjson.loads(raw)) != raw
    event = decode_event(raw, 1 << 20)
    [decoded] = decode_matches(encode_matches(_routed([event], [_trigger("t")]))[0])
    assert decoded.event.raw == raw
    assert decoded.event.to_json() == orjson.loads(raw)
    assert decoded.event.to_json()["payload"]["pad"] == "\u00e9 \U0001f600 \u00fc \u2713 \u65e5"

    # Stored with its bucket, sent on to compose in a child firing: still the same bytes.
    store = DocumentStore()
    store.put_bucket("t", ("k",), Bucket(0, 10, 1, decoded.event))
    [(_, document)] = store.flush()
    assert document is not None
    assert raw in document
    loaded = DocumentStore()
    loaded.load([(bucket_doc_key("t", ("k",)), document)])
    bucket = loaded.bucket("t", ("k",))
    assert bucket is not None
    assert bucket.last_event is not None
    assert _fields(bucket.last_event) == _fields(decoded.event)

    firing = Firing("f", "t", "a", at(1), {"k": "v"}, decoded.event)
    child = encode_child_firing("parent", firing)
    assert raw in child
    parent, back = decode_child_firing(child)
    assert parent == "parent"
    assert back.triggering_event is not None
    assert _fields(back.triggering_event) == _fields(decoded.event)


def test_events_without_their_bytes_are_encoded_from_their_json() -> None:
    event = make_event(
        "e", "x", 3, related=[{"prefect.resource.id": "r", "prefect.resource.role": "q"}]
    )
    assert event.raw is None
    [decoded] = decode_matches(encode_matches(_routed([event], [_trigger("t")]))[0])
    assert decoded.event.raw == orjson.dumps(event.to_json())
    assert _fields(decoded.event) == _fields(event)


def _format_1(matches: list[tuple[Match, Position | None]]) -> bytes:
    """A match record as workers before format 2 wrote it."""
    events: list[Any] = []
    entries: list[list[Any]] = []
    index_of: dict[int, int] = {}
    for match, source in matches:
        event = match.event
        index = index_of.get(id(event))
        meta = None
        if index is None:
            index = index_of[id(event)] = len(events)
            events.append(event.to_json())
            meta = [event.id, event.occurred, event.received]
        entries.append([index, match.trigger.id, list(match.key), match.wall, source, meta])
    return orjson.dumps({"e": events, "m": entries})


def test_records_of_the_json_format_are_still_read() -> None:
    events = [decode_event(_raw(name), 1 << 20) for name in ("a", "b")]
    events[1].with_received(at(9))
    routed = _routed(events, [_trigger("t1"), _trigger("t2")])
    routed[0] = (routed[0][0], None)  # an event routed without a source position
    decoded = decode_matches(_format_1(routed))
    assert [(m.trigger_id, m.key, m.wall, m.source) for m in decoded] == [
        (match.trigger.id, match.key, match.wall, source) for match, source in routed
    ]
    for match, (original, _) in zip(decoded, routed, strict=True):
        assert _fields(match.event) == _fields(original.event)


def test_records_split_past_the_size_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(records, "MATCH_RECORD_BYTES", 2_000)
    events = [decode_event(_raw(f"e{n}", padding=700), 1 << 20) for n in range(7)]
    routed = _routed(events, [_trigger("t1"), _trigger("t2")])
    # The first event matches again at the end: the record it lands in carries it again.
    routed.append((Match(routed[0][0].trigger, ("late",), events[0], at(999)), (2, 99, 0)))

    encoded = encode_matches(routed)
    assert len(encoded) > 2
    decoded = [decode_matches(record) for record in encoded]
    for record in decoded:
        # No event starts a new record once the current one holds 2,000 bytes of events.
        raws = {id(m.event): len(m.event.raw or b"") for m in record}
        assert sum(raws.values()) - max(raws.values()) < 2_000
    flat = [m for record in decoded for m in record]
    assert [(m.trigger_id, m.key, m.source, m.event.raw) for m in flat] == [
        (match.trigger.id, match.key, source, match.event.raw) for match, source in routed
    ]


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"TWM1\x00\x00\x00\x02{}",
        MATCH_MAGIC + b"\x00\x00\x00\x09",  # a header longer than the record
        b"[1, 2]",
    ],
)
def test_a_record_that_is_no_match_record_is_refused(data: bytes) -> None:
    with pytest.raises(ValueError):  # orjson.JSONDecodeError is one too
        decode_matches(data)


def test_a_record_whose_events_are_cut_short_is_refused() -> None:
    event = decode_event(_raw("a"), 1 << 20)
    [record] = encode_matches(_routed([event], [_trigger("t")]))
    with pytest.raises(ValueError, match="header accounts for"):
        decode_matches(record[:-1])
