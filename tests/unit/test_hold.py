"""EventTimeHold: per-source queues released as a k-way merge by event time."""

from __future__ import annotations

import heapq

from hypothesis import given
from hypothesis import strategies as st

from service.core.hold import EventTimeHold

NO_LIMIT = 10**9


def test_items_wait_for_the_mark_and_come_out_merged_by_event_time() -> None:
    hold: EventTimeHold[str] = EventTimeHold()
    hold.push(0, 30, 1, "a30")
    hold.push(1, 10, 2, "b10")
    hold.push(0, 40, 3, "a40")
    hold.push(2, 10, 4, "c10")
    assert hold.release(None, NO_LIMIT) == []  # unknown mark: nothing is due
    assert hold.release(20, NO_LIMIT) == ["b10", "c10"]  # ties: the lower source first
    assert (hold.earliest(), hold.floor(), len(hold)) == (30, 1, 2)
    assert hold.release(100, NO_LIMIT) == ["a30", "a40"]
    assert (hold.earliest(), hold.floor(), len(hold)) == (None, None, 0)


def test_offset_order_within_a_source_beats_event_time() -> None:
    hold: EventTimeHold[str] = EventTimeHold()
    hold.push(0, 50, 1, "a50")
    hold.push(0, 20, 2, "a20")  # out of order within its partition: stays behind a50
    hold.push(1, 30, 3, "b30")
    assert hold.release(40, NO_LIMIT) == ["b30"]
    assert hold.release(50, NO_LIMIT) == ["a50", "a20"]


def test_past_the_limit_the_earliest_go_without_the_mark() -> None:
    hold: EventTimeHold[int] = EventTimeHold()
    for n in range(5):
        hold.push(n % 2, n, n, n)
    assert hold.release(None, 3) == [0, 1]
    assert len(hold) == 3


def test_a_rollback_leaves_the_hold_as_the_last_commit_did() -> None:
    hold: EventTimeHold[str] = EventTimeHold()
    hold.push(0, 10, 1, "a10")
    hold.push(1, 30, 2, "b30")
    hold.commit()
    hold.push(0, 20, 3, "a20")
    hold.push(1, 40, 4, "b40")
    assert hold.release(35, NO_LIMIT) == ["a10", "a20", "b30"]
    hold.rollback()
    assert (len(hold), hold.floor(), hold.earliest()) == (2, 1, 10)
    assert hold.release(100, NO_LIMIT) == ["a10", "b30"]


@given(
    st.lists(
        st.lists(st.integers(0, 50), max_size=8),
        min_size=1,
        max_size=4,
    )
)
def test_a_full_release_is_heapq_merge_of_the_sources(sources: list[list[int]]) -> None:
    hold: EventTimeHold[tuple[int, int, int]] = EventTimeHold()
    offset = 0
    for source, times in enumerate(sources):
        for position, occurred in enumerate(times):
            offset += 1
            hold.push(source, occurred, offset, (occurred, source, position))
    expected = list(
        heapq.merge(
            *[[(t, s, i) for i, t in enumerate(times)] for s, times in enumerate(sources)],
            key=lambda item: (item[0], item[1]),
        )
    )
    # heapq.merge takes the smallest head, ties to the earlier iterable: the same rule.
    assert hold.release(10**6, NO_LIMIT) == expected
