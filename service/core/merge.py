"""The stream's order across events partitions: a k-way merge by event time (`occurred`).

Each partition is read in offset order; the live evaluate stage applies a partition's
matches once the watermark (the minimum event time over every partition) passes them,
so across partitions the stream's order is: repeatedly take the partition whose next
event has the smallest `occurred`, the lower partition number on a tie. A partition's
own order is never changed, even where its `occurred` goes back (a late event is
applied where its partition delivers it). Pure: no I/O, no clock; `backtest` feeds it
Kafka partitions, tests feed it lists.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

__all__ = ["merge_by_event_time"]

T = TypeVar("T")


def merge_by_event_time(
    partitions: Iterable[Iterable[T]], occurred: Callable[[T], int]
) -> Iterator[T]:
    """Every item of every partition, merged by `occurred(item)`; ties: earlier partition.

    `partitions` are in partition-number order. Each is read lazily, one item ahead, so
    the merge holds one item per partition however long the partitions are.
    """
    # (occurred, partition index, item, rest): the index is unique in the heap, so
    # items themselves are never compared.
    heap: list[tuple[int, int, T, Iterator[T]]] = []
    for index, partition in enumerate(partitions):
        rest = iter(partition)
        for first in rest:
            heap.append((occurred(first), index, first, rest))
            break
    heapq.heapify(heap)
    while heap:
        _, index, item, rest = heap[0]
        yield item
        for following in rest:
            heapq.heapreplace(heap, (occurred(following), index, following, rest))
            break
        else:
            heapq.heappop(heap)
