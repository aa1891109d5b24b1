"""Hypothesis: the incremental metric aggregates equal a brute-force recomputation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.metrics import (
    MAX_OPEN_RUNS,
    SLOT_HEADROOM,
    CompiledMetricTrigger,
    MetricTriggers,
    metric_value,
)
from service.core.records import EventRecord
from service.core.store import StateStore
from service.core.times import SECOND, from_us, to_us
from service.core.triggers import compile_automation
from service.models.automations import parse_automation
from service.models.events import parse_event
from service.state.memory import MemoryStateStore

T0 = to_us(datetime(2026, 1, 1, tzinfo=UTC))
RANGE = 60  # seconds: 60 sub-intervals of 1 s
STATES = [
    "Scheduled",
    "Late",
    "Pending",
    "Running",
    "AwaitingRetry",
    "Retrying",
    "Paused",
    "Cancelling",
    "Completed",
    "Failed",
    "Crashed",
    "Cancelled",
]
RUNS = ["a", "b", "c"]


@dataclass(frozen=True)
class Observed:
    run: str
    state: str
    at: int  # microseconds after T0


class CopyingStore(MemoryStateStore):
    """Fresh bytes on every read, so every read decodes (as from disk)."""

    def metric_state(self, trigger_id: str) -> bytes | None:
        data = super().metric_state(trigger_id)
        return None if data is None else bytes(bytearray(data))


def compiled(name: str, operator: str, threshold: float, firing_for: int) -> CompiledMetricTrigger:
    metric = {
        "name": name,
        "threshold": threshold,
        "operator": operator,
        "range": RANGE,
        "firing_for": firing_for,
    }
    data = {"name": "m", "trigger": {"type": "metric", "metric": metric}, "actions": []}
    root = compile_automation(parse_automation(data)).root
    assert isinstance(root, CompiledMetricTrigger)
    return root


def record(number: int, item: Observed) -> EventRecord:
    return EventRecord(
        parse_event(
            {
                "id": str(uuid.UUID(int=number + 1)),
                "occurred": from_us(T0 + item.at).isoformat(),
                "event": f"prefect.flow-run.{item.state}",
                "resource": {"prefect.resource.id": f"prefect.flow-run.{item.run}"},
            }
        )
    )


# -- the brute force: every event kept, outcomes found by looking backwards --------------------
OPENS = {"successes": {"Pending"}, "duration": {"Running"}, "lateness": {"Late"}}
CLOSES = {
    "successes": {"Completed", "Failed", "Crashed", "Cancelled"},
    "duration": {"Completed", "Failed", "Crashed"},
    "lateness": {"Running", "Crashed"},
}
RESETS = {
    "successes": CLOSES["successes"],
    "duration": {"Completed", "Failed", "Crashed", "Cancelled"},
    "lateness": {"Running", "Crashed", "Completed", "Failed", "Cancelled"},
}


def outcomes(metric: str, history: list[Observed]) -> list[tuple[int, int]]:
    """(time, amount) of every closed clock, from the whole arrival-ordered history."""
    out = []
    for i, close in enumerate(history):
        if close.state not in CLOSES[metric]:
            continue
        # The clock a close ends opened at the first opening state after the run's
        # previous reset (any state that ends or drops a clock).
        opened = None
        for j in range(i - 1, -1, -1):
            earlier = history[j]
            if earlier.run != close.run:
                continue
            if earlier.state in RESETS[metric]:
                break
            if earlier.state in OPENS[metric]:
                opened = earlier
        if opened is None:
            continue
        if metric == "successes":
            amount = 0 if close.state in ("Failed", "Crashed") else 1
        else:
            amount = max(0, close.at - opened.at)
        out.append((close.at, amount))
    return out


def brute_totals(metric: str, history: list[Observed], at: int) -> tuple[int, int]:
    """Outcomes whose 1 s sub-interval is `at`'s or one of the 60 before it (absolute µs)."""
    width = RANGE * SECOND // 60
    last = at // width
    inside = [
        amount for t, amount in outcomes(metric, history) if last - 60 <= (T0 + t) // width <= last
    ]
    return sum(inside), len(inside)


