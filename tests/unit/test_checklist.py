"""One test per item of the spec's §14 checklist of surprising behaviour, in order."""

from __future__ import annotations

import uuid
from typing import Any

from .conftest import (
    Driver,
    Fired,
    aid,
    automation,
    fires_on,
    make_event,
    proactive,
    reactive,
    related_resource,
    sequence,
    unordered,
)

F = "prefect.flow-run.Failed"
P = "prefect.flow-run.Pending"
C = "prefect.flow-run.Completed"
R = "prefect.flow-run.Running"
ID = "prefect.resource.id"


def _run_key(run: str = "r1") -> dict[str, str]:
    return {ID: f"prefect.flow-run.{run}"}


def test_quirk_01_first_bucket_of_a_new_key_starts_fifteen_minutes_before_its_first_event() -> None:
    d = Driver(automation(reactive("t", expect=[F], for_each=[ID], threshold=2, within=60)))
    d.send(make_event("r1_first", F, 2000, resource="prefect.flow-run.r1"))
    assert d.send(make_event("r1_late", F, 1100, resource="prefect.flow-run.r1")) == [
        Fired("t", 2000, "r1_late", _run_key("r1"))
    ]
    d.send(make_event("r2_first", F, 2000, resource="prefect.flow-run.r2"))
    assert d.send(make_event("r2_late", F, 1099.999, resource="prefect.flow-run.r2")) == []


def test_quirk_02_windows_tumble_from_the_first_event_after_expiry_with_an_exclusive_end() -> None:
    d = Driver(automation(reactive("t", expect=[F], threshold=2, within=60)))
    out = [f for m in (0, 60, 119.999) for f in d.send(make_event(f"f{m:g}", F, m))]
    assert out == [Fired("t", 119.999, "f119.999")]


def test_quirk_03_after_a_firing_the_next_window_starts_where_the_fired_one_ended() -> None:
    d = Driver(automation(reactive("t", expect=[F], threshold=2, within=100)))
    out = [f for m in (0, 10, 50, 90, 100, 150) for f in d.send(make_event(f"f{m}", F, m))]
    assert out == [Fired("t", 10, "f10"), Fired("t", 150, "f150")]


def test_quirk_04_within_zero_is_an_unbounded_counter_and_after_within_zero_waits() -> None:
    counter = Driver(automation(reactive("t", expect=[F], threshold=3, within=0)))
    out = [f for m in (0, 500, 1000) for f in counter.send(make_event(f"f{m}", F, m))]
    assert out == [Fired("t", 1000, "f1000")]

    def chain(threshold: int) -> Driver:
        return Driver(
            automation(reactive("t", after=[P], expect=[C], threshold=threshold, within=0))
        )

    one = chain(1)
    one.send(make_event("p", P, 0))
    assert one.send(make_event("c", C, 3000)) == [Fired("t", 3000, "c")]
    two = chain(2)
    two.send(make_event("p", P, 0))
    assert [*two.send(make_event("c1", C, 1)), *two.send(make_event("c2", C, 2))] == []


def test_quirk_05_label_patterns_are_globs_with_negations_ored_and_missing_never_matching() -> None:
    trigger = reactive(
        "t", expect=[F], match={ID: "prefect.flow-run.*", "env": ["!prod", "!staging"]}
    )

    def run(resource_id: str, **labels: str) -> Any:
        return make_event(f"{resource_id}{labels}", F, 0, resource={ID: resource_id, **labels})

    assert fires_on(
        trigger,
        run("prefect.flow-run.1", env="prod"),
        run("prefect.flow-run.1", env="dev"),
        run("prefect.flow-run.1"),
        run("prefect.task-run.1", env="dev"),
    ) == [True, True, False, False]


def test_quirk_06_event_name_star_needs_a_character_and_question_mark_is_literal() -> None:
    trigger = reactive("t", expect=["prefect.*.Failed", "prefect.flow-run.Crashe?"])
    names = ["prefect.flow-run.Failed", "prefect..Failed", "prefect.flow-run.Crashed"]
    events = [make_event(f"n{i}", name, 0) for i, name in enumerate(names)]
    assert fires_on(trigger, *events) == [True, False, False]


