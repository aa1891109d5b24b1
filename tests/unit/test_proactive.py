"""Proactive event triggers: windows, ticks, the events clock, held events, restarts (spec §7)."""

from __future__ import annotations

import pytest

from .conftest import Driver, Fired, automation, make_event, proactive, reactive

RUNNING = "prefect.flow-run.Running"
COMPLETED = "prefect.flow-run.Completed"
RUN = {"prefect.resource.id": "prefect.flow-run.r1"}


def _stuck_runs(
    threshold: int = 1, within: float = 60, *, proactive_mode: str = "direct"
) -> Driver:
    trigger = proactive(
        "t",
        after=[RUNNING],
        expect=[COMPLETED],
        for_each=["prefect.resource.id"],
        threshold=threshold,
        within=within,
    )
    return Driver(automation(trigger), proactive_mode=proactive_mode)


def _heartbeat_watch(
    threshold: int = 1, within: float = 30, *, proactive_mode: str = "direct", **fields: object
) -> Driver:
    trigger = proactive("t", expect=["hb"], threshold=threshold, within=within, **fields)
    return Driver(automation(trigger), proactive_mode=proactive_mode)


# -- §7.2 / §7.3 windows opened by `after` --------------------------------------------


def test_stuck_run_fires_at_the_first_tick_at_or_after_its_window_end() -> None:
    d = _stuck_runs()
    d.send(make_event("run", RUNNING, 0))
    assert d.ticks(5, 120, 5) == [Fired("t", 60, "run", RUN)]


def test_run_that_completes_in_time_never_fires() -> None:
    d = _stuck_runs()
    d.send(make_event("run", RUNNING, 0))
    d.send(make_event("done", COMPLETED, 59.999))
    assert d.ticks(60, 200, 5) == []


def test_tick_exactly_at_the_window_end_fires_and_one_just_before_does_not() -> None:
    d = _stuck_runs()
    d.send(make_event("run", RUNNING, 0))
    assert d.tick(59.999999) == []
    assert d.tick(60) == [Fired("t", 60, "run", RUN)]


def test_late_tick_fires_once_for_the_old_window() -> None:
    d = _stuck_runs()
    d.send(make_event("run", RUNNING, 0))
    assert d.tick(200) == [Fired("t", 200, "run", RUN)]
    assert d.ticks(205, 400, 5) == []


def test_late_expected_event_fires_during_event_evaluation_and_opens_nothing() -> None:
    d = _stuck_runs()
    d.send(make_event("run", RUNNING, 0))
    assert d.send(make_event("late", COMPLETED, 70, received=72)) == [Fired("t", 72, "late", RUN)]
    assert d.ticks(75, 300, 5) == []


def test_proactive_threshold_zero_never_fires() -> None:
    d = _stuck_runs(threshold=0)
    d.send(make_event("run", RUNNING, 0))
    assert d.ticks(5, 200, 5) == []


def test_after_without_for_each_fires_without_any_after_event() -> None:
    trigger = proactive("t", after=[RUNNING], expect=[COMPLETED], within=30)
    d = Driver(automation(trigger))
    assert d.ticks(0, 30, 10) == [Fired("t", 30, None)]


def test_after_without_for_each_is_satisfied_by_an_expected_event_of_any_resource() -> None:
    trigger = proactive("t", after=[RUNNING], expect=[COMPLETED], within=30)
    d = Driver(automation(trigger))
    assert d.ticks(0, 40, 10) == [Fired("t", 30, None)]  # window [40, 70) now open
    d.send(make_event("other", COMPLETED, 45, resource="prefect.flow-run.r9"))
    # 50 deletes the satisfied window, 60 opens [60, 90), 90 fires.
    assert d.ticks(50, 90, 10) == [Fired("t", 90, None)]


# -- §7.3 / §7.4 / §7.7 windows without `after` --------------------------------------


def test_per_key_watch_with_threshold_one_never_fires() -> None:
    d = _heartbeat_watch(threshold=1, for_each=["prefect.resource.id"])
    d.send(make_event("h0", "hb", 0))
    assert d.ticks(5, 300, 5) == []


