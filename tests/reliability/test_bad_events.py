"""Fuzzed event records through one real worker: each is dead-lettered with its reason or
evaluated exactly as the core evaluates it, valid events around them still fire, and the
worker never dies.

Hypothesis draws the records (derandomized: the same records every run); one worker
takes them all, so the run costs one worker start-up. The oracle is computed in-process:
the route stage's own decoder says which records are invalid and why, and the core
`Engine` over the valid ones, in produced order, says which firings must appear.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from service.core.engine import Engine
from service.errors import DecodeError, ValidationFailed
from service.event_records import decode_event
from service.models.automations import Automation, parse_automations
from service.state.memory import MemoryStateStore
from tests.integration.api_harness import wait_worker_ready
from tests.integration.harness import Cluster

EXAMPLES = 15  # lists of RECORDS_PER_EXAMPLE fuzzed records each
RECORDS_PER_EXAMPLE = 20
CANARY_EVERY = 10

FIELDS = ["id", "occurred", "event", "resource", "related", "payload", "follows"]
BAD_UTF8 = [b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x80"]
EXTREME_TIMES = [
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00.000001+14:00",
    "1970-01-01T00:00:00Z",
    "9999-12-31T23:59:59.999999Z",
    "9999-12-31T23:59:59-12:00",
    "10000-01-01T00:00:00Z",
    "2026-02-30T00:00:00Z",
    "2026-01-01",
    "now",
    "",
]

_json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
_json = st.recursive(
    _json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)

# What the builder turns into one record: (kind, parameters).
fuzzed = st.one_of(
    st.tuples(
        st.just("valid"),
        st.dictionaries(st.text(min_size=1, max_size=10), st.text(max_size=30), max_size=4),
        st.dictionaries(st.text(max_size=10), _json, max_size=5),
    ),
    st.tuples(st.just("bad_json"), st.integers(min_value=0), st.binary(max_size=8)),
    st.tuples(st.just("bad_utf8"), st.sampled_from(BAD_UTF8), st.sampled_from(["event", "key"])),
    st.tuples(st.just("wrong_type"), st.sampled_from(FIELDS), _json),
    st.tuples(st.just("missing"), st.sets(st.sampled_from(FIELDS), min_size=1)),
    st.tuples(st.just("huge"), st.integers(min_value=50_000, max_value=150_000)),
    st.tuples(
        st.just("time"),
        st.one_of(
            st.sampled_from(EXTREME_TIMES),
            # Naive bounds are Hypothesis's rule; some drawn times have no zone, on purpose.
            st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)).map(  # noqa: DTZ001
                lambda d: d.isoformat()
            ),
            st.integers(min_value=-(2**62), max_value=2**62),
            st.floats(allow_nan=False),
        ),
    ),
    st.tuples(st.just("duplicate"), st.integers(min_value=0)),
    st.tuples(
        st.just("deep"),
        st.integers(min_value=1, max_value=1100),
        st.sampled_from(["payload", "extra"]),
        st.sampled_from(["{", "["]),
    ),
)


def _collect() -> list[tuple[Any, ...]]:
    drawn: list[tuple[Any, ...]] = []

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(st.lists(fuzzed, min_size=RECORDS_PER_EXAMPLE, max_size=RECORDS_PER_EXAMPLE))
    def collect(batch: list[tuple[Any, ...]]) -> None:
        drawn.extend(batch)

    collect()
    return drawn


def _base(n: int, now: str) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"fuzz-{n}")),
        "occurred": now,
        "event": "fuzz.event",
        "resource": {"prefect.resource.id": f"fuzz.{n}"},
        "related": [{"prefect.resource.id": "prefect.deployment.d", "prefect.resource.role": "x"}],
        "payload": {"n": n},
    }


def _deep(levels: int, bracket: str) -> bytes:
    inner = '{"a":' if bracket == "{" else "["
    close = "}" if bracket == "{" else "]"
    return (
        inner * (levels - 1) + ("{}" if bracket == "{" else "[]") + close * (levels - 1)
    ).encode()


def _build(drawn: list[tuple[Any, ...]], now: str) -> list[tuple[str, bytes]]:
    """(kind, record bytes) per drawn spec; every base event has its own id and resource."""
    records: list[tuple[str, bytes]] = []
    plain: list[dict[str, Any]] = []
    for n, (kind, *params) in enumerate(drawn):
        event = _base(n, now)
        if kind == "valid":
            labels, payload = params
            event["resource"] = {**labels, "prefect.resource.id": f"fuzz.{n}"}
            event["payload"] = payload
            plain.append(event)
            raw = json.dumps(event).encode()
        elif kind == "bad_json":
            cut, junk = params
            whole = json.dumps(event).encode()
            raw = whole[: cut % len(whole)] + junk
        elif kind == "bad_utf8":
            bad, where = params
            event["event" if where == "event" else "payload"] = (
                "fuzz.eventMARK" if where == "event" else {"MARK": 1}
            )
            raw = json.dumps(event).encode().replace(b"MARK", bad)
        elif kind == "wrong_type":
            field, value = params
            event[field] = value
            raw = json.dumps(event).encode()
        elif kind == "missing":
            for field in params[0]:
                event.pop(field, None)
            raw = json.dumps(event).encode()
        elif kind == "huge":
            event["payload"] = {"blob": "x" * params[0]}
            raw = json.dumps(event).encode()
        elif kind == "time":
            event["occurred"] = params[0]
            raw = json.dumps(event).encode()
        elif kind == "duplicate":
            if not plain:
                continue
            original = plain[params[0] % len(plain)]
            # Same id, its own resource: were it not dropped, it would fire on its own.
            event["id"] = original["id"]
            raw = json.dumps(event).encode()
        else:  # deep
            levels, where, bracket = params
            if where == "payload" and bracket == "[":
                where = "extra"  # a payload must be an object; a list payload is wrong_type
            event[where] = "DEEP"
            raw = json.dumps(event).encode().replace(b'"DEEP"', _deep(levels, bracket))
        records.append((kind, raw))
    return records


AUTOMATIONS = [
    {
        "name": name,
        "trigger": {
            "type": "event",
            "posture": "Reactive",
            "expect": [expect],
            "match": {"prefect.resource.id": f"{prefix}.*"},
            "for_each": ["prefect.resource.id"],
            "threshold": 1,
            "within": 600,
        },
        "actions": [{"type": "do-nothing"}],
    }
    for name, expect, prefix in [
        ("fuzz", "fuzz.event", "fuzz"),
        ("canary", "canary.ping", "canary"),
    ]
]


def _canary(k: int, now: str) -> tuple[str, bytes]:
    event = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"canary-{k}")),
        "occurred": now,
        "event": "canary.ping",
        "resource": {"prefect.resource.id": f"canary.{k}"},
    }
    return "canary", orjson.dumps(event)


def _oracle(
    automations: list[Automation], records: list[tuple[str, bytes]], max_bytes: int
) -> tuple[list[tuple[bytes, str]], dict[str, str]]:
    """(value, reason) of each record the route stage must reject; firing id -> automation."""
    rejected: list[tuple[bytes, str]] = []
    engine = Engine(automations, MemoryStateStore())
    wall = int(time.time() * 1_000_000)
    firings: dict[str, str] = {}
    for i, (_, raw) in enumerate(records):
        try:
            record = decode_event(raw, max_bytes)
        except (DecodeError, ValidationFailed) as exc:
            rejected.append((raw, f"invalid event: {exc}"))
            continue
        for fired in engine.process(record, wall + i):
            firings[fired.firing.id] = fired.automation.name
    return rejected, firings


def test_fuzzed_events_are_dead_lettered_with_a_reason_or_evaluated_and_the_worker_lives(
    cluster: Cluster,
) -> None:
    now = datetime.now(UTC).isoformat()
    records: list[tuple[str, bytes]] = []
    for i, item in enumerate(_build(_collect(), now)):
        if i % CANARY_EVERY == 0:
            records.append(_canary(i, now))
        records.append(item)
    records.append(_canary(len(records), now))  # the last record: the worker got this far
    automations = parse_automations(AUTOMATIONS)
    rejected, expected = _oracle(automations, records, cluster.max_event_bytes)
    kinds = Counter(kind for kind, _ in records)
    valid = len(records) - len(rejected)
    print(
        f"\nRELIABILITY bad events: {len(records)} records {dict(kinds)}, "
        f"{len(rejected)} invalid, {valid} valid, {len(expected)} firings expected"
    )
    # The mix must exercise both outcomes in bulk, or the test proves little.
    assert len(rejected) >= 100 and len(expected) >= 50, (len(rejected), len(expected))

    cluster.publish(automations)
    worker = cluster.start_worker("w1")
    wait_worker_ready(worker)
    cluster.produce((b"fuzz", raw) for _, raw in records)  # one key: one partition, one order

    firings = cluster.firings(lambda recs: {r["id"] for r in recs} >= set(expected), 120, 3)
    got = Counter(f["id"] for f in firings)
    missing = set(expected) - set(got)
    assert not missing, (len(missing), Counter(expected[i] for i in missing))
    assert set(got) == set(expected)
    # A duplicate id never fires twice: each triggering event fired at most once.
    by_event = Counter(f["triggering_event"]["id"] for f in {f["id"]: f for f in firings}.values())
    assert max(by_event.values()) == 1

    dead = cluster.read(
        cluster.settings.topic_events_dlq, lambda recs: len(recs) >= len(rejected), 60, 2
    )
    letters = [(r.value, dict(r.headers)["tripwire.reason"].decode(errors="replace")) for r in dead]
    assert Counter(letters) == Counter(
        (value, reason.encode().decode(errors="replace")) for value, reason in rejected
    )
    assert worker.process.poll() is None, worker.log_text()[-3000:]
    assert "Traceback" not in worker.log_text()
