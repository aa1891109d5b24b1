"""Metric triggers through the engine and replay: hand-computed flow-run timelines."""

from __future__ import annotations

import io
import itertools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from service.core import metrics
from service.core.engine import AutomationFiring, Engine
from service.core.metrics import CompiledMetricTrigger
from service.core.records import EventRecord
from service.core.times import SECOND, from_us, to_us
from service.models.automations import parse_automation
from service.models.events import parse_event
from service.replay import ReplayInput, TimedEvent, run
from service.state.memory import MemoryStateStore

T0 = to_us(datetime(2026, 1, 1, tzinfo=UTC))
_ids = itertools.count(1)

# (second, run, state) or (second, run, state, related resources)
Step = tuple[Any, ...]


def metric_trigger(
    name: str = "successes",
    threshold: float = 0.9,
    operator: str = "<",
    range_: int = 600,
    firing_for: int = 0,
    **extra: Any,
) -> dict[str, Any]:
    query = {
        "name": name,
        "threshold": threshold,
        "operator": operator,
        "range": range_,
        "firing_for": firing_for,
    }
    return {"type": "metric", "metric": query, **extra}


def automation(trigger: dict[str, Any], name: str = "metric") -> dict[str, Any]:
    return {
        "name": name,
        "trigger": trigger,
        "actions": [{"type": "do-nothing"}],
        "actions_on_resolve": [{"type": "do-nothing"}],
    }


def at(second: float) -> int:
    return T0 + round(second * SECOND)


def flow_event(
    run_id: str, state: str, second: float, related: Sequence[dict[str, str]] = ()
) -> EventRecord:
    return EventRecord(
        parse_event(
            {
                "id": str(uuid.UUID(int=next(_ids))),
                "occurred": from_us(at(second)).isoformat(),
                "event": f"prefect.flow-run.{state}",
                "resource": {"prefect.resource.id": f"prefect.flow-run.{run_id}"},
                "related": list(related),
            }
        )
    )


def custom_event(name: str, second: float) -> EventRecord:
    return EventRecord(
        parse_event(
            {
                "id": str(uuid.UUID(int=next(_ids))),
                "occurred": from_us(at(second)).isoformat(),
                "event": name,
                "resource": {"prefect.resource.id": "thing"},
            }
        )
    )


class Harness:
    def __init__(self, *automations: dict[str, Any]) -> None:
        self.store = MemoryStateStore()
        self.engine = Engine([parse_automation(a) for a in automations], self.store)

    @property
    def metric(self) -> CompiledMetricTrigger:
        return self.engine.metrics.triggers[0]

    def feed(self, steps: Sequence[Step]) -> list[AutomationFiring]:
        out: list[AutomationFiring] = []
        for second, run_id, state, *related in steps:
            event = flow_event(run_id, state, second, related[0] if related else ())
            out += self.engine.process(event, at(second))
        return out

    def tick(self, second: float) -> list[AutomationFiring]:
        return self.engine.tick(at(second))

    def ticks(self, seconds: Sequence[float]) -> list[tuple[str, float, float | None]]:
        return [summary(f) for s in seconds for f in self.tick(s)]

    def value(self, second: float) -> float | None:
        return self.engine.metrics.value(self.metric, at(second))


def summary(fired: AutomationFiring) -> tuple[str, float, float | None]:
    firing = fired.firing
    return firing.state, (firing.fired_at - T0) / SECOND, firing.triggering_value


def lifecycle(run_id: str, start: float, *states: tuple[float, str]) -> list[Step]:
    return [(start + offset, run_id, state) for offset, state in states]


# -- successes -----------------------------------------------------------------------------
def test_successes_is_the_rate_of_runs_that_did_not_fail() -> None:
    h = Harness(automation(metric_trigger("successes")))
    h.feed(
        [
            *lifecycle("a", 0, (0, "Pending"), (5, "Running"), (20, "Completed")),
            *lifecycle("b", 10, (0, "Pending"), (2, "Running"), (20, "Failed")),
            *lifecycle("c", 15, (0, "Pending"), (1, "Running"), (25, "Crashed")),
            *lifecycle("d", 50, (0, "Pending"), (5, "Running"), (10, "Completed")),
        ]
    )
    assert h.value(100) == 0.5


