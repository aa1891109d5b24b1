"""Run an agent's batches so that a batch it did not finish is read again, never committed."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from service.errors import TableClosed
from service.messaging.ordered_fetch import Positions
from service.metrics import BATCH_FAILURES, STALLED_PARTITIONS

__all__ = ["BatchRunner"]

logger = logging.getLogger(__name__)

# Seconds before a failed batch's partitions are read again: doubled per failure in a
# row, up to the cap (short enough that a rebalance does not wait long for the agent).
RETRY_FIRST = 0.5
RETRY_MAX = 10.0


class BatchRunner:
    """One agent's batches: a failed batch is rewound and read again after a pause.

    Faust's `take_events` acks every event of a batch in a `finally`, also when the body
    failed or was cancelled (a worker stopping, SIGTERM), and the consumer commits acked
    offsets: those events would be lost. One extra reference per message keeps the ack
    from reaching zero, so the offsets stay behind them. A batch that failed (a send the
    broker refused, a dead-letter topic that cannot be written) has its partitions
    rewound to it, and they are read again after a pause that grows while it keeps
    failing; meanwhile they are reported stalled (metric, readiness, log). A batch
    that met closed tables (the worker is stopping) ends quietly, uncommitted, for the
    next owner of its partitions.
    """

    def __init__(
        self, name: str, positions: Callable[[], Positions], stalled: dict[str, str]
    ) -> None:
        self.name = name
        self._positions = positions
        self._stalled = stalled
        self._failures = 0
        self._shown: set[tuple[str, int]] = set()

    async def run(
        self, batch: Sequence[Any], work: Callable[[Sequence[Any]], Awaitable[None]]
    ) -> None:
        """Do `work` over the batch's fresh records; on failure rewind, report and pause."""
        positions = self._positions()
        fresh = []
        for event in batch:
            message = event.message
            if positions.stale(message.tp, message.offset):
                message.incref()  # fetched before a rewind: read again after it, in order
            else:
                fresh.append(event)
        if not fresh:
            return
        try:
            await work(fresh)
        except TableClosed as exc:
            _keep_uncommitted(fresh)
            logger.info("batch of %d left for the next owner: %s", len(fresh), exc)
            return
        except Exception as exc:  # noqa: BLE001  # any failure: read the batch again
            _keep_uncommitted(fresh)
            await self._failed(fresh, exc, positions)
            return
        except BaseException:
            _keep_uncommitted(fresh)
            raise
        if self._failures:
            self._recovered()

    async def _failed(self, batch: Sequence[Any], exc: Exception, positions: Positions) -> None:
        first: dict[Any, int] = {}
        for event in batch:
            message = event.message
            first[message.tp] = min(message.offset, first.get(message.tp, message.offset))
        rewound = {tp: offset for tp, offset in first.items() if positions.rewind(tp, offset)}
        self._failures += 1
        delay = min(RETRY_MAX, RETRY_FIRST * 2 ** (self._failures - 1))
        where = ", ".join(f"{tp.topic}[{tp.partition}]@{offset}" for tp, offset in rewound.items())
        self._stalled[self.name] = f"a batch failed: {exc}; reading again from {where}"
        BATCH_FAILURES.labels(self.name).inc()
        for tp in rewound:
            STALLED_PARTITIONS.labels(tp.topic, str(tp.partition)).set(1)
            self._shown.add((tp.topic, tp.partition))
        logger.error(
            "%s: a batch of %d records failed (%s); nothing of it is committed, and %s "
            "will be read again in %.1f s (failure %d in a row)",
            self.name,
            len(batch),
            exc,
            where or "its partitions (reassigned meanwhile)",
            delay,
            self._failures,
            exc_info=exc,
        )
        await asyncio.sleep(delay)

    def _recovered(self) -> None:
        logger.warning("%s: batches succeed again after %d failures", self.name, self._failures)
        self._failures = 0
        self._stalled.pop(self.name, None)
        for topic, partition in self._shown:
            STALLED_PARTITIONS.remove(topic, str(partition))
        self._shown.clear()


def _keep_uncommitted(batch: Sequence[Any]) -> None:
    for event in batch:
        event.message.incref()