def test_per_key_watch_with_threshold_two_fires_every_window_forever() -> None:
    d = _heartbeat_watch(threshold=2, for_each=["prefect.resource.id"])
    d.send(make_event("h0", "hb", 0))
    assert d.ticks(5, 120, 5) == [
        Fired("t", 30, "h0", RUN),
        Fired("t", 60, None, RUN),
        Fired("t", 90, None, RUN),
        Fired("t", 120, None, RUN),
    ]


def test_global_watch_windows_are_anchored_to_ticks() -> None:
    d = _heartbeat_watch()
    assert d.ticks(0, 30, 10) == [Fired("t", 30, None)]  # [0, 30), then [30, 60)
    d.send(make_event("h35", "hb", 35))
    # 40 deletes the satisfied window, 50 opens [50, 80).
    assert d.ticks(40, 80, 10) == [Fired("t", 80, None)]


def test_event_with_no_window_open_opens_a_look_back_window() -> None:
    d = _heartbeat_watch()
    d.send(make_event("h0", "hb", 0))  # [-900, 30), satisfied at once
    # 5 deletes it, 10 opens [10, 40), 40 fires.
    assert d.ticks(5, 40, 5) == [Fired("t", 40, None)]


def test_late_expected_event_rolls_a_window_without_after_over_with_no_last_event() -> None:
    d = _heartbeat_watch(threshold=2, for_each=["prefect.resource.id"])
    d.send(make_event("h0", "hb", 0))  # [-900, 30), count 1
    assert d.send(make_event("h40", "hb", 40)) == [Fired("t", 40, "h40", RUN)]
    # The new window [40, 70) counts h40 (1 < 2) but has no last_event.
    assert d.tick(70) == [Fired("t", 70, None, RUN)]


# -- §7.1 the events clock ---------------------------------------------------------------


def test_events_clock_delays_proactive_time_by_the_last_events_lateness() -> None:
    d = _stuck_runs()
    d.send(make_event("run", RUNNING, 0, received=20))  # offset 0 - 20
    assert d.tick(60) == []
    assert d.tick(79.999999) == []
    assert d.tick(80) == [Fired("t", 80, "run", RUN)]


def test_events_clock_is_moved_by_events_no_trigger_cares_about() -> None:
    d = _stuck_runs()
    d.send(make_event("run", RUNNING, 0, received=20))
    d.send(make_event("noise", "something.else", 5, received=30))  # offset 5 - 30
    assert d.tick(84.999999) == []
    assert d.tick(85) == [Fired("t", 85, "run", RUN)]


def test_events_clock_never_moves_back_for_an_old_event() -> None:
    d = _stuck_runs()
    d.send(make_event("run", RUNNING, 0))
    d.send(make_event("old", "something.else", -100, received=10))  # clock stays 0: -10
    assert d.tick(60, 65) == []
    assert d.tick(70) == [Fired("t", 70, "run", RUN)]


def test_events_clock_is_capped_at_the_time_an_event_was_seen() -> None:
    d = _stuck_runs()
    d.send(make_event("run", RUNNING, 100, received=10))  # window [100, 160), clock 10
    assert d.tick(70, 100, 159.999999) == []
    assert d.tick(160) == [Fired("t", 160, "run", RUN)]


def test_sweep_cut_off_is_shifted_by_the_events_clock_too() -> None:
    counter = reactive("t", expect=["prefect.flow-run.Failed"], threshold=2, within=0)
    kept = Driver(automation(counter))
    kept.send(make_event("f0", "prefect.flow-run.Failed", 0, received=20))  # offset -20
    kept.tick(79.999999)  # cut-off -0.000001: the bucket ending at 0 stays
    assert kept.send(make_event("f1", "prefect.flow-run.Failed", 80)) == [Fired("t", 80, "f1")]
    swept = Driver(automation(counter))
    swept.send(make_event("f0", "prefect.flow-run.Failed", 0, received=20))
    swept.tick(80)  # cut-off 0
    assert swept.send(make_event("f1", "prefect.flow-run.Failed", 81)) == []


# -- §7.1 direct and scheduled evaluation ------------------------------------------------


