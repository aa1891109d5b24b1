"""Compound and sequence triggers over their children's firings (spec §10)."""

from __future__ import annotations

from typing import Any

from .conftest import (
    Driver,
    Fired,
    automation,
    compound,
    make_event,
    proactive,
    reactive,
    sequence,
    unordered,
)

RUN1 = {"prefect.resource.id": "prefect.flow-run.r1"}
RUN2 = {"prefect.resource.id": "prefect.flow-run.r2"}


def child(name: str, **fields: Any) -> dict[str, Any]:
    """A reactive child named `name` that fires on every event named `name.upper()`."""
    return reactive(name, expect=[name.upper()], **fields)


def ev(name: str, moment: float, **kwargs: Any) -> Any:
    """Event `name` (e.g. "a2") of kind name[0].upper() ("A") at `moment`."""
    return make_event(name, name[0].upper(), moment, **kwargs)


def parent(moment: float, event: str | None, *children: Fired) -> Fired:
    """A firing of the root composite "p": always with bucket {} (spec §10.5)."""
    return Fired("p", moment, event, {}, children)


def _run(root: dict[str, Any], *items: Any) -> Driver:
    d = Driver(automation(root))
    d.run(*items)
    return d


# -- §10.2 one firing needed -----------------------------------------------------------------


def test_any_fires_at_once_on_each_child_firing_whatever_within_says() -> None:
    d = _run(compound("p", [child("a"), child("b")], "any", 60), ev("a1", 0), ev("b1", 1000))
    assert d.fired == [
        parent(0, "a1", Fired("a", 0, "a1")),
        parent(1000, "b1", Fired("b", 1000, "b1")),
    ]


def test_require_one_fires_at_once_like_any() -> None:
    d = _run(compound("p", [child("a"), child("b")], 1, 60), ev("b1", 0), ev("b2", 500))
    assert d.fired == [
        parent(0, "b1", Fired("b", 0, "b1")),
        parent(500, "b2", Fired("b", 500, "b2")),
    ]


def test_single_child_sequence_fires_at_once() -> None:
    d = _run(sequence("p", [child("a")], 60), ev("a1", 0), ev("a2", 100))
    assert d.fired == [
        parent(0, "a1", Fired("a", 0, "a1")),
        parent(100, "a2", Fired("a", 100, "a2")),
    ]


def test_one_event_firing_two_children_of_any_fires_the_parent_twice() -> None:
    twins = [reactive("a", expect=["X"]), reactive("b", expect=["X"])]
    d = _run(compound("p", twins, "any", None), make_event("x", "X", 0))
    assert unordered(d.fired) == unordered(
        [parent(0, "x", Fired("a", 0, "x")), parent(0, "x", Fired("b", 0, "x"))]
    )


# -- §10.3 / §10.4 compound -------------------------------------------------------------------


def _all(within: float | None, *children: dict[str, Any]) -> dict[str, Any]:
    return compound("p", list(children) or [child("a"), child("b")], "all", within)


def test_all_fires_when_every_child_fired_within_the_window_end_inclusive() -> None:
    d = _run(_all(60), ev("a1", 0), ev("b1", 60))
    assert d.fired == [parent(60, "b1", Fired("a", 0, "a1"), Fired("b", 60, "b1"))]


def test_all_drops_child_firings_strictly_older_than_within() -> None:
    assert _run(_all(60), ev("a1", 0), ev("b1", 60.000001)).fired == []


def test_within_is_measured_on_firing_times_not_occurred() -> None:
    late_start = _run(_all(60), ev("a1", 0, received=100), ev("b1", 150))
    assert late_start.fired == [parent(150, "b1", Fired("a", 100, "a1"), Fired("b", 150, "b1"))]
    late_end = _run(_all(60), ev("a1", 0), ev("b1", 10, received=100))
    assert late_end.fired == []


def test_children_are_listed_in_declared_order_not_firing_order() -> None:
    d = _run(_all(None), ev("b1", 0), ev("a1", 10))
    assert d.fired == [parent(10, "a1", Fired("a", 10, "a1"), Fired("b", 0, "b1"))]


def test_parent_firing_clears_every_stored_child_firing() -> None:
    d = _run(_all(None), ev("a1", 0), ev("b1", 10), ev("b2", 20))
    assert len(d.fired) == 1
    d.send(ev("a2", 30))
    assert d.fired[1:] == [parent(30, "a2", Fired("a", 30, "a2"), Fired("b", 20, "b2"))]


def test_latest_firing_of_a_child_replaces_the_earlier_one() -> None:
    d = _run(_all(60), ev("a1", 0), ev("a2", 50), ev("b1", 100))
    assert d.fired == [parent(100, "b1", Fired("a", 50, "a2"), Fired("b", 100, "b1"))]


def test_require_counts_children_not_firings() -> None:
    root = compound("p", [child("a"), child("b"), child("c")], 2, None)
    d = _run(root, ev("a1", 0), ev("a2", 10))
    assert d.fired == []
    d.send(ev("b1", 20))
    assert d.fired == [parent(20, "b1", Fired("a", 10, "a2"), Fired("b", 20, "b1"))]


def test_within_cut_off_removes_old_firings_of_every_child() -> None:
    root = compound("p", [child("a"), child("b"), child("c")], 2, 60)
    d = _run(root, ev("a1", 0), ev("b1", 100))
    assert d.fired == []
    d.send(ev("c1", 110))
    assert d.fired == [parent(110, "c1", Fired("b", 100, "b1"), Fired("c", 110, "c1"))]


