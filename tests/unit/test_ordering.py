"""Causal ordering by `follows`, lost followers and de-duplication by id (spec §9)."""

from __future__ import annotations

from .conftest import Driver, Fired, automation, make_event, reactive, unordered

RUNNING = "prefect.flow-run.Running"
COMPLETED = "prefect.flow-run.Completed"
RUN = {"prefect.resource.id": "prefect.flow-run.r1"}


def _running_then_completed() -> Driver:
    trigger = reactive(
        "t", after=[RUNNING], expect=[COMPLETED], for_each=["prefect.resource.id"], within=300
    )
    return Driver(automation(trigger))


def _every(name: str, threshold: int = 1, within: float = 0) -> Driver:
    """Fires on every (threshold-th) `name` event it evaluates."""
    return Driver(automation(reactive("t", expect=[name], threshold=threshold, within=within)))


# -- §9.2 followers -----------------------------------------------------------------------


def test_follower_waits_for_its_leader_and_fires_at_the_leaders_processing_time() -> None:
    d = _running_then_completed()
    assert d.send(make_event("done", COMPLETED, 20, follows="run")) == []
    assert d.send(make_event("run", RUNNING, 10), processed_at=30) == [Fired("t", 30, "done", RUN)]


def test_without_follows_an_expected_event_before_its_after_event_is_lost() -> None:
    d = _running_then_completed()
    assert d.send(make_event("done", COMPLETED, 20)) == []
    assert d.send(make_event("run", RUNNING, 10), processed_at=30) == []


def test_followers_of_one_leader_run_in_occurred_order() -> None:
    d = _every(COMPLETED, threshold=2, within=60)
    d.send(make_event("f20", COMPLETED, 20, follows="lead"))
    d.send(make_event("f10", COMPLETED, 10, follows="lead"))
    assert d.send(make_event("lead", RUNNING, 0), processed_at=30) == [Fired("t", 30, "f20")]


def test_follower_of_a_follower_is_released_with_the_chain() -> None:
    d = _every(COMPLETED)
    d.send(make_event("second", COMPLETED, 2, follows="first"))
    d.send(make_event("first", COMPLETED, 1, follows="lead"))
    out = d.send(make_event("lead", RUNNING, 0), processed_at=5)
    assert unordered(out) == unordered([Fired("t", 5, "first"), Fired("t", 5, "second")])


def test_event_that_follows_itself_is_not_held() -> None:
    d = _every(COMPLETED)
    assert d.send(make_event("self", COMPLETED, 0, follows="self")) == [Fired("t", 0, "self")]


def test_uninteresting_leader_still_counts_as_processed() -> None:
    d = _every(COMPLETED)
    d.send(make_event("lead", "nobody.cares", 0))
    assert d.send(make_event("f", COMPLETED, 10, follows="lead")) == [Fired("t", 10, "f")]


def test_lost_follower_runs_at_the_first_tick_fifteen_minutes_after_it_was_received() -> None:
    d = _every(COMPLETED)
    assert d.send(make_event("f", COMPLETED, 0, follows="ghost")) == []
    assert d.tick(899.999999) == []
    assert d.tick(900) == [Fired("t", 900, "f")]
    assert d.tick(905) == []


def test_event_already_fifteen_minutes_old_on_arrival_is_never_held() -> None:
    d = _every(COMPLETED)
    d.send(make_event("other", "nobody.cares", 900))
    assert d.send(make_event("f", COMPLETED, 0, received=0, follows="ghost")) == [
        Fired("t", 900, "f")
    ]


def test_event_just_younger_than_fifteen_minutes_is_held() -> None:
    d = _every(COMPLETED)
    d.send(make_event("other", "nobody.cares", 900))
    assert d.send(make_event("f", COMPLETED, 0, received=0.000001, follows="ghost")) == []


def test_follower_chain_deeper_than_twenty_stays_held_until_lost() -> None:
    # c21 follows c20 ... c1 follows c0; all but c0 arrive first, newest link first.
    d = _every("chain")
    for k in range(21, 0, -1):
        assert d.send(make_event(f"c{k}", "chain", 21 - k, follows=f"c{k - 1}")) == []
    released = d.send(make_event("c0", "chain", 21))
    assert unordered(released) == unordered([Fired("t", 21, f"c{k}") for k in range(21)])
    assert d.tick(899.999999) == []  # c21 was received at 0
    assert d.tick(900) == [Fired("t", 900, "c21")]


def test_follower_of_a_leader_processed_thirty_minutes_ago_waits_again() -> None:
    d = _every(COMPLETED)
    d.send(make_event("lead", RUNNING, 0))
    assert d.send(make_event("f", COMPLETED, 1800, follows="lead")) == []
    assert d.tick(2699.999999) == []
    assert d.tick(2700) == [Fired("t", 2700, "f")]


def test_follower_of_a_leader_processed_just_under_thirty_minutes_ago_runs_at_once() -> None:
    d = _every(COMPLETED)
    d.send(make_event("lead", RUNNING, 0))
    assert d.send(make_event("f", COMPLETED, 1799.999999, follows="lead")) == [
        Fired("t", 1799.999999, "f")
    ]


# -- §9.3 de-duplication ------------------------------------------------------------------


def test_redelivery_is_dropped_until_thirty_minutes_after_processing() -> None:
    d = _every(COMPLETED)
    event = make_event("a", COMPLETED, 0)
    assert d.send(event) == [Fired("t", 0, "a")]
    assert d.send(event, processed_at=1799.999999) == []
    assert d.send(event, processed_at=1800) == [Fired("t", 1800, "a")]


def test_dropped_redelivery_does_not_extend_the_memory() -> None:
    d = _every(COMPLETED)
    event = make_event("a", COMPLETED, 0)
    d.send(event)
    d.send(event, processed_at=1000)
    assert d.send(event, processed_at=1800) == [Fired("t", 1800, "a")]


def test_released_follower_counts_as_processed_from_its_release_time() -> None:
    d = _every(COMPLETED)
    follower = make_event("f", COMPLETED, 0, received=0, follows="lead")
    assert d.send(follower) == []
    assert d.send(make_event("lead", RUNNING, 100)) == [Fired("t", 100, "f")]
    assert d.send(follower, processed_at=1850) == []
    assert d.send(follower, processed_at=1900) == [Fired("t", 1900, "f")]


def test_log_writes_are_invisible_to_every_trigger() -> None:
    log = "prefect.log.write"
    d = Driver(
        automation(reactive("named", expect=[log]), name="named"),
        automation(reactive("any", expect=[]), name="any"),
    )
    assert d.send(make_event("log", log, 0)) == []
    assert d.send(make_event("x", "prefect.flow-run.Failed", 1)) == [Fired("any", 1, "x")]