def test_direct_and_scheduled_modes_open_tick_windows_at_different_instants() -> None:
    # Direct: 20 deletes the window satisfied at 12, 30 opens [30, 60), 60 and 90 fire.
    # Scheduled: [0, 30) is next looked at at 30 (deleted), then at 60 ([60, 90)), then 90.
    fired = {}
    for mode in ("direct", "scheduled"):
        d = _heartbeat_watch(proactive_mode=mode)
        d.tick(0, 10)
        d.send(make_event("h12", "hb", 12))
        fired[mode] = d.ticks(20, 90, 10)
    assert fired == {
        "direct": [Fired("t", 60, None), Fired("t", 90, None)],
        "scheduled": [Fired("t", 90, None)],
    }


def test_scheduled_mode_returns_for_a_window_ending_before_its_next_regular_run() -> None:
    d = _stuck_runs(proactive_mode="scheduled")
    d.tick(0)  # nothing open: next run at 60
    d.send(make_event("run", RUNNING, 1))  # [1, 61)
    assert d.ticks(5, 60, 5) == []  # the run at 60 sees 61 strictly inside (60, 120)
    assert d.tick(65) == [Fired("t", 65, "run", RUN)]


def test_scheduled_mode_fires_a_due_window_before_the_sweep_where_prefect_loses_it() -> None:
    """Prefect's sweep deletes the late look-back window of a trigger not due at 60
    (spec §8 step 4) and it never fires; Tripwire fires every due bucket at the first
    tick that would sweep it, a deliberate difference (docs/semantics.md)."""
    fired = {}
    for mode in ("direct", "scheduled"):
        d = _heartbeat_watch(
            threshold=2, within=100, for_each=["prefect.resource.id"], proactive_mode=mode
        )
        d.tick(0)  # scheduled: next run at 100
        d.send(make_event("noise", "something.else", 50))
        d.send(make_event("late", "hb", -200, received=51))  # [-1100, -100); offset -1
        d.tick(60, 100)
        fired[mode] = d.fired
    assert fired == {
        "direct": [Fired("t", 60, "late", RUN)],
        "scheduled": [Fired("t", 60, "late", RUN)],
    }


# -- §7.6 held expect events -----------------------------------------------------------------


def test_expected_event_processed_before_its_after_event_counts_once_the_window_covers_it() -> None:
    d = _stuck_runs()
    d.send(make_event("done", COMPLETED, 30))
    d.send(make_event("run", RUNNING, 10))  # processed at 30; window [10, 70) holds done
    assert d.ticks(35, 200, 5) == []


def test_held_event_that_occurred_before_the_after_event_does_not_count() -> None:
    d = _stuck_runs()
    d.send(make_event("done", COMPLETED, 5))
    d.send(make_event("run", RUNNING, 10))
    assert d.ticks(15, 200, 5) == [Fired("t", 70, "run", RUN)]


def test_held_events_count_but_never_become_the_last_event() -> None:
    d = _stuck_runs(threshold=2)
    d.send(make_event("done", COMPLETED, 30))
    d.send(make_event("run", RUNNING, 10))  # count 1 from the held event
    assert d.ticks(35, 200, 5) == [Fired("t", 70, "run", RUN)]


def test_held_event_and_a_later_one_reach_a_threshold_of_two() -> None:
    d = _stuck_runs(threshold=2)
    d.send(make_event("done", COMPLETED, 30))
    d.send(make_event("run", RUNNING, 10))
    d.send(make_event("done2", COMPLETED, 40))
    assert d.ticks(45, 200, 5) == []


def test_redelivered_held_event_is_not_counted_again() -> None:
    d = _stuck_runs(threshold=2, within=3600)
    d.send(make_event("run", RUNNING, 0))
    d.send(make_event("done", COMPLETED, 10))  # held and counted: 1
    d.send(make_event("done", COMPLETED, 10), processed_at=1810)  # past the seen-id memory
    d.send(make_event("noise", "something.else", 1811))  # brings the events clock back
    assert d.tick(3600) == [Fired("t", 3600, "done", RUN)]


