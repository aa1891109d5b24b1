"""The breach and recovery phases of a metric trigger, on hand-written value timelines."""

from __future__ import annotations

import pytest

from service.core.firings import firing_id
from service.core.metrics import (
    FIRING,
    OK,
    CompiledMetricTrigger,
    MetricState,
    evaluate_state,
)
from service.core.times import SECOND
from service.core.triggers import compile_automation
from service.models.automations import parse_automation

Timeline = list[tuple[int, float | None]]  # (evaluation second, value or no data)


def trigger(
    threshold: float = 100, operator: str = ">", firing_for: int = 120
) -> CompiledMetricTrigger:
    metric = {
        "name": "duration",
        "threshold": threshold,
        "operator": operator,
        "range": 600,
        "firing_for": firing_for,
    }
    data = {"name": "m", "trigger": {"type": "metric", "metric": metric}, "actions": []}
    root = compile_automation(parse_automation(data)).root
    assert isinstance(root, CompiledMetricTrigger)
    return root


def run(
    metric: CompiledMetricTrigger, timeline: Timeline
) -> tuple[list[tuple[str, int, float | None]], MetricState]:
    """Evaluate at each time with the window holding exactly one outcome of that value."""
    state = MetricState(metric.fingerprint)
    out: list[tuple[str, int, float | None]] = []
    for second, value in timeline:
        at = second * SECOND
        state.slots = {} if value is None else {at // metric.width: [round(value * SECOND), 1]}
        firings, _ = evaluate_state(state, metric, at)
        out += [(f.state, f.fired_at // SECOND, f.triggering_value) for f in firings]
    return out, state


def test_breach_fires_after_firing_for_and_resolves_after_firing_for() -> None:
    timeline: Timeline = [
        (0, 150), (60, 150), (120, 150), (180, 150),
        (240, 50), (300, 50), (360, 50), (420, 50),
    ]  # fmt: skip
    out, state = run(trigger(), timeline)
    assert out == [("Triggered", 120, 150.0), ("Resolved", 360, 50.0)]
    assert state.phase == OK


def test_the_hold_is_measured_from_the_first_breaching_evaluation_inclusive() -> None:
    out, _ = run(trigger(), [(0, 150), (119, 150), (120, 150)])
    assert out == [("Triggered", 120, 150.0)]


def test_flapping_around_the_threshold_never_fires_with_a_hold() -> None:
    flapping: Timeline = [(60 * i, 150 if i % 2 == 0 else 50) for i in range(20)]
    out, _ = run(trigger(), flapping)
    assert out == []


def test_without_a_hold_every_flap_fires_and_resolves() -> None:
    flapping: Timeline = [(0, 150), (60, 50), (120, 150), (180, 50)]
    out, _ = run(trigger(firing_for=0), flapping)
    assert out == [
        ("Triggered", 0, 150.0),
        ("Resolved", 60, 50.0),
        ("Triggered", 120, 150.0),
        ("Resolved", 180, 50.0),
    ]


def test_a_flapping_recovery_does_not_resolve_until_it_holds() -> None:
    timeline: Timeline = [
        (0, 150), (120, 150),  # Triggered at 120
        (180, 50), (240, 150), (300, 50), (360, 150),  # recoveries cancelled
        (420, 50), (480, 50), (540, 50),  # recovery from 420, done at 540
    ]  # fmt: skip
    out, _ = run(trigger(), timeline)
    assert out == [("Triggered", 120, 150.0), ("Resolved", 540, 50.0)]


def test_one_triggered_per_breach_however_long_it_lasts() -> None:
    out, state = run(trigger(firing_for=0), [(60 * i, 150) for i in range(30)])
    assert out == [("Triggered", 0, 150.0)]
    assert state.phase == FIRING


def test_no_data_neither_cancels_nor_completes_a_breach() -> None:
    # 120 s have passed at t=120, but without data nothing fires there.
    out, _ = run(trigger(), [(0, 150), (60, None), (120, None), (130, 150)])
    assert out == [("Triggered", 130, 150.0)]


def test_a_value_inside_bounds_cancels_a_pending_breach() -> None:
    timeline: Timeline = [(0, 150), (60, None), (90, 50), (150, 150), (240, 150), (270, 150)]
    out, _ = run(trigger(), timeline)
    assert out == [("Triggered", 270, 150.0)]


def test_no_data_never_resolves_a_firing_breach() -> None:
    timeline: Timeline = [(0, 150), *[(60 * i, None) for i in range(1, 20)]]
    out, state = run(trigger(firing_for=0), timeline)
    assert out == [("Triggered", 0, 150.0)]
    assert state.phase == FIRING


def test_no_data_does_not_interrupt_a_recovery() -> None:
    out, _ = run(trigger(), [(0, 150), (120, 150), (180, 50), (240, None), (300, 50)])
    assert out == [("Triggered", 120, 150.0), ("Resolved", 300, 50.0)]


@pytest.mark.parametrize(
    ("operator", "threshold", "breaches"),
    [
        ("<", 100, False),
        ("<", 101, True),
        ("<=", 100, True),
        ("<=", 99, False),
        (">", 100, False),
        (">", 99, True),
        (">=", 100, True),
        (">=", 101, False),
    ],
)
def test_operators_compare_the_value_with_the_threshold(
    operator: str, threshold: float, breaches: bool
) -> None:
    out, _ = run(trigger(threshold, operator, firing_for=0), [(0, 100)])
    assert out == ([("Triggered", 0, 100.0)] if breaches else [])


def test_ids_are_derived_from_the_breach_start_and_the_state() -> None:
    metric = trigger()
    state = MetricState(metric.fingerprint)
    firings = []
    for second, value in [(0, 150), (120, 150), (240, 50), (360, 50)]:
        at = second * SECOND
        state.slots = {at // metric.width: [value * SECOND, 1]}
        firings += evaluate_state(state, metric, at)[0]
    triggered, resolved = firings
    start = 0
    assert triggered.id == firing_id(metric.id, (), (start, start), None, "Triggered")
    assert resolved.id == firing_id(metric.id, (), (start, start), None, "Resolved")
    assert triggered.window == (0, 120 * SECOND)
    assert resolved.window == (0, 360 * SECOND)
    for firing in firings:
        assert firing.labels == {}
        assert firing.triggering_event is None
        assert firing.trigger_id == metric.id
        assert firing.automation_id == metric.automation.id
        assert firing.child_firings == ()


def test_the_next_breach_gets_a_new_id() -> None:
    metric = trigger(firing_for=0)
    state = MetricState(metric.fingerprint)
    ids = []
    for second, value in [(0, 150), (60, 50), (120, 150)]:
        at = second * SECOND
        state.slots = {at // metric.width: [value * SECOND, 1]}
        ids += [f.id for f in evaluate_state(state, metric, at)[0]]
    assert len(set(ids)) == 3


def test_evaluate_reports_whether_anything_changed() -> None:
    metric = trigger()
    state = MetricState(metric.fingerprint)
    state.slots = {0: [150 * SECOND, 1]}
    assert evaluate_state(state, metric, 0)[1] is True  # a breach starts
    assert evaluate_state(state, metric, 60 * SECOND)[1] is False  # still pending
    state.slots = {}
    assert evaluate_state(state, metric, 180 * SECOND)[1] is False  # no data
