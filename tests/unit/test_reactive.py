"""Reactive event triggers: opening, counting, firing and what follows a firing (spec §6)."""

from __future__ import annotations

from .conftest import Driver, Fired, automation, make_event, reactive

FAILED = "prefect.flow-run.Failed"
PENDING = "prefect.flow-run.Pending"
COMPLETED = "prefect.flow-run.Completed"


def _failures(threshold: int, within: float, **fields: object) -> Driver:
    return Driver(
        automation(reactive("t", expect=[FAILED], threshold=threshold, within=within, **fields))
    )


def _send_failures(d: Driver, *times: float) -> list[Fired]:
    out: list[Fired] = []
    for moment in times:
        out += d.send(make_event(f"f{moment:g}", FAILED, moment))
    return out


def _pending_then_completed(threshold: int = 1, within: float = 60) -> Driver:
    trigger = reactive(
        "t",
        after=[PENDING],
        expect=[COMPLETED],
        for_each=["prefect.resource.id"],
        threshold=threshold,
        within=within,
    )
    return Driver(automation(trigger))


RUN = {"prefect.resource.id": "prefect.flow-run.r1"}


# -- §6.2 / §6.3 counting and firing --------------------------------------------------


def test_threshold_one_fires_on_every_event() -> None:
    d = _failures(1, 0)
    assert _send_failures(d, 0, 5, 7) == [
        Fired("t", 0, "f0"),
        Fired("t", 5, "f5"),
        Fired("t", 7, "f7"),
    ]


def test_firing_time_is_the_processing_time_not_occurred() -> None:
    d = _failures(1, 0)
    late = make_event("late", FAILED, 10, received=12.5)
    assert d.send(late) == [Fired("t", 12.5, "late")]


def test_three_failures_just_inside_a_minute_fire() -> None:
    assert _send_failures(_failures(3, 60), 0, 20, 59.999) == [Fired("t", 59.999, "f59.999")]


def test_third_failure_at_the_window_end_opens_a_new_window_instead() -> None:
    assert _send_failures(_failures(3, 60), 0, 20, 60) == []


def test_windows_tumble_from_the_first_event_after_expiry() -> None:
    # [-900, 60) holds 0 and 50; 70 opens [70, 130), which 100 and 125 fill.
    assert _send_failures(_failures(3, 60), 0, 50, 70, 100, 125) == [Fired("t", 125, "f125")]


def test_first_bucket_looks_back_fifteen_minutes_from_the_first_event() -> None:
    d = _failures(2, 60)
    assert d.send(make_event("first", FAILED, 1000)) == []
    # Arrives later but occurred exactly 15 min before: the window start is inclusive.
    assert d.send(make_event("old", FAILED, 100)) == [Fired("t", 1000, "old")]


def test_event_older_than_the_look_back_is_ignored() -> None:
    d = _failures(2, 60)
    assert d.send(make_event("first", FAILED, 1000)) == []
    assert d.send(make_event("older", FAILED, 99.999999)) == []
    assert d.send(make_event("next", FAILED, 1001)) == [Fired("t", 1001, "next")]


def test_events_between_a_firing_and_the_fired_window_end_are_dropped() -> None:
    # Fired in [-900, 60); the next window is [60, 120): 30 and 50 are before its start.
    d = _failures(2, 60)
    assert _send_failures(d, 0, 10) == [Fired("t", 10, "f10")]
    assert _send_failures(d, 30, 50) == []
    assert _send_failures(d, 70, 80) == [Fired("t", 80, "f80")]


def test_event_past_the_cooled_down_window_is_counted_in_a_new_one() -> None:
    d = _failures(1, 60)
    assert _send_failures(d, 0, 30, 200) == [Fired("t", 0, "f0"), Fired("t", 200, "f200")]


def test_threshold_zero_fires_on_an_expected_event_that_is_not_counted() -> None:
    # The Completed lies past the window end, so it is not counted, but 0 >= 0.
    d = _pending_then_completed(threshold=0, within=60)
    assert d.send(make_event("p", PENDING, 0)) == []
    assert d.send(make_event("c", COMPLETED, 100)) == [Fired("t", 100, "c", RUN)]


def test_threshold_one_does_not_fire_on_an_expected_event_past_the_window() -> None:
    d = _pending_then_completed(threshold=1, within=60)
    d.send(make_event("p", PENDING, 0))
    assert d.send(make_event("c", COMPLETED, 100)) == []


def test_negative_threshold_fires_on_every_expected_event() -> None:
    assert _send_failures(_failures(-1, 0), 0, 1) == [Fired("t", 0, "f0"), Fired("t", 1, "f1")]


# -- §6.4 within 0 -----------------------------------------------------------------


def test_within_zero_counts_without_time_limit_when_nothing_sweeps() -> None:
    d = _failures(2, 0)
    assert _send_failures(d, 0, 600) == [Fired("t", 600, "f600")]


def test_within_zero_counter_restarts_after_a_firing() -> None:
    d = _failures(2, 0)
    assert _send_failures(d, 0, 10, 20, 30) == [Fired("t", 10, "f10"), Fired("t", 30, "f30")]


def test_within_zero_counter_is_forgotten_by_the_sweep_a_minute_after_it_opened() -> None:
    d = _failures(2, 0)
    d.send(make_event("f0", FAILED, 0))
    assert d.ticks(5, 60, 5) == []  # the tick at 60 deletes the bucket ending at 0
    assert d.send(make_event("f61", FAILED, 61)) == []
    assert d.send(make_event("f62", FAILED, 62)) == [Fired("t", 62, "f62")]