@pytest.mark.parametrize(
    ("sweep_at", "fired"), [(1800, []), (1800.000001, [Fired("t", 1850, "run", RUN)])]
)
def test_held_events_are_swept_thirty_minutes_after_they_were_first_held(
    sweep_at: float, fired: list[Fired]
) -> None:
    d = _stuck_runs()
    d.send(make_event("done", COMPLETED, 0))
    d.tick(sweep_at)
    d.send(make_event("run", RUNNING, -10), processed_at=1802)  # window [-10, 50)
    d.send(make_event("noise", "something.else", 1803))
    assert d.tick(1850) == fired


# -- §7.5 same event in `after` and `expect` ---------------------------------------------


def _zombies(threshold: int = 1, within: float = 90) -> Driver:
    trigger = proactive(
        "t",
        after=["hb"],
        expect=["hb", "done"],
        for_each=["prefect.resource.id"],
        threshold=threshold,
        within=within,
    )
    return Driver(automation(trigger))


def test_each_heartbeat_restarts_the_window_and_the_last_one_triggers() -> None:
    d = _zombies()
    fired = d.run(
        make_event("h0", "hb", 0), 10, 20,
        make_event("h30", "hb", 30), 40, 50,
        make_event("h60", "hb", 60), *range(70, 170, 10),
    )  # fmt: skip
    assert fired == [Fired("t", 150, "h60", RUN)]


def test_other_expected_event_in_the_window_satisfies_it() -> None:
    d = _zombies()
    d.send(make_event("h0", "hb", 0))
    d.send(make_event("done", "done", 40))
    assert d.ticks(45, 300, 5) == []


def test_heartbeat_past_an_unevaluated_window_end_fires_and_opens_nothing() -> None:
    d = _zombies()
    d.send(make_event("h0", "hb", 0))
    assert d.send(make_event("h100", "hb", 100)) == [Fired("t", 100, "h100", RUN)]
    assert d.ticks(105, 300, 5) == []


def test_next_heartbeat_after_a_late_one_opens_the_next_window() -> None:
    d = _zombies()
    d.send(make_event("h0", "hb", 0))
    d.send(make_event("h100", "hb", 100))
    d.send(make_event("h110", "hb", 110))
    assert d.ticks(115, 300, 5) == [Fired("t", 200, "h110", RUN)]


def test_threshold_two_restarts_only_after_two_more_heartbeats() -> None:
    two = _zombies(threshold=2)
    two.send(make_event("h0", "hb", 0))
    two.send(make_event("h10", "hb", 10))
    assert two.ticks(15, 120, 5) == [Fired("t", 90, "h10", RUN)]
    three = _zombies(threshold=2)
    for moment in (0, 10, 20):
        three.send(make_event(f"h{moment}", "hb", moment))
    assert three.ticks(25, 200, 5) == [Fired("t", 110, "h20", RUN)]


@pytest.mark.parametrize("done_at", [40, 50])
def test_restart_keeps_a_newer_expect_only_last_event(done_at: float) -> None:
    # [0, 90): h0 counts 0, done 1, then h40 (processed after done) 2 >= 2: restart at
    # [40, 130) with the held done counted (1) and done kept as its last event.
    d = _zombies(threshold=2)
    d.send(make_event("h0", "hb", 0))
    d.send(make_event("done", "done", done_at))
    d.send(make_event("h40", "hb", 40))
    assert d.ticks(55, 200, 5) == [Fired("t", 130, "done", RUN)]


def test_restart_takes_the_heartbeat_as_last_event_when_it_is_newer() -> None:
    d = _zombies(threshold=2)
    d.send(make_event("h0", "hb", 0))
    d.send(make_event("done", "done", 50))
    d.send(make_event("h60", "hb", 60))  # restart at [60, 150); done is outside it
    assert d.ticks(65, 200, 5) == [Fired("t", 150, "h60", RUN)]


def test_satisfied_window_is_restarted_by_the_next_heartbeat() -> None:
    d = _zombies()
    d.send(make_event("h0", "hb", 0))
    d.send(make_event("done", "done", 10))  # satisfies [0, 90) without restarting it
    d.send(make_event("h20", "hb", 20))  # restarts at [20, 110); done lies outside
    assert d.ticks(25, 200, 5) == [Fired("t", 110, "h20", RUN)]


