"""Stream time at the route stage: each owned events partition's watermark, sent onwards.

Route keeps a `SourceClock` per events partition it owns (service/core/watermarks.py)
and tells every matches partition their marks (`send_progress`): on a timer, and after
each batch to the partitions the batch sent matches to, so that evaluate can release
them in event-time order without waiting for the timer. Each evaluate partition judges
deadlines by the slowest of its sources, idle ones included. Whether
route has read a partition to its end comes from the consumer's last fetch of it: its
high watermark and the time of that fetch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from faust.types import TP

from service.core.watermarks import SourceClock
from service.messaging.ordered_fetch import positions_of
from service.messaging.records import Progress, encode_progress
from topologies.runtime import Runtime

__all__ = ["RouteProgress", "progress_tick", "send_progress"]

logger = logging.getLogger(__name__)


class RouteProgress:
    """The clocks of the events partitions this worker routes."""

    def __init__(self, runtime: Runtime, consumer: Callable[[], Any]) -> None:
        self._topic = runtime.settings.topic_events
        self._consumer = consumer
        self.allowance = round(runtime.settings.disorder_allowance * 1_000_000)
        self.clocks: dict[int, SourceClock] = {}
        # events partition -> the offset after the last record route finished
        self._routed: dict[int, int] = {}
        # A batch was routed since the last timed report: matches may wait for the next.
        self.busy = False
        self.reported_at = float("-inf")  # time.monotonic() of the last timed report

    def watermark(self, partition: int) -> int | None:
        """The partition's watermark now, from what route has read (None: unknown)."""
        clock = self.clocks.get(partition)
        return None if clock is None else clock.watermark(self.allowance)

    def read(
        self, partition: int, next_offset: int, occurred: tuple[int, int] | None, wall: int
    ) -> None:
        """Route finished a batch of the partition up to `next_offset`.

        `occurred`: the earliest and latest `occurred` of its valid events, if any.
        """
        self._routed[partition] = next_offset
        self.busy = True
        clock = self.clocks.setdefault(partition, SourceClock())
        caught_up_at = self._caught_up_at(partition)
        if occurred is not None:
            clock.read(*occurred, wall, caught_up_at=caught_up_at)
        elif caught_up_at is not None:
            clock.idle(caught_up_at)

    def refresh(self, partitions: Iterable[int]) -> list[Progress]:
        """The marks of each partition, after a look at what its last fetch proved."""
        marks: list[Progress] = []
        for partition in sorted(partitions):
            clock = self.clocks.setdefault(partition, SourceClock())
            caught_up_at = self._caught_up_at(partition)
            if caught_up_at is not None:
                clock.idle(caught_up_at)
            mark, order = clock.watermark(self.allowance), clock.order_mark()
            if mark is not None and order is not None:
                marks.append((partition, mark, order))
        return marks

    def reset(self) -> None:
        """Partitions changed hands: what was read of them is the new owner's to tell."""
        self.clocks.clear()
        self._routed.clear()

    def _caught_up_at(self, partition: int) -> int | None:
        """When a fetch last found nothing past what route finished; None: records wait."""
        consumer = self._consumer()
        tp = TP(self._topic, partition)
        try:
            highwater = consumer.highwater(tp)
            # The time aiokafka took that high watermark from a Fetch response: a worker
            # that was paused has proven nothing since, however late the clock now is.
            polled = consumer._thread._ensure_consumer().last_poll_timestamp(tp)
        except Exception:  # noqa: BLE001  # not assigned (any more): nothing proven
            return None
        if highwater is None or polled is None:
            return None
        position = self._routed.get(partition)
        if position is None:
            # Nothing routed since the assignment: only an empty remainder counts.
            position = consumer._committed_offset.get(tp) or 0
            if positions_of(consumer).next.get(tp, position) > position:
                return None  # records were handed out and route has not finished them
        return int(polled) * 1000 if position >= highwater else None


async def send_progress(
    runtime: Runtime, marks: list[Progress], partitions: Iterable[int]
) -> list[Awaitable[Any]]:
    """Send the marks of the source partitions owned here to the given matches partitions."""
    settings = runtime.settings
    pending = []
    if marks:
        value = encode_progress(marks)
        for partition in partitions:
            pending.append(await runtime.send(settings.topic_matches, None, value, partition, None))
    return pending


async def progress_tick(runtime: Runtime, progress: RouteProgress, table: Any) -> None:
    """Tell every evaluate partition the marks of the events partitions owned here.

    Every TRIPWIRE_PROGRESS_INTERVAL while route is reading events (matches elsewhere
    may wait for these marks); while it is idle, only several times per tick (deadlines
    need them), so a quiet worker does not fill the matches topic with reports. Under
    the route table's lock, so that it follows the matches of the batches it speaks for
    on every matches partition.
    """
    if not runtime.automations_loaded.is_set() or table.closed:
        return
    settings = runtime.settings
    now = time.monotonic()
    if not progress.busy and now - progress.reported_at < min(1.0, settings.tick_interval / 5):
        return
    progress.busy, progress.reported_at = False, now
    try:
        async with table.lock:
            marks = progress.refresh(table.active_partitions())
            partitions = range(settings.partitions)
            await asyncio.gather(*await send_progress(runtime, marks, partitions))
    except Exception:  # a missed report only delays deadlines until the next one
        logger.warning("could not send the stream's progress", exc_info=True)
