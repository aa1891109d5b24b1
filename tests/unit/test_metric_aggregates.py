"""Metric state kept small and exact: sub-interval sums, caps, pruning and its encoding."""

from __future__ import annotations

from typing import Any

import pytest

from service.core import metrics
from service.core.metrics import (
    SLOT_HEADROOM,
    CompiledMetricTrigger,
    MetricState,
    MetricTriggers,
    evaluate_state,
    observe_state,
    window_totals,
)
from service.core.times import SECOND
from service.core.triggers import compile_automation
from service.models.automations import parse_automation
from service.state.memory import MemoryStateStore


def trigger(name: str = "duration", range_: int = 600) -> CompiledMetricTrigger:
    metric = {"name": name, "threshold": 1, "operator": ">", "range": range_, "firing_for": 0}
    data = {"name": "m", "trigger": {"type": "metric", "metric": metric}, "actions": []}
    root = compile_automation(parse_automation(data)).root
    assert isinstance(root, CompiledMetricTrigger)
    return root


def s(seconds: float) -> int:
    return round(seconds * SECOND)


def test_outcomes_sum_into_their_sub_interval() -> None:
    metric = trigger()
    state = MetricState(metric.fingerprint)
    for run, start, end in [("a", 0, 12), ("b", 3, 15), ("c", 0, 25)]:
        observe_state(state, metric, "Running", run, s(start))
        observe_state(state, metric, "Completed", run, s(end))
    # 10 s sub-intervals: 12 s and 12 s land in [10, 20), 25 s in [20, 30).
    assert state.slots == {1: [s(24), 2], 2: [s(25), 1]}
    assert state.runs == {}
    assert window_totals(state, metric, s(30)) == (s(49), 3)


def test_only_open_clocks_are_remembered() -> None:
    metric = trigger("successes")
    state = MetricState(metric.fingerprint)
    assert observe_state(state, metric, "Running", "a", 0) is False
    assert observe_state(state, metric, "Completed", "a", 0) is False
    assert observe_state(state, metric, "Pending", "a", s(1)) is True
    assert observe_state(state, metric, "Pending", "a", s(2)) is False  # first one holds
    assert state.runs == {"a": s(1)}
    assert observe_state(state, metric, "Failed", "a", s(3)) is True
    assert state.runs == {}
    assert state.slots == {0: [0, 1]}


def test_open_runs_are_capped_oldest_first(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "MAX_OPEN_RUNS", 3)
    metric = trigger()
    state = MetricState(metric.fingerprint)
    for i in range(5):
        observe_state(state, metric, "Running", f"r{i}", s(i))
    assert list(state.runs) == ["r2", "r3", "r4"]


def test_sub_intervals_are_capped_oldest_first() -> None:
    metric = trigger()  # 60 sub-intervals of 10 s
    state = MetricState(metric.fingerprint)
    cap = SLOT_HEADROOM * (metric.slots + 1)
    for i in range(cap + 5):
        observe_state(state, metric, "Running", f"r{i}", s(10 * i))
        observe_state(state, metric, "Completed", f"r{i}", s(10 * i + 1))
    assert len(state.slots) == cap
    assert min(state.slots) == 5


def test_evaluation_prunes_sub_intervals_that_left_the_window() -> None:
    metric = trigger()
    state = MetricState(metric.fingerprint)
    for i in range(10):
        observe_state(state, metric, "Running", f"r{i}", s(100 * i))
        observe_state(state, metric, "Completed", f"r{i}", s(100 * i + 1))
    _, changed = evaluate_state(state, metric, s(1000))
    assert changed
    # The window at 1000 s starts at 400 s: outcomes at 401 s onwards stay.
    assert sorted(state.slots) == [40, 50, 60, 70, 80, 90]


def test_encoding_round_trips() -> None:
    metric = trigger()
    state = MetricState(metric.fingerprint)
    observe_state(state, metric, "Running", "a", s(1))
    observe_state(state, metric, "Running", "b", s(2))
    observe_state(state, metric, "Completed", "b", s(9))
    state.phase, state.start, state.since = metrics.RESOLVING, s(3), s(4)
    again = MetricState.decode(state.encode(), metric.fingerprint)
    assert again == state
    assert list(again.runs) == ["a"]  # opening order survives


def test_a_changed_metric_or_range_drops_the_aggregates_but_keeps_the_phase() -> None:
    old = trigger("duration", 600)
    state = MetricState(old.fingerprint)
    observe_state(state, old, "Running", "a", 0)
    observe_state(state, old, "Running", "b", 0)
    observe_state(state, old, "Completed", "b", s(5))
    state.phase, state.start = metrics.FIRING, s(5)
    for new in (trigger("duration", 1200), trigger("lateness", 600)):
        again = MetricState.decode(state.encode(), new.fingerprint)
        assert (again.runs, again.slots) == ({}, {})
        assert (again.phase, again.start) == (metrics.FIRING, s(5))


class CopyingStore(MemoryStateStore):
    """Hands out fresh bytes each time, as a disk store does: the cache must not hide it."""

    def metric_state(self, trigger_id: str) -> bytes | None:
        data = super().metric_state(trigger_id)
        return None if data is None else bytes(bytearray(data))


@pytest.mark.parametrize("store_type", [MemoryStateStore, CopyingStore])
def test_state_written_by_another_evaluator_is_read_back(store_type: Any) -> None:
    metric = trigger("successes")
    store = store_type()
    first = MetricTriggers([metric], store)
    second = MetricTriggers([metric], store)
    state = MetricState(metric.fingerprint)
    observe_state(state, metric, "Pending", "a", 0)
    observe_state(state, metric, "Completed", "a", s(1))
    store.put_metric_state(metric.id, state.encode())
    assert first.value(metric, s(10)) == 1.0
    # Another writer replaces the bytes: the first evaluator must not trust its cache.
    observe_state(state, metric, "Pending", "b", 0)
    observe_state(state, metric, "Crashed", "b", s(2))
    store.put_metric_state(metric.id, state.encode())
    assert first.value(metric, s(10)) == 0.5
    assert second.value(metric, s(10)) == 0.5
    store.put_metric_state(metric.id, None)
    assert first.value(metric, s(10)) is None


def test_drop_trigger_forgets_the_metric_state() -> None:
    store = MemoryStateStore()
    store.put_metric_state("t", b"{}")
    store.drop_trigger("t")
    assert store.metric_state("t") is None