def test_a_retried_run_that_ends_well_is_one_success() -> None:
    h = Harness(automation(metric_trigger("successes")))
    retried = ["Pending", "Running", "AwaitingRetry", "Retrying", "Completed"]
    exhausted = ["Pending", "Running", "AwaitingRetry", "Retrying", "Failed"]
    h.feed([(10 * i, "ok", state) for i, state in enumerate(retried)])
    assert h.value(60) == 1.0
    h.feed([(100 + 10 * i, "bad", state) for i, state in enumerate(exhausted)])
    assert h.value(200) == 0.5


def test_cancelled_is_final_and_not_a_failure() -> None:
    h = Harness(automation(metric_trigger("successes")))
    h.feed(lifecycle("a", 0, (0, "Pending"), (5, "Cancelling"), (6, "Cancelled")))
    assert h.value(60) == 1.0


def test_runs_with_missing_states() -> None:
    h = Harness(automation(metric_trigger("successes")))
    h.feed(
        [
            # Never seen Pending: not counted, even though it failed.
            *lifecycle("no-pending", 0, (0, "Running"), (10, "Failed")),
            # Pending straight to a final state: counted.
            *lifecycle("no-running", 0, (0, "Pending"), (5, "Completed")),
            # A final state alone: not counted.
            *lifecycle("final-only", 0, (20, "Crashed")),
            # Still open: not counted yet.
            *lifecycle("open", 0, (0, "Pending"), (1, "Running")),
        ]
    )
    assert h.value(60) == 1.0


def test_a_run_restarted_after_a_final_state_counts_again() -> None:
    # The run is forgotten once counted; a manual retry that goes Pending again is a
    # new attempt (docs/metric-triggers.md).
    h = Harness(automation(metric_trigger("successes")))
    h.feed(
        lifecycle(
            "a",
            0,
            (0, "Pending"),
            (1, "Running"),
            (10, "Failed"),
            (20, "Scheduled"),
            (30, "Pending"),
            (31, "Running"),
            (40, "Completed"),
        )
    )
    assert h.value(60) == 0.5


def test_a_repeated_final_state_is_not_counted_twice() -> None:
    h = Harness(automation(metric_trigger("successes")))
    h.feed(lifecycle("a", 0, (0, "Pending"), (10, "Failed"), (11, "Failed")))
    h.feed(lifecycle("b", 0, (0, "Pending"), (12, "Completed")))
    assert h.value(60) == 0.5


# -- duration ------------------------------------------------------------------------------
def test_duration_is_the_mean_time_from_running_to_a_terminal_state() -> None:
    h = Harness(automation(metric_trigger("duration", 60, ">")))
    h.feed(
        sorted(
            [
                *lifecycle("a", 0, (0, "Running"), (30, "Completed")),  # 30 s
                *lifecycle("b", 10, (0, "Running"), (60, "Failed")),  # 60 s
                *lifecycle("c", 20, (0, "Running"), (90, "Crashed")),  # 90 s
                *lifecycle("d", 0, (0, "Running"), (50, "Cancelled")),  # not terminal
                *lifecycle("e", 0, (0, "Pending"), (60, "Completed")),  # never Running
            ]
        )
    )
    assert h.value(120) == 60.0


def test_duration_runs_from_the_first_running_across_retries() -> None:
    h = Harness(automation(metric_trigger("duration", 60, ">")))
    h.feed(
        lifecycle(
            "a",
            0,
            (0, "Pending"),
            (0, "Running"),
            (10, "AwaitingRetry"),
            (20, "Retrying"),
            (25, "Running"),
            (40, "Completed"),
        )
    )
    assert h.value(60) == 40.0


def test_duration_of_a_run_cancelled_then_rerun_starts_at_the_new_running() -> None:
    h = Harness(automation(metric_trigger("duration", 60, ">")))
    h.feed(lifecycle("a", 0, (0, "Running"), (10, "Cancelled"), (20, "Running"), (25, "Completed")))
    assert h.value(60) == 5.0


