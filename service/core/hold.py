"""Matches from several source partitions, held and released in event-time order.

An evaluate partition receives the matches of every events partition, interleaved in
whatever order route's batches happened to be fetched. Applying them in that order
made the stream name other triggering events than `tripwire replay` (issue 18). Each
source's matches wait in a queue of their own, in offset order; `release` hands out,
repeatedly, the head with the earliest `occurred` (ties: the lower source) while it is
at or before the order mark every source has been read to (service/core/watermarks.py):
a k-way merge, which is also the order `tripwire backtest` reads a topic in.

A batch that fails is undone (`rollback`): what it released goes back to the heads of
its queues and what it added goes, so that reading the batch again finds the hold as
it was. Nothing here reads a clock or knows Kafka.
"""

from __future__ import annotations

from collections import deque
from typing import Generic, TypeVar

__all__ = ["EventTimeHold"]

T = TypeVar("T")

# (occurred, offset of the record that carried it, item)
_Entry = tuple[int, int, T]


class EventTimeHold(Generic[T]):
    """Per-source queues of items, released merged by event time below a mark."""

    __slots__ = ("_added", "_queues", "_released", "latest_released", "size")

    def __init__(self) -> None:
        self._queues: dict[int, deque[_Entry[T]]] = {}
        self.size = 0
        # The latest occurred released so far: an item older than it is out of order.
        self.latest_released: int | None = None
        # Since the last `commit`: sources added to, and what was released (to undo).
        self._added: list[int] = []
        self._released: list[tuple[int, _Entry[T]]] = []

    def __len__(self) -> int:
        return self.size

    def push(self, source: int, occurred: int, offset: int, item: T) -> None:
        """An item of `source`, after every earlier one of that source."""
        queue = self._queues.get(source)
        if queue is None:
            queue = self._queues[source] = deque()
        queue.append((occurred, offset, item))
        self._added.append(source)
        self.size += 1

    def release(self, mark: int | None, keep_at_most: int) -> list[T]:
        """Items in event-time order while the earliest is at or before `mark`.

        Past `keep_at_most` held items, the earliest go regardless of the mark: a
        source that never reports (no owner) must not grow the hold without bound.
        """
        out: list[T] = []
        queues = self._queues
        while self.size:
            source = -1
            best: _Entry[T] | None = None
            for candidate, queue in queues.items():
                if queue and (
                    best is None
                    or queue[0][0] < best[0]
                    or (queue[0][0] == best[0] and candidate < source)
                ):
                    source, best = candidate, queue[0]
            assert best is not None  # noqa: S101  # size > 0: some queue has a head
            if (mark is None or best[0] > mark) and self.size <= keep_at_most:
                break
            queues[source].popleft()
            self.size -= 1
            self._released.append((source, best))
            if self.latest_released is None or best[0] > self.latest_released:
                self.latest_released = best[0]
            out.append(best[2])
        return out

    def earliest(self) -> int | None:
        """The earliest `occurred` held, or None when nothing is."""
        heads = [queue[0][0] for queue in self._queues.values() if queue]
        return min(heads) if heads else None

    def floor(self) -> int | None:
        """The lowest record offset an item still held came in; None when nothing is."""
        heads = [queue[0][1] for queue in self._queues.values() if queue]
        return min(heads) if heads else None

    def commit(self) -> None:
        """The batch that pushed and released since the last commit succeeded."""
        self._added.clear()
        self._released.clear()

    def rollback(self) -> None:
        """Undo every push and release since the last commit."""
        queues = self._queues
        # Released items return to the heads they left, latest first; the items the
        # batch added are then the last of their queues.
        for source, entry in reversed(self._released):
            queues[source].appendleft(entry)
        for source in reversed(self._added):
            queues[source].pop()
        self.size += len(self._released) - len(self._added)
        self.commit()
