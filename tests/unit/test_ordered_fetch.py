"""The consumer fix's decisions: records go out in order from the seek, none skipped."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

from mode.utils.queues import FlowControlEvent, FlowControlQueue

from service.messaging.ordered_fetch import (
    Decision,
    Positions,
    install_ordered_fetch,
    positions_of,
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
