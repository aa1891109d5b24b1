"""Fan the history's new events out to live subscribers (the console's feed), never waiting on one."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from service import metrics
from service.actions.outcome_events import ACTION_EVENT_PREFIX

__all__ = ["LiveFeed"]

# What a subscriber's queue holds; None ends its stream.
_Item = dict[str, Any] | None


class LiveFeed:
    """Subscribers each get a bounded queue; a full one loses its oldest events, not the API.

    `publish` runs in the history feed's task: it must never block, so a browser that
    reads slowly (or not at all) only loses events of its own, and is told how many.
    """

    def __init__(self, queue_size: int) -> None:
        self.queue_size = queue_size
        self._queues: dict[asyncio.Queue[_Item], list[int]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closed = False

    @property
    def subscribers(self) -> int:
        return len(self._queues)

    def publish(self, events: list[dict[str, Any]]) -> None:
        """Hand each event to every subscriber, dropping a full queue's oldest."""
        if not self._queues:
            return
        # The history keeps a batch by automation; a feed reads best in time order, each
        # firing before the actions it started, an action's start before its outcome.
        events = sorted(events, key=_feed_order)
        for queue, dropped in self._queues.items():
            for event in events:
                if queue.full():
                    with contextlib.suppress(asyncio.QueueEmpty):
                        queue.get_nowait()
                    dropped[0] += 1
                    metrics.API_LIVE_DROPPED.inc()
                queue.put_nowait(event)

    def close(self) -> None:
        """End every stream now (the server is stopping): an open stream would hold it up."""
        self.closed = True
        for queue in self._queues:
            while not queue.empty():
                queue.get_nowait()
            queue.put_nowait(None)

    def close_threadsafe(self) -> None:
        """`close` from a signal handler: run on the event loop, between its callbacks."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.close)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[tuple[asyncio.Queue[_Item], list[int]]]:
        """A queue of new events (None: the stream ends) and its count of dropped events."""
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[_Item] = asyncio.Queue(self.queue_size)
        dropped = [0]
        if self.closed:
            queue.put_nowait(None)
        self._queues[queue] = dropped
        metrics.API_LIVE_SUBSCRIBERS.set(len(self._queues))
        try:
            yield queue, dropped
        finally:
            self._queues.pop(queue, None)
            metrics.API_LIVE_SUBSCRIBERS.set(len(self._queues))


def _feed_order(event: dict[str, Any]) -> tuple[datetime, int]:
    try:
        moment = datetime.fromisoformat(str(event.get("occurred")))
    except ValueError:
        moment = datetime.min.replace(tzinfo=UTC)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    name = str(event.get("event", ""))
    rank = (
        0 if not name.startswith(ACTION_EVENT_PREFIX) else 1 if name.endswith(".triggered") else 2
    )
    return moment, rank
