"""A batch an agent did not finish keeps its offsets uncommitted (Faust acks it anyway)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from faust.types.tuples import Message

from topologies.batches import unfinished_stays_uncommitted


@dataclass
class _Event:
    message: Message


def _batch() -> list[_Event]:
    events = [_Event(Message("t", 0, offset, 0.0, 0, None, None, b"v", None)) for offset in (5, 6)]
    for event in events:
        event.message.incref()  # the one stream that received it, as Faust counts
    return events


def _take_events_finally(batch: list[_Event]) -> list[bool]:
    # What Faust's take_events does after the body, whether or not it finished; an acked
    # message is one the consumer may commit past.
    for event in batch:
        event.message.ack(None)  # type: ignore[arg-type]  # unused by Message.ack
    return [event.message.acked for event in batch]


async def _work(fail: BaseException | None) -> None:
    await asyncio.sleep(0)
    if fail is not None:
        raise fail


@pytest.mark.parametrize("fail", [asyncio.CancelledError(), RuntimeError("bug")])
def test_an_unfinished_batch_is_not_acked(fail: BaseException) -> None:
    batch = _batch()
    with pytest.raises(type(fail)):
        asyncio.run(unfinished_stays_uncommitted(batch, _work(fail)))
    assert _take_events_finally(batch) == [False, False]


def test_a_finished_batch_is_acked() -> None:
    batch = _batch()
    asyncio.run(unfinished_stays_uncommitted(batch, _work(None)))
    assert _take_events_finally(batch) == [True, True]