def test_quirk_07_match_related_object_list_and_empty_list() -> None:
    event = make_event(
        "e",
        F,
        0,
        related=[
            related_resource("deployment", "prefect.deployment.d2"),
            related_resource("tag", "prefect.deployment.d1"),
        ],
    )
    wanted = {"prefect.resource.role": "deployment", ID: "prefect.deployment.d1"}
    as_object = reactive("t", expect=[F], match_related=wanted)
    as_list = reactive(
        "t",
        expect=[F],
        match_related=[{"prefect.resource.role": "deployment"}, {ID: "prefect.deployment.d1"}],
    )
    empty_list = reactive("t", expect=[F], match_related=[])
    assert [fires_on(t, event)[0] for t in (as_object, as_list, empty_list)] == [
        False,
        True,
        True,
    ]


def test_quirk_08_related_selector_takes_the_first_in_role_missing_is_empty_keys_sorted() -> None:
    selector = "related:deployment:prefect.resource.id"
    d = Driver(automation(reactive("t", expect=[F], for_each=[selector, "env"])))
    related = [
        related_resource("deployment", "prefect.deployment.d1"),
        related_resource("deployment", "prefect.deployment.d2"),
    ]
    (fired,) = d.send(make_event("e", F, 0, related=related))
    assert fired.bucket == {"env": "", selector: "prefect.deployment.d1"}
    assert list(fired.bucket) == ["env", selector]


def test_quirk_09_same_event_in_after_and_expect_counts_from_minus_one() -> None:
    def heartbeat(posture: str, within: float) -> Driver:
        fields = {"after": ["hb"], "expect": ["hb"], "within": within}
        maker = reactive if posture == "Reactive" else proactive
        return Driver(automation(maker("t", **fields)))

    reacting = heartbeat("Reactive", 60)
    assert reacting.send(make_event("h0", "hb", 0)) == []
    assert reacting.send(make_event("h10", "hb", 10)) == [Fired("t", 10, "h10")]

    immediate = heartbeat("Reactive", 0)
    assert [f for m in range(5) for f in immediate.send(make_event(f"h{m}", "hb", m))] == []

    watching = heartbeat("Proactive", 90)
    watching.send(make_event("h0", "hb", 0))
    watching.send(make_event("h50", "hb", 50))  # restarts the window at [50, 140)
    assert watching.ticks(55, 135, 5) == []
    assert watching.tick(140) == [Fired("t", 140, "h50")]


def test_quirk_10_a_second_after_event_never_re_anchors_the_window() -> None:
    def pending_then_completed() -> Driver:
        return Driver(automation(reactive("t", after=[P], expect=[C], within=60)))

    inside = pending_then_completed()
    inside.run(make_event("p0", P, 0), make_event("p30", P, 30))
    assert inside.send(make_event("c80", C, 80)) == []
    stale = pending_then_completed()
    stale.run(make_event("p0", P, 0), make_event("p100", P, 100))
    assert stale.send(make_event("c130", C, 130)) == []


def test_quirk_11_proactive_after_without_for_each_fires_without_any_after_event() -> None:
    d = Driver(automation(proactive("t", after=[P], expect=[C], within=10)))
    assert d.tick(0, 5, 10) == [Fired("t", 10, None)]


def test_quirk_12_per_key_proactive_threshold_one_never_fires_threshold_two_forever() -> None:
    def watch(name: str, threshold: int) -> Any:
        trigger = proactive(name, expect=["hb"], for_each=[ID], threshold=threshold, within=10)
        return automation(trigger, name=name)

    d = Driver(watch("one", 1), watch("two", 2))
    d.send(make_event("h0", "hb", 0))
    assert d.ticks(5, 40, 5) == [
        Fired("two", 10, "h0", _run_key()),
        Fired("two", 20, None, _run_key()),
        Fired("two", 30, None, _run_key()),
        Fired("two", 40, None, _run_key()),
    ]


def test_quirk_13_proactive_fires_during_event_evaluation_on_a_late_expected_event() -> None:
    d = Driver(automation(proactive("t", after=[P], expect=[C], for_each=[ID], within=10)))
    d.send(make_event("p", P, 0))
    assert d.send(make_event("c", C, 15)) == [Fired("t", 15, "c", _run_key())]
    assert d.ticks(20, 60, 5) == []


def test_quirk_14_proactive_as_of_is_shifted_by_the_events_clock() -> None:
    d = Driver(automation(proactive("t", after=[P], expect=[C], for_each=[ID], within=10)))
    d.send(make_event("p", P, 0, received=30))  # seen 30 s late: offset -30
    assert d.tick(30, 35, 39.999999) == []
    assert d.tick(40) == [Fired("t", 40, "p", _run_key())]


