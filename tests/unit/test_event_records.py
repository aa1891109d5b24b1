"""The fast event decoder accepts, rejects and records exactly as the pydantic model does."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.records import EventRecord
from service.errors import ValidationFailed
from service.event_records import _fast, event_record
from service.models.events import MAX_EVENT_DEPTH, parse_event

_ID = "prefect.resource.id"
_ROLE = "prefect.resource.role"

# orjson writes 64-bit integers only.
_ints = st.integers(-(2**63), 2**63 - 1)
_uuids = st.uuids().map(str)
_ids = st.one_of(
    _uuids,
    _uuids.map(str.upper),
    _uuids.map(lambda u: u.replace("-", "")),
    _uuids.map(lambda u: f"urn:uuid:{u}"),
    _uuids.map(lambda u: u[:-1]),
    st.sampled_from(["", "not-a-uuid", "00000000-0000-0000-0000-00000000000g"]),
    _ints,
    st.none(),
)
_times = st.one_of(
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes().map(lambda d: d.isoformat(sep=" ")),
    st.datetimes().map(lambda d: d.isoformat().lower() + "z"),
    st.sampled_from(
        [
            "2026-01-01T00:00:00Z",
            "2026-01-01T00:00:00.5Z",
            "2026-01-01T00:00:00.1234567Z",
            "2026-01-01T00:00:00+14:00",
            "2026-01-01T00:00:00+24:00",
            "2026-01-01T00:00:00-00:30",
            "2026-01-01T23:59:60Z",
            "2026-01-01T24:00:00Z",
            "2026-02-30T00:00:00Z",
            "0001-01-01T00:00:00.000001+14:00",
            "0000-01-01T00:00:00Z",
            "9999-12-31T23:59:59-12:00",
            "10000-01-01T00:00:00Z",
            "2026-01-01",
            "2026-01-01T00:00",
            "20260101T000000Z",
            "now",
            "",
        ]
    ),
    st.integers(min_value=-(2**40), max_value=2**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.none(),
)


def _mostly(valid: st.SearchStrategy[Any], edge: st.SearchStrategy[Any]) -> Any:
    """`valid` seven times in eight, else `edge`: most events reach the fast path's end."""
    # Hypothesis leans to the smallest draw: 0 is the valid side.
    return st.integers(0, 7).flatmap(lambda n: edge if n == 7 else valid)


_good_times = st.one_of(
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.datetimes(timezones=st.none() | st.timezones()).map(lambda d: d.isoformat()),
)
_label_values = st.one_of(st.text(max_size=8), _ints, st.none())


@st.composite
def _labels(draw: st.DrawFn, related: bool) -> Any:
    labels: dict[str, Any] = draw(
        st.dictionaries(st.text(max_size=6), st.text(max_size=8), max_size=3)
    )
    if draw(st.integers(0, 19)) < 19:
        labels[_ID] = draw(_mostly(st.text(min_size=1, max_size=8), st.just("") | _ints))
    if related and draw(st.integers(0, 19)) < 19:
        labels[_ROLE] = draw(_mostly(st.text(min_size=1, max_size=8), st.just("")))
    if draw(st.integers(0, 19)) == 19:
        labels[draw(st.text(max_size=4))] = draw(_label_values)
    many = draw(st.sampled_from([0] * 20 + [499, 500]))
    labels.update({f"l{i}": "v" for i in range(many)})
    if draw(st.integers(0, 39)) == 39:
        return draw(st.sampled_from([None, [], "r", 1]))
    return labels