def test_a_negative_span_counts_as_zero() -> None:
    # Arrival order pairs states; an earlier `occurred` on the close clamps to 0.
    h = Harness(automation(metric_trigger("duration", 60, ">")))
    h.feed([(50, "a", "Running"), (40, "a", "Completed")])
    assert h.value(60) == 0.0


# -- lateness ------------------------------------------------------------------------------
def test_lateness_is_the_mean_time_from_late_to_running_or_crashed() -> None:
    h = Harness(automation(metric_trigger("lateness", 300, ">")))
    h.feed(
        sorted(
            [
                *lifecycle(
                    "a", 0, (0, "Scheduled"), (10, "Late"), (40, "Pending"), (70, "Running")
                ),
                *lifecycle("b", 20, (0, "Late"), (30, "Crashed")),  # 30 s
                *lifecycle("c", 0, (0, "Pending"), (5, "Running")),  # never Late
                *lifecycle("d", 0, (0, "Late"), (30, "Cancelled")),  # left Late otherwise
                *lifecycle("e", 5, (0, "Late")),  # still late
            ]
        )
    )
    assert h.value(100) == 45.0  # (60 + 30) / 2


def test_only_the_first_late_of_a_stretch_starts_the_clock() -> None:
    h = Harness(automation(metric_trigger("lateness", 300, ">")))
    h.feed(lifecycle("a", 0, (0, "Late"), (30, "Late"), (50, "Running"), (60, "Running")))
    assert h.value(100) == 50.0


# -- the window ----------------------------------------------------------------------------
def test_the_window_is_whole_sub_intervals_reaching_back_at_least_range() -> None:
    # range 600 s: sub-intervals of 10 s; at T the window is T's sub-interval and the 60
    # before it, so it starts at floor(T / 10 s) * 10 s - 600 s.
    h = Harness(automation(metric_trigger("duration", 60, ">")))
    h.feed([(390, "x", "Running"), (395, "y", "Running"), (399, "x", "Completed")])
    h.feed([(400, "y", "Completed")])  # 9 s at 399, 5 s at 400
    assert h.value(990) == 7.0
    assert h.value(1000) == 5.0  # the window starts at 400
    assert h.value(1009.5) == 5.0
    assert h.value(1010) is None  # no data


def test_no_events_means_no_value_and_no_state() -> None:
    h = Harness(automation(metric_trigger("successes", 0.9, "<")))
    assert h.ticks([0, 60, 120]) == []
    assert h.store.metric_state(h.metric.id) is None


def test_a_gap_without_data_neither_fires_nor_resolves() -> None:
    h = Harness(automation(metric_trigger("duration", 50, ">", firing_for=120)))
    h.feed(lifecycle("a", 0, (0, "Running"), (100, "Completed")))  # 100 s at 100
    assert h.ticks([120, 180, 240]) == [("Triggered", 240, 100.0)]
    # The outcome leaves the window at 710; nothing resolves without data.
    assert h.ticks(range(300, 840, 60)) == []
    h.feed(lifecycle("b", 800, (0, "Running"), (10, "Completed")))  # 10 s at 810
    assert h.ticks([840, 900, 960]) == [("Resolved", 960, 10.0)]
    # Idle again: the store holds nothing for it once the data has gone.
    h.ticks([2000])
    assert h.store.metric_state(h.metric.id) is None


def test_flapping_values_are_held_back_by_firing_for() -> None:
    # Each minute one run of 100 s or 10 s ends; range 10 s keeps only the latest.
    h = Harness(automation(metric_trigger("duration", 50, ">", range_=10, firing_for=120)))
    fired = []
    for minute in range(10):
        second = 60 * minute
        span = 100 if minute % 2 == 0 else 10
        h.feed(lifecycle(f"r{minute}", second - span, (0, "Running"), (span, "Completed")))
        assert h.value(second) == float(span)
        fired += h.ticks([second])
    assert fired == []
    # Sustained: three evaluations of 100 s over 120 s fire once.
    for minute in (10, 11, 12):
        h.feed(lifecycle(f"s{minute}", 60 * minute - 100, (0, "Running"), (100, "Completed")))
        fired += h.ticks([60 * minute])
    assert fired == [("Triggered", 720, 100.0)]


