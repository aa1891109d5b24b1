"""Run an agent's batch so that a batch it did not finish is read again, never committed."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Sequence
from typing import Any

from service.errors import TableClosed

__all__ = ["unfinished_stays_uncommitted"]

logger = logging.getLogger(__name__)


async def unfinished_stays_uncommitted(batch: Sequence[Any], work: Awaitable[None]) -> None:
    """Await the batch's work; if it does not finish, keep the batch's offsets uncommitted.

    Faust's `take_events` acks every event of the batch in a `finally`, also when the body
    was cancelled (a worker stopping, SIGTERM) or failed, and the consumer commits acked
    offsets on its way out: those events would be lost. One extra reference per message
    keeps the ack from reaching zero, so the offsets stay behind them and the next owner
    of the partition reads them again (the redelivery guards drop what was applied).
    A batch that met closed tables (the worker is stopping) ends quietly the same way.
    """
    try:
        await work
    except TableClosed as exc:
        _keep_uncommitted(batch)
        logger.info("batch of %d left for the next owner: %s", len(batch), exc)
    except BaseException:
        _keep_uncommitted(batch)
        raise


def _keep_uncommitted(batch: Sequence[Any]) -> None:
    for event in batch:
        event.message.incref()
