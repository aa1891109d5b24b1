"""The backtest's pure parts: the event-time merge, the diff, missing history, versions."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from service.backtest import (
    PartitionRead,
    Summary,
    diff_firings,
    missing_history,
    run_backtest,
    versions_of,
)
from service.core.merge import merge_by_event_time
from service.core.records import EventRecord
from service.core.times import SECOND, us_to_iso
from service.errors import ConfigError
from service.models.automations import Automation
from service.models.events import parse_event
from tests.integration.harness import failures_per_run


def _first(item: tuple[int, str]) -> int:
    return item[0]


def test_merge_takes_the_partition_with_the_earliest_next_event_ties_to_the_lower() -> None:
    p0 = [(1, "a0"), (5, "b0"), (5, "c0")]
    p1 = [(0, "a1"), (5, "b1"), (9, "c1")]
    p2: list[tuple[int, str]] = []
    p3 = [(5, "a3")]
    merged = [name for _, name in merge_by_event_time([p0, p1, p2, p3], _first)]
    assert merged == ["a1", "a0", "b0", "c0", "b1", "a3", "c1"]


def test_merge_keeps_a_partitions_own_order_where_its_event_time_goes_back() -> None:
    # p0's late event (occurred 2, after 8) stays behind 8: it is applied where its
    # partition delivers it, as the live stream applies a late event.
    p0 = [(3, "x"), (8, "y"), (2, "late")]
    p1 = [(4, "p"), (6, "q"), (10, "r")]
    merged = [name for _, name in merge_by_event_time([p0, p1], _first)]
    assert merged == ["x", "p", "q", "y", "late", "r"]


def test_merge_reads_each_partition_one_item_ahead() -> None:
    pulled: list[str] = []

    def partition(name: str, times: list[int]) -> Iterator[tuple[int, str]]:
        for moment in times:
            pulled.append(f"{name}{moment}")
            yield moment, f"{name}{moment}"

    merged = merge_by_event_time([partition("a", [1, 2, 3]), partition("b", [10, 11])], _first)
    assert next(merged) == (1, "a1")
    assert pulled == ["a1", "b10"]
    assert next(merged) == (2, "a2")
    assert pulled == ["a1", "b10", "a2"]
    assert [name for _, name in merged] == ["a3", "b10", "b11"]


def _line(automation_id: str, event: str | None, fired_at: str, **extra: Any) -> dict[str, Any]:
    return {
        "automation": "a",
        "automation_id": automation_id,
        "trigger_id": str(uuid.uuid4()),
        "path": "trigger",
        "state": "Triggered",
        "bucket": {"prefect.resource.id": "r1"},
        "triggering_event": event,
        "fired_at": fired_at,
        "id": str(uuid.uuid4()),
        **extra,
    }


def test_diff_matches_by_path_state_bucket_and_event_not_by_firing_id() -> None:
    new_id, old_id = "new", "old"
    new = [
        _line(new_id, "e1", "2026-01-01T00:00:01Z"),
        _line(new_id, "e3", "2026-01-01T00:00:03Z"),
        _line(new_id, None, "2026-01-01T00:00:05Z"),
    ]
    old = [
        _line(old_id, "e1", "2026-01-01T00:00:01Z"),
        _line(old_id, "e2", "2026-01-01T00:00:02Z"),
        _line(old_id, None, "2026-01-01T00:00:04.500000Z"),
        _line(old_id, None, "2026-01-01T00:00:06Z"),
    ]
    merged = diff_firings(new, old, {old_id: new_id})
    assert [(line["diff"], line["triggering_event"], line["fired_at"]) for line in merged] == [
        ("both", "e1", "2026-01-01T00:00:01Z"),
        ("only_deployed", "e2", "2026-01-01T00:00:02Z"),
        ("only_new", "e3", "2026-01-01T00:00:03Z"),
        # The first tick firing of each version pair, in the order they fired.
        ("both", None, "2026-01-01T00:00:05Z"),
        ("only_deployed", None, "2026-01-01T00:00:06Z"),
    ]
    assert merged[0]["deployed"]["id"] == old[0]["id"]  # the ids differ, the firing matches
    assert merged[3]["deployed"]["fired_at"] == "2026-01-01T00:00:04.500000Z"


def test_diff_keeps_automations_apart_and_other_buckets_apart() -> None:
    new = [_line("n1", "e1", "2026-01-01T00:00:01Z")]
    old = [
        _line("o2", "e1", "2026-01-01T00:00:01Z"),  # another automation's firing
        {**_line("o1", "e1", "2026-01-01T00:00:01Z"), "bucket": {"prefect.resource.id": "r2"}},
    ]
    merged = diff_firings(new, old, {"o1": "n1", "o2": "n2"})
    assert sorted(line["diff"] for line in merged) == ["only_deployed", "only_deployed", "only_new"]


def test_missing_history_names_partitions_whose_retained_history_starts_after_since() -> None:
    since = 1_000 * SECOND
    reads = [
        PartitionRead(0, 0, 10, earliest=2_000 * SECOND),  # nothing deleted: nothing missing
        PartitionRead(1, 50, 80, earliest=1_500 * SECOND),  # deleted up to 1,500 s
        PartitionRead(2, 50, 80, earliest=900 * SECOND),  # retained from before since
        PartitionRead(3, 70, 70),  # everything deleted
    ]
    lines = missing_history(since, reads)
    assert len(lines) == 2
    assert lines[0].startswith("partition 1: the earliest retained event occurred at ")
    assert us_to_iso(1_500 * SECOND) in lines[0] and "offset 50" in lines[0]
    assert lines[1].startswith("partition 3: every record before offset 70 was deleted")
    assert missing_history(None, reads) == []


def _automation(name: str, automation_id: uuid.UUID | None = None) -> Automation:
    return Automation.model_validate({**failures_per_run(name, 2, 60), "id": automation_id})


def test_versions_are_found_by_id_else_by_name() -> None:
    deployed_a = _automation("a", uuid.uuid4())
    deployed_b = _automation("b", uuid.uuid4())
    new = [
        _automation("renamed", deployed_a.id),  # by id, whatever its name
        _automation("b"),  # by name
        _automation("c"),  # new
    ]
    assert versions_of(new, [deployed_a, deployed_b]) == [deployed_a, deployed_b, None]


def test_an_ambiguous_name_or_a_deployed_automation_claimed_twice_is_refused() -> None:
    twins = [_automation("a", uuid.uuid4()), _automation("a", uuid.uuid4())]
    with pytest.raises(ConfigError, match="2 deployed automations have that name"):
        versions_of([_automation("a")], twins)
    one = _automation("b", uuid.uuid4())
    with pytest.raises(ConfigError, match="both versions of the deployed automation"):
        versions_of([_automation("b"), _automation("x", one.id)], [one])


# -- idle ticks: skipped exactly ----------------------------------------------------------


def _trigger(**fields: Any) -> dict[str, Any]:
    return {"type": "event", "match": {"prefect.resource.id": "prefect.flow-run.*"}, **fields}


def _gap_automations() -> list[Automation]:
    """Reactive with for_each (buckets, sweeps), proactive global and per key (held
    events), a compound of a reactive and a proactive child: every kind of tick work."""
    raw = [
        _trigger(
            posture="Reactive",
            expect=["x.failed"],
            for_each=["prefect.resource.id"],
            threshold=2,
            within=60,
        ),
        _trigger(posture="Proactive", expect=["x.heartbeat"], threshold=1, within=600),
        _trigger(
            posture="Proactive",
            after=["x.started"],
            expect=["x.completed", "x.started"],
            for_each=["prefect.resource.id"],
            threshold=1,
            within=300,
        ),
        {
            "type": "compound",
            "require": "all",
            "within": 3600,
            "triggers": [
                _trigger(posture="Reactive", expect=["x.failed"], threshold=3, within=120),
                _trigger(posture="Proactive", expect=["x.completed"], threshold=1, within=900),
            ],
        },
    ]
    return [
        Automation.model_validate(
            {"name": f"gap-{i}", "trigger": trigger, "actions": [{"type": "do-nothing"}]}
        ).with_ids()
        for i, trigger in enumerate(raw)
    ]


def _gap_events() -> list[EventRecord]:
    """Bursts a few seconds apart separated by gaps of 40 min to 9 h, with held followers
    (one whose leader comes, one whose leader never does) and a late event."""
    rng = random.Random(23)  # noqa: S311  # a repeatable workload
    moment = 1_767_225_600 * SECOND  # 2026-01-01T00:00:00Z
    names = ["x.failed", "x.started", "x.completed", "x.heartbeat", "x.other"]
    out: list[EventRecord] = []
    number = 0

    def event(name: str, run: int, at: int, **extra: Any) -> EventRecord:
        nonlocal number
        number += 1
        data = {
            "id": str(uuid.UUID(int=number)),
            "occurred": us_to_iso(at),
            "event": name,
            "resource": {"prefect.resource.id": f"prefect.flow-run.r{run}"},
            **extra,
        }
        return EventRecord(parse_event(data))

    for burst in range(12):
        for _ in range(rng.randrange(5, 30)):
            moment += rng.randrange(1, 20) * SECOND
            out.append(event(rng.choice(names), rng.randrange(4), moment))
        if burst % 4 == 1:
            never = str(uuid.UUID(int=10**9 + burst))  # a leader that never comes
            out.append(event("x.failed", 0, moment, follows=never))
            leader = str(uuid.UUID(int=number + 2))  # the next event's id
            out.append(event("x.failed", 1, moment + SECOND, follows=leader))
            out.append(event("x.started", 1, moment + 2 * SECOND))
        if burst % 5 == 2:
            out.append(event("x.failed", 2, moment - 90 * SECOND))  # late
        moment += rng.choice([40, 95, 240, 540]) * 60 * SECOND
    return out


def test_skipping_idle_ticks_fires_exactly_what_ticking_every_interval_fires() -> None:
    new = _gap_automations()
    # The deployed versions: the reactive one with a lower threshold, so both engines'
    # states bound the skipping together.
    old = [a.model_copy() for a in new]
    old[0] = Automation.model_validate(
        {
            **new[0].model_dump(mode="json"),
            "trigger": {**new[0].model_dump(mode="json")["trigger"], "threshold": 1},
        }
    ).with_ids()
    events = _gap_events()
    runs = {}
    for skip in (False, True):
        summary = Summary("test", until=events[-1].occurred + 3 * 3600 * SECOND)
        result = run_backtest(
            new,
            old,
            iter(events),
            summary,
            tick_interval=5,
            skip_idle=skip,
            pairs={str(o.id): str(n.id) for n, o in zip(new, old, strict=True)},
        )
        runs[skip] = (result.firings, summary)
    every, skipping = runs[False][0], runs[True][0]
    assert skipping == every  # firing by firing: ids, times, buckets, children
    ticked, skipped = runs[False][1], runs[True][1]
    assert ticked.ticks_skipped == 0
    assert skipped.ticks + skipped.ticks_skipped == ticked.ticks
    assert skipped.ticks_skipped > 20 * skipped.ticks  # the gaps were left out
    # Every kind of firing is there: per key, global proactive, tick-fired, compound.
    fired_by = {line["automation"] for line in every}
    assert fired_by == {"gap-0", "gap-1", "gap-2", "gap-3"}
    assert any(line["triggering_event"] is None for line in every)  # a global deadline
    assert any(line.get("child_firings") for line in every)
    assert {"both", "only_deployed"} <= {line["diff"] for line in every}