def test_negative_within_means_a_parent_needing_two_firings_never_fires() -> None:
    d = _run(_all(-10), ev("a1", 0), ev("b1", 0), ev("a2", 5), ev("b2", 5), ev("a3", 6))
    assert d.fired == []


def test_within_zero_keeps_only_firings_of_the_same_instant() -> None:
    same = _run(_all(0), ev("a1", 0), ev("b1", 0))
    assert same.fired == [parent(0, "b1", Fired("a", 0, "a1"), Fired("b", 0, "b1"))]
    assert _run(_all(0), ev("a1", 0), ev("b1", 0.000001)).fired == []


def test_within_null_never_expires() -> None:
    d = _run(_all(None), ev("a1", 0), ev("b1", 100_000))
    assert d.fired == [parent(100_000, "b1", Fired("a", 0, "a1"), Fired("b", 100_000, "b1"))]


def test_one_event_firing_both_children_of_all_fires_the_parent_once() -> None:
    twins = [reactive("a", expect=["X"]), reactive("b", expect=["X"])]
    d = _run(compound("p", twins, "all", 60), make_event("x", "X", 0))
    assert d.fired == [parent(0, "x", Fired("a", 0, "x"), Fired("b", 0, "x"))]


# -- §10.3 sequence ------------------------------------------------------------------------------


def test_sequence_fires_when_its_children_fire_in_declared_order() -> None:
    root = sequence("p", [child("a"), child("b"), child("c")], None)
    d = _run(root, ev("a1", 0), ev("b1", 10), ev("c1", 20))
    assert d.fired == [
        parent(20, "c1", Fired("a", 0, "a1"), Fired("b", 10, "b1"), Fired("c", 20, "c1"))
    ]


def test_sequence_out_of_order_waits_for_a_later_firing_of_the_last_child() -> None:
    root = sequence("p", [child("a"), child("b")], None)
    d = _run(root, ev("b1", 0), ev("a1", 10))
    assert d.fired == []
    d.send(ev("b2", 20))
    assert d.fired == [parent(20, "b2", Fired("a", 10, "a1"), Fired("b", 20, "b2"))]


def test_child_firing_again_moves_to_the_end_of_the_sequence() -> None:
    root = sequence("p", [child("a"), child("b"), child("c")], None)
    d = _run(root, ev("a1", 0), ev("b1", 10), ev("a2", 15), ev("c1", 20), ev("b2", 30))
    assert d.fired == []
    d.send(ev("c2", 40))
    assert d.fired == [
        parent(40, "c2", Fired("a", 15, "a2"), Fired("b", 30, "b2"), Fired("c", 40, "c2"))
    ]


def test_sequence_within_drops_a_first_step_that_is_too_old() -> None:
    root = sequence("p", [child("a"), child("b")], 60)
    d = _run(root, ev("a1", 0), ev("b1", 61))
    assert d.fired == []
    d.run(ev("a2", 100), ev("b2", 150))
    assert d.fired == [parent(150, "b2", Fired("a", 100, "a2"), Fired("b", 150, "b2"))]


# -- §10.1 / §10.5 nesting, proactive children, keys ----------------------------------------------


def test_three_levels_of_nesting_pass_firings_up() -> None:
    inner = sequence("y", [child("b"), child("c")], None)
    middle = compound("x", [child("a"), inner], "all", None)
    root = sequence("s", [middle, child("d")], None)
    d = _run(root, ev("a1", 0), ev("b1", 10), ev("c1", 20))
    assert d.fired == []
    d.send(ev("d1", 30))
    y = Fired("y", 20, "c1", {}, (Fired("b", 10, "b1"), Fired("c", 20, "c1")))
    x = Fired("x", 20, "c1", {}, (Fired("a", 0, "a1"), y))
    assert d.fired == [Fired("s", 30, "d1", {}, (x, Fired("d", 30, "d1")))]


def test_proactive_child_fires_the_parent_at_the_tick_that_detects_absence() -> None:
    stuck = proactive(
        "stuck",
        after=["prefect.flow-run.Running"],
        expect=["prefect.flow-run.Completed"],
        for_each=["prefect.resource.id"],
        within=60,
    )
    d = _run(
        _all(None, child("a"), stuck), ev("a1", 0), make_event("run", "prefect.flow-run.Running", 0)
    )
    assert d.ticks(5, 55, 5) == []
    assert d.tick(60) == [parent(60, "run", Fired("a", 0, "a1"), Fired("stuck", 60, "run", RUN1))]


def test_child_firings_of_different_keys_combine() -> None:
    keyed = [
        child("a", for_each=["prefect.resource.id"]),
        child("b", for_each=["prefect.resource.id"]),
    ]
    d = _run(
        _all(None, *keyed),
        ev("a1", 0, resource="prefect.flow-run.r1"),
        ev("b1", 10, resource="prefect.flow-run.r2"),
    )
    assert d.fired == [parent(10, "b1", Fired("a", 0, "a1", RUN1), Fired("b", 10, "b1", RUN2))]


def test_children_keep_their_own_windows_after_the_parent_fires() -> None:
    # a needs 2 in 60 s: it fires at 10 and its next window is [60, 120), so a3 is dropped.
    root = _all(None, child("a", threshold=2, within=60), child("b"))
    d = _run(root, ev("a1", 0), ev("a2", 10), ev("b1", 20))
    assert d.fired == [parent(20, "b1", Fired("a", 10, "a2"), Fired("b", 20, "b1"))]
    d.run(ev("a3", 30), ev("b2", 40), ev("a4", 70))
    assert d.fired[1:] == []
    d.send(ev("a5", 80))
    assert d.fired[1:] == [parent(80, "a5", Fired("a", 80, "a5"), Fired("b", 40, "b2"))]