# -- more on held events, the events clock and windows -------------------------------------


@pytest.mark.parametrize(
    ("newest", "fired"), [(1800, []), (1800.000001, [Fired("t", 1801, "run", RUN)])]
)
def test_holding_an_event_drops_those_over_thirty_minutes_older_than_the_newest(
    newest: float, fired: list[Fired]
) -> None:
    d = _stuck_runs()
    d.send(make_event("old", COMPLETED, 0))
    d.send(make_event("new", COMPLETED, newest))
    d.send(make_event("run", RUNNING, -5))  # window [-5, 55) would count `old`
    assert d.tick(1801) == fired


def test_held_events_of_a_key_with_an_open_window_survive_the_sweep() -> None:
    d = _stuck_runs(threshold=2, within=3600)
    d.send(make_event("run", RUNNING, 0))
    d.send(make_event("done", COMPLETED, 10))  # held and counted: 1
    d.tick(1811)  # first held over 30 min ago, but [0, 3600) is open: kept
    d.send(make_event("done", COMPLETED, 10), processed_at=1812)  # still held: skipped
    d.send(make_event("noise", "something.else", 1813))
    assert d.tick(3600) == [Fired("t", 3600, "done", RUN)]


def test_expected_event_that_occurred_before_the_window_is_ignored() -> None:
    d = _stuck_runs()
    d.send(make_event("run", RUNNING, 10))
    d.send(make_event("early", COMPLETED, 5))  # processed at 10, occurred before [10, 70)
    assert d.ticks(15, 100, 5) == [Fired("t", 70, "run", RUN)]


def test_global_window_opens_at_the_shifted_tick_time() -> None:
    d = _heartbeat_watch()
    d.send(make_event("noise", "something.else", 0, received=20))  # offset -20
    d.tick(20)  # as_of 0: [0, 30)
    assert d.tick(49.999999) == []
    assert d.tick(50) == [Fired("t", 50, None)]


def test_global_window_of_a_trigger_with_after_counts_held_events() -> None:
    trigger = proactive("t", after=[RUNNING], expect=[COMPLETED], within=30)
    d = Driver(automation(trigger))
    d.send(make_event("done", COMPLETED, 20, received=5))  # held; no window yet
    # 6, 11 and 16 open windows that count it and delete them at once; 21 opens [21, 51).
    assert d.ticks(6, 56, 5) == [Fired("t", 51, None)]


def test_late_tick_rolls_a_window_without_after_over_from_the_tick() -> None:
    d = _heartbeat_watch(threshold=2, for_each=["prefect.resource.id"])
    d.send(make_event("h0", "hb", 0))  # [-900, 30)
    assert d.tick(100) == [Fired("t", 100, "h0", RUN)]  # next window [100, 130)
    assert d.tick(129.999999) == []
    assert d.tick(130) == [Fired("t", 130, None, RUN)]


def test_lost_follower_released_at_a_tick_moves_the_events_clock() -> None:
    d = _stuck_runs()
    d.send(make_event("lost", "something.else", 0, follows="ghost"))
    d.send(make_event("run", RUNNING, 850))  # [850, 910)
    # At 900 `lost` is released: the clock stays at 850 but was last moved at 900.
    assert d.tick(900, 910, 959.999999) == []
    assert d.tick(960) == [Fired("t", 960, "run", RUN)]


def test_reloading_automations_resets_the_proactive_schedule() -> None:
    def run(reload: bool) -> list[Fired]:
        d = _heartbeat_watch(proactive_mode="scheduled")
        d.tick(0)  # [0, 30); next run at 30
        d.send(make_event("h12", "hb", 12))
        if reload:
            d.engine.load([automation(proactive("t", expect=["hb"], within=30))])
        return d.ticks(20, 100, 10)

    # Reloaded: 20 runs (deletes the satisfied window), 50 opens [50, 80), 80 fires.
    # Not reloaded: 30 deletes, 60 opens [60, 90), 90 fires.
    assert run(reload=True) == [Fired("t", 80, None)]
    assert run(reload=False) == [Fired("t", 90, None)]