# -- the property ------------------------------------------------------------------------------


def moments(last_second: int) -> st.SearchStrategy[int]:
    """Times near sub-interval edges (whole seconds here), where off-by-ones show."""
    edges = st.sampled_from([0, 1, SECOND // 2, SECOND - 1])
    return st.builds(
        lambda second, part: second * SECOND + part, st.integers(0, last_second), edges
    )


times = moments(100)
# Arrival is `occurred` plus a jitter, so some events arrive out of order or after a
# tick that their `occurred` precedes.
jitter = st.integers(min_value=-5 * SECOND, max_value=5 * SECOND)
observations = st.lists(
    st.tuples(st.builds(Observed, st.sampled_from(RUNS), st.sampled_from(STATES), times), jitter),
    min_size=10,
    max_size=80,
)
ticks = st.lists(moments(200), min_size=5, max_size=40)


def interleave(events: list[tuple[Observed, int]], tick_times: list[int]) -> list[Observed | int]:
    """Events in arrival order, each tick after every event that arrived by then."""
    arrivals = sorted(((item.at + delay, n), item) for n, (item, delay) in enumerate(events))
    script: list[Observed | int] = []
    pending = iter(arrivals)
    upcoming = next(pending, None)
    for tick in sorted(tick_times):
        while upcoming is not None and upcoming[0][0] <= tick:
            script.append(upcoming[1])
            upcoming = next(pending, None)
        script.append(tick)
    while upcoming is not None:
        script.append(upcoming[1])
        upcoming = next(pending, None)
    return script


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(["successes", "duration", "lateness"]),
    operator=st.sampled_from(["<", "<=", ">", ">="]),
    threshold=st.sampled_from([0.0, 0.5, 1.0, 5.0, 20.0]),
    firing_for=st.sampled_from([0, 3, 10]),
    events=observations,
    tick_times=ticks,
)
def test_incremental_aggregates_match_a_brute_force_recomputation(
    name: str,
    operator: str,
    threshold: float,
    firing_for: int,
    events: list[tuple[Observed, int]],
    tick_times: list[int],
) -> None:
    metric = compiled(name, operator, threshold, firing_for)
    stores: list[StateStore] = [MemoryStateStore(), CopyingStore()]
    evaluators = [MetricTriggers([metric], store) for store in stores]
    history: list[Observed] = []
    states: list[list[str]] = [[] for _ in evaluators]
    for number, step in enumerate(interleave(events, tick_times)):
        if isinstance(step, Observed):
            history.append(step)
            event = record(number, step)
            for evaluator in evaluators:
                evaluator.observe(event)
            continue
        now = T0 + step  # evaluation times never go backwards
        expected = brute_totals(name, history, now)
        for evaluator, seen in zip(evaluators, states, strict=True):
            assert evaluator.totals(metric, now) == expected
            assert evaluator.value(metric, now) == metric_value(metric, *expected)
            for _, firing in evaluator.evaluate(now):
                assert firing.fired_at == now
                assert firing.triggering_value == metric_value(metric, *expected)
                seen.append(firing.state)
        for store in stores:
            data = store.metric_state(metric.id)
            if data is not None:
                assert len(data) < 64 * 1024  # small, whatever the stream
    # Both stores agree, and firings alternate Triggered, Resolved, Triggered, ...
    assert states[0] == states[1]
    assert all(state == ("Triggered", "Resolved")[i % 2] for i, state in enumerate(states[0]))


def test_the_caps_never_bite_in_the_property() -> None:
    # The brute force has no caps: runs stay few, and the outcomes' one-second
    # sub-intervals (0 to 100 s) fit under the sub-interval cap.
    assert len(RUNS) < MAX_OPEN_RUNS
    assert SLOT_HEADROOM * (60 + 1) > 100 + 1
