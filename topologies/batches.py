"""Run an agent's batch so that a batch it did not finish is read again, never committed."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Any

__all__ = ["unfinished_stays_uncommitted"]


async def unfinished_stays_uncommitted(batch: Sequence[Any], work: Awaitable[None]) -> None:
    """Await the batch's work; if it does not finish, keep the batch's offsets uncommitted.

    Faust's `take_events` acks every event of the batch in a `finally`, also when the body
    was cancelled (a worker stopping, SIGTERM) or failed, and the consumer commits acked
    offsets on its way out: those events would be lost. One extra reference per message
    keeps the ack from reaching zero, so the offsets stay behind them and the next owner
    of the partition reads them again (the redelivery guards drop what was applied).
    """
    try:
        await work
    except BaseException:
        for event in batch:
            event.message.incref()
        raise