def _nested(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


_payloads = _mostly(
    st.dictionaries(st.text(max_size=6), _ints | st.text(max_size=6), max_size=3),
    st.one_of(
        st.integers(MAX_EVENT_DEPTH - 3, MAX_EVENT_DEPTH + 1).map(lambda n: {"deep": _nested(n)}),
        st.sampled_from([None, [], "text", 1]),
    ),
)


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    """Mostly plausible events with one or more fields drawn from the edges."""
    data: dict[str, Any] = {
        "id": draw(_mostly(_uuids, _ids)),
        "occurred": draw(_mostly(_good_times, _times)),
        "event": draw(
            _mostly(
                st.text(max_size=20),
                st.sampled_from(["x" * 1024, "x" * 1025, 1, None]),
            )
        ),
        "resource": draw(_labels(False)),
    }
    if draw(st.booleans()):
        data["related"] = draw(
            _mostly(
                st.lists(_labels(True), max_size=3),
                st.sampled_from([100, 101]).map(
                    lambda n: [{_ID: f"r{i}", _ROLE: "x"} for i in range(n)]
                )
                | st.sampled_from([None, {}, "r"]),
            )
        )
    optional = {
        "payload": _payloads,
        "follows": _mostly(_uuids | st.none(), _ids),
        "received": _mostly(_good_times | st.none(), _times),
        "extra": _payloads,
    }
    for name, strategy in optional.items():
        if draw(st.booleans()):
            data[name] = draw(strategy)
    if draw(st.integers(0, 15)) == 15:
        del data[draw(st.sampled_from(["id", "occurred", "event", "resource"]))]
    return data


def _outcome(decode: Any, data: Any, raw: bytes) -> Any:
    try:
        record: EventRecord = decode(data, raw)
    except ValidationFailed as exc:
        return ("rejected", exc.errors)
    return (
        "accepted",
        record.id,
        record.name,
        record.occurred,
        record.received,
        record.follows,
        record.resource,
        record.related,
        record.to_json(),
        record.raw,
    )


def _model(data: Any, raw: bytes) -> EventRecord:
    """What route and replay did before: the pydantic model, then the record."""
    return EventRecord.from_validated(parse_event(data), data, raw)


def _valid(**fields: Any) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": "2026-01-01T00:00:00.250Z",
        "event": "prefect.flow-run.Completed",
        "resource": {_ID: "prefect.flow-run.r1", "prefect.state-name": "Completed"},
        "related": [{_ID: "prefect.deployment.d1", _ROLE: "deployment"}],
        "payload": {"validated_state": {"type": "COMPLETED"}},
        **fields,
    }


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(events())
def test_the_fast_decoder_agrees_with_the_model_on_generated_events(data: dict[str, Any]) -> None:
    raw = orjson.dumps(data)
    data = orjson.loads(raw)  # as route and replay hand it over: decoded from the bytes
    assert _outcome(event_record, data, raw) == _outcome(_model, data, raw)
    if _fast(data, raw) is not None:
        # What the fast path accepts alone, the model accepts too.
        assert _outcome(_model, data, raw)[0] == "accepted"


def test_a_plain_event_takes_the_fast_path_with_the_models_record() -> None:
    data = _valid(received="2026-01-01T00:00:01+02:00", follows=str(uuid.uuid4()), colour="red")
    raw = orjson.dumps(data)
    assert _fast(data, raw) is not None
    assert _outcome(event_record, data, raw) == _outcome(_model, data, raw)


@pytest.mark.parametrize(
    "fields",
    [
        {"id": "0A6C3A9E-1F2B-4C3D-8E9F-0A1B2C3D4E5F"},  # upper case: the model lowers it
        {"occurred": 1767225600},  # a unix timestamp
        {"occurred": "2026-01-01T00:00:00.1234567Z"},  # past microseconds
        {"payload": {"deep": _nested(MAX_EVENT_DEPTH)}},  # a bracket count past the bound
    ],
)
def test_other_forms_go_to_the_model_and_get_its_answer(fields: dict[str, Any]) -> None:
    data = _valid(**fields)
    raw = orjson.dumps(data)
    assert _fast(data, raw) is None
    assert _outcome(event_record, data, raw) == _outcome(_model, data, raw)


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        ({"resource": {"env": "dev"}}, [("resource", "Resources must include the prefect.resource.id label")]),
        ({"related": [{_ID: "d"}]}, [("related", "Related Resources must include the prefect.resource.role label")]),
        ({"event": "x" * 1025}, [("event", "Event name must be at most 1024 characters")]),
        ({"payload": {"deep": _nested(MAX_EVENT_DEPTH)}}, [("payload", "nested more than 128 levels deep")]),
    ],
)  # fmt: skip
def test_invalid_events_keep_the_models_messages(
    fields: dict[str, Any], errors: list[tuple[str, str]]
) -> None:
    data = _valid(**fields)
    with pytest.raises(ValidationFailed) as info:
        event_record(data, orjson.dumps(data))
    assert info.value.errors == errors