@pytest.mark.parametrize(
    ("operator", "threshold", "fires"),
    [
        ("<", 0.5, False),
        ("<", 0.6, True),
        ("<=", 0.5, True),
        ("<=", 0.4, False),
        (">", 0.5, False),
        (">", 0.4, True),
        (">=", 0.5, True),
        (">=", 0.6, False),
    ],
)
def test_operators_on_a_success_rate_of_one_half(
    operator: str, threshold: float, fires: bool
) -> None:
    h = Harness(automation(metric_trigger("successes", threshold, operator)))
    h.feed(lifecycle("a", 0, (0, "Pending"), (10, "Completed")))
    h.feed(lifecycle("b", 0, (0, "Pending"), (20, "Failed")))
    assert h.ticks([60]) == ([("Triggered", 60, 0.5)] if fires else [])


# -- the seed's examples --------------------------------------------------------------------
PRODUCTION = {"prefect.resource.id": "prefect.tag.production", "prefect.resource.role": "tag"}
KUBERNETES = {
    "prefect.resource.id": "prefect.work-pool.kubernetes",
    "prefect.resource.role": "work-pool",
}


def test_seed_success_rate_below_ninety_percent() -> None:
    trigger = metric_trigger(
        "successes",
        0.9,
        "<",
        range_=3600,
        firing_for=0,
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related={
            "prefect.resource.id": "prefect.tag.production",
            "prefect.resource.role": "tag",
        },
    )
    h = Harness(automation(trigger))
    tagged = [PRODUCTION]
    for i in range(9):
        h.feed([(i, f"ok{i}", "Pending", tagged), (i + 30, f"ok{i}", "Completed", tagged)])
    h.feed([(10, "bad0", "Pending", tagged), (40, "bad0", "Failed", tagged)])
    # Untagged failures do not count.
    h.feed([(10, "other", "Pending"), (40, "other", "Failed")])
    assert h.value(60) == 0.9
    assert h.ticks([60]) == []  # 0.9 is not < 0.9
    h.feed([(70, "bad1", "Pending", tagged), (80, "bad1", "Failed", tagged)])
    assert h.ticks([120]) == [("Triggered", 120, 9 / 11)]


def test_seed_kubernetes_lateness_over_five_minutes_for_ten() -> None:
    trigger = metric_trigger(
        "lateness",
        300,
        ">",
        range_=86400,
        firing_for=600,
        match={"prefect.resource.id": "prefect.flow-run.*"},
        match_related=KUBERNETES,
    )
    h = Harness(automation(trigger))
    pool = [KUBERNETES]
    h.feed([(0, "a", "Late", pool), (400, "a", "Running", pool)])
    h.feed([(0, "elsewhere", "Late"), (10, "elsewhere", "Running")])
    assert h.ticks([600, 900, 1200, 1500]) == [("Triggered", 1200, 400.0)]


# -- firings, state events, composites, replay -------------------------------------------------
def test_resolved_firings_build_the_resolved_state_event() -> None:
    h = Harness(automation(metric_trigger("successes", 0.9, "<", range_=60)))
    h.feed(lifecycle("a", 0, (0, "Pending"), (10, "Failed")))
    [triggered] = h.tick(30)
    h.feed(lifecycle("b", 100, (0, "Pending"), (10, "Completed")))
    [resolved] = h.tick(120)
    assert triggered.state_event.name == "prefect.automation.triggered"
    assert resolved.firing.state == "Resolved"
    assert resolved.firing.triggering_value == 1.0
    assert resolved.state_event.name == "prefect.automation.resolved"
    assert resolved.state_event.occurred == at(120)
    assert resolved.state_event.related == []
    payload = resolved.state_event.to_json()["payload"]
    assert payload == {"triggering_labels": {}, "triggering_event": None}
    assert resolved.firing.id != triggered.firing.id


