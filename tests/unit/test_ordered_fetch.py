"""The consumer fix's decisions: records go out in order from the seek, none skipped."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from types import SimpleNamespace

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from service.messaging.ordered_fetch import (
    Decision,
    Positions,
    install_ordered_fetch,
    positions_of,
    refetch_changelogs,
    waiting_records,
)

DROP, HAND_OUT, SEEK_BACK = Decision.DROP, Decision.HAND_OUT, Decision.SEEK_BACK
SEEK_COMMITTED = Decision.SEEK_COMMITTED


def test_nothing_goes_out_between_an_assignment_and_its_seek() -> None:
    positions = Positions()
    positions.assigned(["p0"])
    # The fetcher's position is unknown until the seek: these may be far past the commit.
    assert positions.decide("p0", 9_472, fetch=1) is SEEK_COMMITTED
    assert positions.decide("p0", 9_473, fetch=1) is SEEK_COMMITTED  # until it is sought
    positions.sought("p0", 7_059)
    assert positions.decide("p0", 7_059, fetch=2) is HAND_OUT
    assert positions.decide("p0", 7_060, fetch=2) is HAND_OUT


def test_records_before_the_seek_offset_were_handed_out_already() -> None:
    positions = Positions()
    positions.sought("p0", 38)
    assert [positions.decide("p0", o, fetch=1) for o in (38, 39, 40)] == [HAND_OUT] * 3
    positions.sought("p0", 38)  # Faust seeks back to the committed offset
    assert positions.decide("p0", 38, fetch=2) is HAND_OUT  # redelivered: the guards drop it
    assert positions.decide("p0", 37, fetch=2) is DROP


def test_a_stale_record_past_the_next_offset_seeks_back_and_drops_its_fetch() -> None:
    positions = Positions()
    positions.sought("p3", 38)
    assert positions.decide("p3", 55, fetch=1) is SEEK_BACK
    assert positions.decide("p3", 56, fetch=1) is DROP  # the rest of the stale fetch
    # After the seek the records come again from 38, in order, 53 and 54 included.
    assert [positions.decide("p3", o, fetch=2) for o in range(38, 57)] == [HAND_OUT] * 19


def test_a_gap_that_a_fresh_fetch_confirms_is_real_and_is_passed() -> None:
    positions = Positions()
    positions.sought("p0", 10)
    assert positions.decide("p0", 10, fetch=1) is HAND_OUT
    assert positions.decide("p0", 12, fetch=1) is SEEK_BACK  # 11: a transaction marker?
    assert positions.decide("p0", 12, fetch=2) is HAND_OUT  # fetched again from 11: yes
    assert positions.decide("p0", 13, fetch=2) is HAND_OUT
    # The next hole is checked again.
    assert positions.decide("p0", 20, fetch=3) is SEEK_BACK


def test_partitions_each_keep_their_own_position() -> None:
    positions = Positions()
    positions.assigned(["a", "b"])
    positions.sought("a", 5)
    positions.sought("b", None)  # nothing committed yet: from the log's beginning
    assert positions.decide("b", 0, fetch=1) is HAND_OUT
    assert positions.decide("a", 6, fetch=1) is SEEK_BACK
    assert positions.decide("b", 1, fetch=1) is HAND_OUT
    positions.assigned(["b"])  # a new generation forgets what it knew
    assert positions.decide("b", 2, fetch=2) is SEEK_COMMITTED


def test_with_nothing_committed_a_fetcher_left_ahead_is_sought_to_the_beginning() -> None:
    positions = Positions()
    positions.assigned(["c0"])
    # Faust does not seek a partition without a committed offset, so the fetcher can
    # still stand where the previous generation's reads left it.
    positions.sought("c0", None)
    assert positions.decide("c0", 107, fetch=1) is SEEK_BACK
    assert [positions.decide("c0", o, fetch=2) for o in range(107)] == [HAND_OUT] * 107


def test_records_dropped_before_an_agent_took_them_go_out_again() -> None:
    positions = Positions()
    positions.sought("p1", 40)
    assert [positions.decide("p1", o, fetch=1) for o in range(40, 45)] == [HAND_OUT] * 5
    # 40 and 41 reached an agent; 42-44 waited in its queue when Faust emptied it.
    positions.dropped("p1", 42)
    assert positions.take_rewinds() == {"p1": 42}  # sought back before the next fetch
    assert positions.take_rewinds() == {}
    assert positions.decide("p1", 45, fetch=1) is SEEK_BACK  # the rest of an older fetch
    assert [positions.decide("p1", o, fetch=2) for o in range(42, 46)] == [HAND_OUT] * 4


def test_a_dropped_record_that_will_come_again_anyway_changes_nothing() -> None:
    positions = Positions()
    positions.sought("p0", 10)
    positions.dropped("p0", 10)  # not handed out since the seek: it comes next anyway
    positions.dropped("p9", 3)  # a partition this consumer never handed out
    positions.assigned(["p2"])
    positions.dropped("p2", 0)  # blocked: it is sought to its committed offset anyway
    assert positions.take_rewinds() == {}
    assert positions.decide("p0", 10, fetch=1) is HAND_OUT
    assert positions.decide("p2", 0, fetch=1) is SEEK_COMMITTED


def test_a_seek_or_a_new_assignment_replaces_a_pending_rewind() -> None:
    positions = Positions()
    positions.sought("p0", 10)
    assert positions.decide("p0", 10, fetch=1) is HAND_OUT
    positions.dropped("p0", 10)
    positions.sought("p0", 7)  # sought to the committed offset: from there instead
    assert positions.take_rewinds() == {}
    assert positions.decide("p0", 10, fetch=1) is SEEK_BACK
    positions.dropped("p0", 7)
    positions.assigned(["p0"])
    assert positions.take_rewinds() == {}


@dataclass(frozen=True)
class _Message:
    tp: str
    offset: int


@dataclass(frozen=True)
class _Event:
    message: _Message


def test_resuming_faust_flow_control_rewinds_the_records_it_drops() -> None:
    """Faust resumes its flow control after the post-recovery seek; resuming empties the
    agents' queues (clear_on_resume), so what was fetched in between was never processed.
    """
    install_ordered_fetch()
    positions = positions_of(SimpleNamespace())
    positions.sought("m1", 7)
    assert [positions.decide("m1", o, fetch=1) for o in (7, 8, 9)] == [HAND_OUT] * 3
    assert positions.decide("e0", 0, fetch=1) is HAND_OUT  # only its own partitions move
    flow_control = FlowControlEvent(initially_suspended=False)
    queue: FlowControlQueue[object] = FlowControlQueue(
        flow_control=flow_control, clear_on_resume=True
    )
    for item in (_Event(_Message("m1", 8)), _Event(_Message("m1", 9)), "not an event"):
        queue.put_nowait(item)
    assert waiting_records([queue]) == {"m1": 8}
    flow_control.resume()
    assert queue.empty()
    assert positions.take_rewinds() == {"m1": 8}
    assert [positions.decide("m1", o, fetch=2) for o in (8, 9)] == [HAND_OUT] * 2


def test_records_dropped_from_a_partition_not_ordered_here_are_kept_for_a_refetch() -> None:
    positions = Positions()
    positions.sought("m0", 5)
    positions.dropped("cl3", 40)  # a changelog partition: recovery reads it, not the agents
    positions.dropped("cl3", 38)
    assert positions.take_rewinds() == {}
    # Until it is sought back, the rest of the fetch in flight is held back: recovery
    # would take a later record and then skip the dropped ones as applied.
    assert positions.holds("cl3")
    assert not positions.holds("m0")
    assert positions.take_refetches() == {"cl3": 38}  # the first dropped record
    assert not positions.holds("cl3")  # released for the fetch after the seek
    assert positions.take_refetches() == {}
    positions.dropped("cl3", 12)
    positions.assigned(["m0"])  # recovery seeks every changelog from its persisted offset
    assert positions.take_refetches() == {}


@dataclass(frozen=True)
class _TP:
    topic: str
    partition: int


class _Consumer:
    """What `refetch_changelogs` reads of Faust's consumer, and the seeks it makes."""

    def __init__(self, assignment: set[_TP], positions: dict[_TP, int | None]) -> None:
        self._assignment = assignment
        self._positions = positions
        self.seeks: list[tuple[_TP, int]] = []

    def assignment(self) -> set[_TP]:
        return self._assignment

    def _is_changelog_tp(self, tp: _TP) -> bool:
        return tp.topic.endswith("-changelog")

    async def position(self, tp: _TP) -> int | None:
        return self._positions[tp]