def test_within_zero_counter_survives_ticks_until_its_sweep() -> None:
    d = _failures(2, 0)
    d.send(make_event("f0", FAILED, 0))
    assert d.ticks(5, 55, 5) == []
    assert d.send(make_event("f59", FAILED, 59)) == [Fired("t", 59, "f59")]


def test_after_with_within_zero_counts_the_next_expected_event_however_late() -> None:
    d = _pending_then_completed(within=0)
    d.send(make_event("p", PENDING, 0))
    assert d.send(make_event("c", COMPLETED, 500)) == [Fired("t", 500, "c", RUN)]


def test_after_with_within_zero_is_swept_a_minute_after_the_after_event() -> None:
    d = _pending_then_completed(within=0)
    d.send(make_event("p", PENDING, 0))
    d.tick(60)
    assert d.send(make_event("c", COMPLETED, 61)) == []


def test_after_with_within_zero_and_threshold_two_never_fires() -> None:
    d = _pending_then_completed(threshold=2, within=0)
    d.send(make_event("p", PENDING, 0))
    out = [*d.send(make_event("c1", COMPLETED, 1)), *d.send(make_event("c2", COMPLETED, 2))]
    assert out == []


# -- §6.1 / §6.4 after -------------------------------------------------------------------


def test_after_then_expect_fires_on_the_expected_event() -> None:
    d = _pending_then_completed()
    assert d.send(make_event("p", PENDING, 0)) == []
    assert d.send(make_event("c", COMPLETED, 30)) == [Fired("t", 30, "c", RUN)]


def test_expected_event_before_its_after_event_never_counts() -> None:
    d = _pending_then_completed()
    assert d.send(make_event("c", COMPLETED, 0)) == []
    assert d.send(make_event("p", PENDING, 10)) == []
    assert d.send(make_event("c_old", COMPLETED, 5)) == []  # occurred before the window start


def test_a_firing_with_after_needs_a_fresh_after_event() -> None:
    d = _pending_then_completed()
    d.send(make_event("p1", PENDING, 0))
    assert d.send(make_event("c1", COMPLETED, 10)) == [Fired("t", 10, "c1", RUN)]
    assert d.send(make_event("c2", COMPLETED, 20)) == []
    d.send(make_event("p2", PENDING, 30))
    assert d.send(make_event("c3", COMPLETED, 40)) == [Fired("t", 40, "c3", RUN)]


def test_second_after_event_inside_the_window_does_not_move_it() -> None:
    d = _pending_then_completed()
    d.send(make_event("p1", PENDING, 0))
    d.send(make_event("p2", PENDING, 40))
    assert d.send(make_event("c", COMPLETED, 70)) == []  # past [0, 60): deletes it
    assert d.send(make_event("c2", COMPLETED, 80)) == []


def test_stale_bucket_swallows_a_new_after_event() -> None:
    d = _pending_then_completed()
    d.send(make_event("p1", PENDING, 0))
    d.send(make_event("p2", PENDING, 100))  # [0, 60) is still stored
    assert d.send(make_event("c1", COMPLETED, 110)) == []  # deletes the stale bucket
    assert d.send(make_event("c2", COMPLETED, 120)) == []


def test_stale_bucket_still_counts_an_event_that_occurred_inside_it() -> None:
    d = _pending_then_completed()
    d.send(make_event("p1", PENDING, 0))
    d.send(make_event("p2", PENDING, 100))
    assert d.send(make_event("c_in", COMPLETED, 30)) == [Fired("t", 100, "c_in", RUN)]


def test_sweep_clears_a_stale_after_bucket_so_a_new_after_event_opens_one() -> None:
    d = _pending_then_completed()
    d.send(make_event("p1", PENDING, 0))
    d.tick(119.999999)  # cut-off just before the end at 60: kept
    d.send(make_event("p2", PENDING, 125))
    assert d.send(make_event("c1", COMPLETED, 130)) == []  # p2 was swallowed
    d2 = _pending_then_completed()
    d2.send(make_event("p1", PENDING, 0))
    d2.tick(120)  # end 60 <= 120 - 60: swept
    d2.send(make_event("p2", PENDING, 125))
    assert d2.send(make_event("c1", COMPLETED, 130)) == [Fired("t", 130, "c1", RUN)]


# -- §6.4 same event in after and expect -----------------------------------------------


def _heartbeats(threshold: int, within: float) -> Driver:
    trigger = reactive("t", after=["hb"], expect=["hb"], threshold=threshold, within=within)
    return Driver(automation(trigger))


def test_same_event_in_after_and_expect_fires_on_the_threshold_plus_first() -> None:
    d = _heartbeats(2, 60)
    out = [d.send(make_event(f"h{i}", "hb", i * 10)) for i in range(4)]
    assert out == [[], [], [Fired("t", 20, "h2")], []]


def test_same_event_in_after_and_expect_with_within_zero_never_fires() -> None:
    d = _heartbeats(1, 0)
    out = [f for i in range(5) for f in d.send(make_event(f"h{i}", "hb", i))]
    assert out == []


def test_disabled_automation_never_fires() -> None:
    trigger = reactive("t", expect=[FAILED])
    d = Driver(
        automation(trigger, name="off", enabled=False),
        automation(reactive("on", expect=[FAILED]), name="on"),
    )
    assert d.send(make_event("f", FAILED, 0)) == [Fired("on", 0, "f")]