def test_a_metric_child_fires_into_a_compound_and_its_resolution_stays_there() -> None:
    compound = {
        "type": "compound",
        "require": "all",
        "within": None,
        "triggers": [
            {"type": "event", "posture": "Reactive", "expect": ["export.done"]},
            metric_trigger("successes", 0.9, "<", range_=60),
        ],
    }
    h = Harness(automation(compound))
    h.feed(lifecycle("a", 0, (0, "Pending"), (10, "Failed")))
    assert h.ticks([30]) == []  # the child fired; the parent waits for the other
    [parent] = h.engine.process(custom_event("export.done", 40), at(40))
    assert parent.firing.state == "Triggered"
    assert parent.firing.labels == {}
    children = parent.firing.child_firings
    assert [c.trigger_id for c in children] == [
        h.engine.automations[0].event_triggers()[0].id,
        h.metric.id,
    ]
    assert children[1].triggering_value == 0.0
    # The child recovers: its Resolved firing goes nowhere.
    h.feed(lifecycle("b", 100, (0, "Pending"), (10, "Completed")))
    assert h.ticks([120, 180]) == []
    assert h.store.child_firings(h.engine.automations[0].root.id) == []  # type: ignore[union-attr]


def test_a_metric_child_of_an_any_compound_fires_the_parent_at_once() -> None:
    compound = {
        "type": "compound",
        "require": "any",
        "within": None,
        "triggers": [metric_trigger("lateness", 60, ">", range_=600)],
    }
    h = Harness(automation(compound))
    h.feed(lifecycle("a", 0, (0, "Late"), (100, "Running")))
    [parent] = h.tick(120)
    assert parent.firing.trigger_id == h.engine.automations[0].root.id  # type: ignore[union-attr]
    assert parent.firing.child_firings[0].state == "Triggered"
    h.feed(lifecycle("b", 800, (0, "Late"), (1, "Running")))
    assert h.ticks([810]) == []  # resolved below, nothing above


def test_metric_triggers_are_evaluated_in_load_order() -> None:
    h = Harness(
        automation(metric_trigger("duration", 1, ">"), name="first"),
        automation(metric_trigger("successes", 0.9, "<"), name="second"),
    )
    h.feed(lifecycle("a", 0, (0, "Pending"), (1, "Running"), (11, "Failed")))
    fired = h.tick(30)
    assert [f.automation.name for f in fired] == ["first", "second"]
    assert [f.firing.triggering_value for f in fired] == [10.0, 0.0]


def test_the_oldest_open_run_is_forgotten_past_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_OPEN_RUNS", 2)
    h = Harness(automation(metric_trigger("successes")))
    h.feed([(0, "a", "Pending"), (1, "b", "Pending"), (2, "c", "Pending")])
    h.feed([(10, "a", "Failed"), (11, "b", "Failed"), (12, "c", "Completed")])
    assert h.value(60) == 0.5  # a was forgotten, so its failure is not counted


def test_replay_prints_resolved_firings() -> None:
    data = automation(metric_trigger("successes", 0.9, "<", range_=60))
    events = [
        flow_event("a", "Pending", 0),
        flow_event("a", "Failed", 10),
        flow_event("b", "Pending", 100),
        flow_event("b", "Completed", 110),
    ]
    timed = [TimedEvent(i, e.occurred, e) for i, e in enumerate(events, start=1)]
    replay = ReplayInput([parse_automation(data)], timed, [at(30), at(120)])
    out = io.StringIO()
    assert run(replay, out) == 2
    lines = [orjson.loads(line) for line in out.getvalue().splitlines()]
    assert [(x["state"], x["fired_at"], x["bucket"]) for x in lines] == [
        ("Triggered", "2026-01-01T00:00:30Z", {}),
        ("Resolved", "2026-01-01T00:02:00Z", {}),
    ]
    assert all(x["triggering_event"] is None for x in lines)


def test_a_replayed_run_gives_the_same_ids() -> None:
    def once() -> list[str]:
        h = Harness(automation(metric_trigger("successes", 0.9, "<", range_=60)))
        h.feed(lifecycle("a", 0, (0, "Pending"), (10, "Failed")))
        h.feed(lifecycle("b", 100, (0, "Pending"), (10, "Completed")))
        return [f.firing.id for s in (30, 120) for f in h.tick(s)]

    assert once() == once()