async def _seek(consumer: _Consumer, tp: _TP, offset: int) -> None:
    consumer.seeks.append((tp, offset))
    consumer._positions[tp] = offset


def test_changelog_records_dropped_unapplied_are_fetched_again_never_skipped_ahead() -> None:
    standby, active, late, gone = (_TP("app-buckets-changelog", p) for p in range(4))
    events = _TP("events", 0)
    consumer = _Consumer(
        {standby, active, late, events},
        {standby: 1889, active: 2043, late: None, events: 90},
    )
    refetch = refetch_changelogs(
        consumer,
        {
            standby: 0,  # fetched up to 1888, all dropped: from 0 again
            active: 2043,  # recovery sought it there since: it comes next anyway
            late: 5,  # no position yet: the consumer's own reset decides
            gone: 7,  # no longer assigned
            events: 80,  # a source partition: Positions orders those
        },
        _seek,
    )
    sought = asyncio.run(refetch)
    assert sought == {standby: 0}
    assert consumer.seeks == [(standby, 0)]


def test_resuming_flow_control_keeps_dropped_changelog_records_for_a_refetch() -> None:
    """The standby replica's loss: the post-recovery resume emptied the changelog queue."""
    install_ordered_fetch()
    positions = positions_of(SimpleNamespace())
    positions.sought("m1", 7)
    flow_control = FlowControlEvent(initially_suspended=False)
    changelog: FlowControlQueue[object] = FlowControlQueue(
        flow_control=flow_control, clear_on_resume=True
    )
    for offset in (0, 1, 2):
        changelog.put_nowait(_Event(_Message("cl3", offset)))
    flow_control.resume()
    assert changelog.empty()
    assert positions.take_rewinds() == {}
    assert positions.take_refetches() == {"cl3": 0}


def test_no_commit_reaches_past_a_floor_and_the_acked_records_above_it_wait() -> None:
    """Evaluate acknowledges records whose matches it still holds; the floor keeps the
    commit below the first of them until it is lifted."""
    from collections import defaultdict

    from faust.transport.consumer import Consumer
    from intervaltree import IntervalTree

    install_ordered_fetch()
    consumer = SimpleNamespace(
        _acked=defaultdict(list),
        _acked_index=defaultdict(set),
        _gap=defaultdict(IntervalTree),
        _committed_offset=defaultdict(lambda: None),
    )
    positions = positions_of(consumer)
    positions.sought("m0", 0)
    consumer._acked["m0"] = [0, 1, 2, 3, 4]
    consumer._acked_index["m0"] = {0, 1, 2, 3, 4}
    positions.floors["m0"] = 2
    assert Consumer._new_offset(consumer, "m0") == 2  # type: ignore[arg-type]
    assert consumer._acked["m0"] == [2, 3, 4]  # still acked, for a later commit
    assert Consumer._new_offset(consumer, "m0") is None  # type: ignore[arg-type]
    del positions.floors["m0"]
    assert Consumer._new_offset(consumer, "m0") == 5  # type: ignore[arg-type]
