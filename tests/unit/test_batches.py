"""A batch an agent did not finish keeps its offsets uncommitted and is read again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from faust.types import TP
from faust.types.tuples import Message

from service.errors import TableClosed
from service.messaging.ordered_fetch import Positions
from topologies import batches
from topologies.batches import BatchRunner

_TP = TP("t", 0)


@dataclass
class _Event:
    message: Message


def _batch(*offsets: int) -> list[_Event]:
    events = [_Event(Message("t", 0, offset, 0.0, 0, None, None, b"v", _TP)) for offset in offsets]
    for event in events:
        event.message.incref()  # the one stream that received it, as Faust counts
    return events


def _take_events_finally(batch: list[_Event]) -> list[bool]:
    # What Faust's take_events does after the body, whether or not it finished; an acked
    # message is one the consumer may commit past.
    for event in batch:
        event.message.ack(None)  # type: ignore[arg-type]  # unused by Message.ack
    return [event.message.acked for event in batch]


def _runner() -> tuple[BatchRunner, Positions, dict[str, str]]:
    positions = Positions()
    positions.assigned([_TP])
    positions.sought(_TP, 5)
    for offset in range(5, 20):
        positions.decide(_TP, offset, 1)  # handed out
    stalled: dict[str, str] = {}
    return BatchRunner("route", lambda: positions, stalled), positions, stalled


@pytest.fixture(autouse=True)
def _no_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batches, "RETRY_FIRST", 0.0)


def _work(fail: BaseException | None, seen: list[int] | None = None) -> Any:
    async def work(batch: Sequence[Any]) -> None:
        if seen is not None:
            seen.extend(event.message.offset for event in batch)
        await asyncio.sleep(0)
        if fail is not None:
            raise fail

    return work


def test_a_failed_batch_is_not_acked_and_its_partition_is_rewound() -> None:
    runner, positions, stalled = _runner()
    batch = _batch(7, 8)
    asyncio.run(runner.run(batch, _work(RuntimeError("send refused"))))
    assert _take_events_finally(batch) == [False, False]
    assert positions.take_rewinds() == {_TP: 7}
    assert "send refused" in stalled["route"]
    # Acked records past the failed one may not carry the commit past it...
    assert not positions.may_commit_from(_TP, 9, {9, 10})
    # ...until it was handed out again and acked.
    assert positions.may_commit_from(_TP, 7, {7, 8, 9})


def test_records_fetched_before_the_rewind_are_skipped_until_it_comes_again() -> None:
    runner, _, stalled = _runner()
    asyncio.run(runner.run(_batch(7, 8), _work(RuntimeError("send refused"))))
    seen: list[int] = []
    stale = _batch(9, 10)
    asyncio.run(runner.run(stale, _work(None, seen)))
    assert seen == []
    assert _take_events_finally(stale) == [False, False]
    again = _batch(7, 8, 9)
    asyncio.run(runner.run(again, _work(None, seen)))
    assert seen == [7, 8, 9]
    assert _take_events_finally(again) == [True, True, True]
    assert stalled == {}  # a batch that succeeds ends the stall


@pytest.mark.parametrize("fail", [asyncio.CancelledError(), KeyboardInterrupt()])
def test_a_cancelled_batch_is_not_acked_and_goes_on_raising(fail: BaseException) -> None:
    runner, positions, _ = _runner()
    batch = _batch(5, 6)
    with pytest.raises(type(fail)):
        asyncio.run(runner.run(batch, _work(fail)))
    assert _take_events_finally(batch) == [False, False]
    assert positions.take_rewinds() == {}  # the worker is stopping: the next owner reads it


def test_a_batch_that_met_closed_tables_ends_quietly_uncommitted() -> None:
    runner, _, stalled = _runner()
    batch = _batch(5, 6)
    asyncio.run(runner.run(batch, _work(TableClosed("stopping"))))
    assert _take_events_finally(batch) == [False, False]
    assert stalled == {}


def test_a_finished_batch_is_acked() -> None:
    runner, positions, _ = _runner()
    batch = _batch(5, 6)
    asyncio.run(runner.run(batch, _work(None)))
    assert _take_events_finally(batch) == [True, True]
    assert positions.may_commit_from(_TP, 5, {5, 6})