def test_quirk_15_held_expect_events_count_when_a_later_bucket_covers_their_occurred() -> None:
    def stuck() -> Driver:
        return Driver(automation(proactive("t", after=[P], expect=[C], for_each=[ID], within=10)))

    covered = stuck()
    covered.send(make_event("c", C, 5))
    covered.send(make_event("p", P, 0))  # processed at 5: window [0, 10) counts c
    assert covered.ticks(10, 30, 5) == []
    before = stuck()
    before.send(make_event("c", C, -1))
    before.send(make_event("p", P, 0))
    assert before.ticks(5, 30, 5) == [Fired("t", 10, "p", _run_key())]


def test_quirk_16_follows_holds_an_event_for_fifteen_minutes_of_received_time() -> None:
    d = Driver(automation(reactive("t", expect=[C])))
    assert d.send(make_event("f", C, 0, received=100, follows="ghost")) == []
    assert d.tick(999.999999) == []
    assert d.tick(1000) == [Fired("t", 1000, "f")]


def test_quirk_17_duplicates_are_dropped_for_thirty_minutes_then_evaluated_again() -> None:
    d = Driver(automation(reactive("t", expect=[C])))
    event = make_event("a", C, 0)
    assert d.send(event) == [Fired("t", 0, "a")]
    assert d.send(event, processed_at=1799) == []
    assert d.send(event, processed_at=1800) == [Fired("t", 1800, "a")]


def test_quirk_18_log_writes_are_invisible_even_to_followers_and_the_events_clock() -> None:
    log = "prefect.log.write"
    waiting = Driver(automation(reactive("t", expect=[log, C])))
    assert waiting.send(make_event("log", log, 0)) == []
    # The log write was never processed, so its follower waits for it and is lost.
    assert waiting.send(make_event("f", C, 1, follows="log")) == []
    assert waiting.tick(901) == [Fired("t", 901, "f")]

    stuck = Driver(automation(proactive("s", after=[R], expect=[C], for_each=[ID], within=60)))
    stuck.send(make_event("run", R, 0))
    stuck.send(make_event("log2", log, 5, received=30))  # would make the offset -25
    assert stuck.tick(60) == [Fired("s", 60, "run", _run_key())]


def test_quirk_19_composite_keeps_the_latest_firing_per_child_across_keys() -> None:
    children = [
        reactive("a", expect=["A"], for_each=[ID]),
        reactive("b", expect=["B"], for_each=[ID]),
    ]
    d = Driver(automation(sequence("p", children, 60)))
    d.send(make_event("a1", "A", 0, resource="prefect.flow-run.r1"))
    d.send(make_event("a2", "A", 30, resource="prefect.flow-run.r2"))  # replaces a1
    assert d.send(make_event("b1", "B", 80, resource="prefect.flow-run.r3")) == [
        Fired(
            "p",
            80,
            "b1",
            {},
            (Fired("a", 30, "a2", _run_key("r2")), Fired("b", 80, "b1", _run_key("r3"))),
        )
    ]
    assert d.send(make_event("b2", "B", 90, resource="prefect.flow-run.r1")) == []


def test_quirk_20_automations_chain_through_automation_triggered_events() -> None:
    first = automation(reactive("first", expect=["X"]), name="first")
    listener = reactive(
        "second",
        expect=["prefect.automation.triggered"],
        match={ID: f"prefect.automation.{aid('first')}"},
    )
    second = automation(listener, name="second")
    # The replay contract's id of the first state-change event of the run.
    state_event = str(
        uuid.uuid5(uuid.UUID("6f3c1a52-3b7e-4a53-9d55-2f6f3b0c9e11"), "state-change-event/1")
    )

    chained = Driver(first, second, feed_state_events=True)
    out = chained.send(make_event("x", "X", 0))
    assert unordered(out) == unordered([Fired("first", 0, "x"), Fired("second", 0, state_event)])
    fed = chained.raw[0].state_event
    assert fed.id == state_event
    assert fed.name == "prefect.automation.triggered"
    assert fed.resource == {
        ID: f"prefect.automation.{aid('first')}",
        "prefect.resource.name": "first",
        "prefect.posture": "Reactive",
    }
    assert fed.related == [
        {
            ID: f"prefect.event.{make_event('x', 'X', 0).id}",
            "prefect.resource.role": "triggering-event",
        }
    ]

    unchained = Driver(first, second)
    assert unchained.send(make_event("x", "X", 0)) == [Fired("first", 0, "x")]
