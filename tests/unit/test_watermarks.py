"""Stream time: one partition's watermark, and the minimum over every source."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.core.watermarks import SourceClock, Watermarks

S = 1_000_000
A = 2 * S  # disorder allowance


def test_unknown_until_the_partition_was_read_or_found_empty() -> None:
    clock = SourceClock()
    assert clock.watermark(A) is None
    clock.idle(100 * S)
    assert clock.watermark(A) == 98 * S


def test_a_caught_up_partition_moves_with_the_fetches_that_prove_it_quiet() -> None:
    clock = SourceClock()
    clock.read(10 * S, 12 * S, 13 * S, caught_up_at=13 * S)
    assert clock.watermark(A) == 10 * S  # latest occurred, less the allowance
    clock.idle(43 * S)  # 30 s later a fetch still found nothing new
    assert clock.watermark(A) == 40 * S


def test_a_paused_worker_proves_nothing_for_the_pause() -> None:
    clock = SourceClock()
    clock.read(10 * S, 12 * S, 13 * S, caught_up_at=13 * S)
    # The worker wakes 60 s later: no fetch since; the watermark has not moved.
    assert clock.watermark(A) == 10 * S
    # Its first batch after the pause still has records behind it (a backlog).
    clock.read(14 * S, 20 * S, 73 * S, caught_up_at=None)
    assert clock.watermark(A) == 12 * S


def test_a_backlog_of_old_events_holds_the_watermark_where_the_backlog_is() -> None:
    clock = SourceClock()
    clock.read(100 * S, 101 * S, 101 * S, caught_up_at=101 * S)  # a live stream
    clock.read(0, 5 * S, 102 * S, caught_up_at=None)  # a bridge delivers 100 s-old events
    assert clock.watermark(A) == -2 * S
    clock.read(6 * S, 9 * S, 103 * S, caught_up_at=None)
    assert clock.watermark(A) == 4 * S
    clock.read(10 * S, 102 * S, 104 * S, caught_up_at=104 * S)  # read to the end
    assert clock.watermark(A) == 100 * S


def test_occurred_in_the_future_counts_as_the_time_it_was_read() -> None:
    clock = SourceClock()
    clock.read(500 * S, 900 * S, 100 * S, caught_up_at=100 * S)
    assert clock.watermark(A) == 98 * S


def test_the_merged_watermark_waits_for_every_source_and_is_their_minimum() -> None:
    marks = Watermarks(3)
    marks.advance(0, 50, 50)
    marks.advance(1, 40, 40)
    assert marks.current() is None
    marks.advance(2, 45, 45)
    assert marks.current() == 40
    marks.advance(1, 60, 60)
    assert marks.current() == 45


def test_order_marks_are_merged_apart_from_the_watermarks() -> None:
    marks = Watermarks(2)
    marks.advance(0, 10, 30)
    assert marks.order() is None
    marks.advance(1, 20, 25)
    assert (marks.current(), marks.order()) == (10, 25)
    marks.lower(1, 5)  # a late event holds deadlines back, not the order
    assert (marks.current(), marks.order()) == (5, 25)


def test_the_order_mark_is_the_backlog_or_the_fetch_that_proved_the_end() -> None:
    clock = SourceClock()
    assert clock.order_mark() is None
    clock.read(40 * S, 60 * S, 100 * S, caught_up_at=None)
    assert clock.order_mark() == 60 * S  # no allowance: ordering waits for reads only
    clock.read(70 * S, 80 * S, 101 * S, caught_up_at=101 * S)
    assert clock.order_mark() == 101 * S
    clock.idle(105 * S)
    assert clock.order_mark() == 105 * S


def test_a_late_event_lowers_its_source_until_the_source_reports_again() -> None:
    marks = Watermarks(2)
    marks.lower(0, 5)  # a source not heard from yet stays unknown
    marks.advance(0, 100, 100)
    marks.advance(1, 90, 90)
    marks.lower(0, 20)
    assert marks.current() == 20
    marks.lower(0, 50)  # never raised by a lower bound
    assert marks.current() == 20
    marks.advance(0, 100, 100)
    assert marks.current() == 90


@given(
    st.lists(
        st.tuples(st.integers(0, 10**6), st.integers(0, 10**6), st.booleans()),
        min_size=1,
        max_size=30,
    )
)
def test_the_watermark_never_runs_ahead_of_the_clock_that_read_it(
    batches: list[tuple[int, int, bool]],
) -> None:
    clock = SourceClock()
    wall = 0
    for first, span, caught_up in batches:
        wall += 1000
        clock.read(first, first + span, wall, caught_up_at=wall if caught_up else None)
        mark = clock.watermark(0)
        assert mark is not None and mark <= wall
