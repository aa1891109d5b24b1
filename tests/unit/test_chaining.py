"""State-change events built from firings, and automations chained through them (spec §11)."""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import (
    Driver,
    Fired,
    aid,
    automation,
    compound,
    eid,
    make_event,
    proactive,
    reactive,
    unordered,
)

ID = "prefect.resource.id"
TRIGGERED = "prefect.automation.triggered"
_REPLAY_NAMESPACE = uuid.UUID("6f3c1a52-3b7e-4a53-9d55-2f6f3b0c9e11")


def state_event_id(number: int) -> str:
    """The replay contract's id of the n-th state-change event of a run."""
    return str(uuid.uuid5(_REPLAY_NAMESPACE, f"state-change-event/{number}"))


def listener(name: str, source: str) -> Any:
    """An automation that fires on every firing of automation `source`."""
    trigger = reactive(name, expect=[TRIGGERED], match={ID: f"prefect.automation.{aid(source)}"})
    return automation(trigger, name=name)


def test_state_event_of_an_event_trigger_root_describes_the_firing() -> None:
    trigger = reactive("t", expect=["X"], for_each=[ID])
    d = Driver(automation(trigger, name="watch"))
    d.send(make_event("x", "X", 10, received=12.5))
    state = d.raw[0].state_event.to_json()
    assert state["event"] == TRIGGERED
    assert state["occurred"].startswith("2026-01-01T00:00:12.5")
    assert state["resource"] == {
        ID: f"prefect.automation.{aid('watch')}",
        "prefect.resource.name": "watch",
        "prefect.posture": "Reactive",
    }
    assert state["related"] == [
        {ID: f"prefect.event.{eid('x')}", "prefect.resource.role": "triggering-event"}
    ]
    assert state["payload"]["triggering_labels"] == {ID: "prefect.flow-run.r1"}
    assert state["payload"]["triggering_event"]["id"] == eid("x")
    assert state["payload"]["triggering_event"]["event"] == "X"


def test_state_event_without_a_triggering_event_has_no_related_resource() -> None:
    d = Driver(automation(proactive("t", expect=["hb"], within=10), name="watch"))
    assert d.tick(0, 10) == [Fired("t", 10, None)]
    state = d.raw[0].state_event.to_json()
    assert state["resource"]["prefect.posture"] == "Proactive"
    assert state["related"] == []
    assert state["payload"] == {"triggering_labels": {}, "triggering_event": None}


def test_state_event_of_a_composite_root_has_no_posture() -> None:
    root = compound("p", [reactive("a", expect=["A"])], "any", None)
    d = Driver(automation(root, name="combo"))
    d.send(make_event("a1", "A", 0))
    assert d.raw[0].state_event.resource == {
        ID: f"prefect.automation.{aid('combo')}",
        "prefect.resource.name": "combo",
    }


def test_state_events_are_numbered_by_firing_order_with_or_without_feedback() -> None:
    d = Driver(automation(reactive("t", expect=["X"])))
    d.send(make_event("x1", "X", 0))
    d.send(make_event("x2", "X", 1))
    assert [f.state_event.id for f in d.raw] == [state_event_id(1), state_event_id(2)]


def test_chained_automations_fire_in_a_cascade_at_the_same_processing_time() -> None:
    first = automation(reactive("first", expect=["X"]), name="first")
    d = Driver(
        first, listener("second", "first"), listener("third", "second"), feed_state_events=True
    )
    out = d.send(make_event("x", "X", 10, received=12))
    assert unordered(out) == unordered(
        [
            Fired("first", 12, "x"),
            Fired("second", 12, state_event_id(1)),
            Fired("third", 12, state_event_id(2)),
        ]
    )


def test_without_feedback_nothing_chains() -> None:
    first = automation(reactive("first", expect=["X"]), name="first")
    d = Driver(first, listener("second", "first"))
    assert d.send(make_event("x", "X", 0)) == [Fired("first", 0, "x")]


def test_tick_firings_chain_at_the_tick() -> None:
    watch = automation(proactive("watch", expect=["hb"], within=10), name="watch")
    d = Driver(watch, listener("second", "watch"), feed_state_events=True)
    assert unordered(d.tick(0, 10)) == unordered(
        [Fired("watch", 10, None), Fired("second", 10, state_event_id(1))]
    )


def test_fed_back_state_events_move_the_events_clock() -> None:
    def run(feed: bool) -> list[Fired]:
        stuck = proactive("s", after=["R"], expect=["C"], for_each=[ID], within=60)
        watch = proactive("w", expect=["hb"], within=10)
        d = Driver(
            automation(stuck, name="stuck"),
            automation(watch, name="watch"),
            feed_state_events=feed,
        )
        d.send(make_event("run", "R", 0, received=20))  # offset -20
        d.tick(20, 30, 60, 70, 80)  # "watch" fires at 30: its state event occurred at 30
        return [f for f in d.fired if f.trigger == "s"]

    run_key = {ID: "prefect.flow-run.r1"}
    assert run(feed=True) == [Fired("s", 60, "run", run_key)]
    assert run(feed=False) == [Fired("s", 80, "run", run_key)]
