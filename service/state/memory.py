"""In-memory `StateStore`: plain dicts plus a heap of bucket ends."""

from __future__ import annotations

import heapq
import operator
from collections.abc import Iterator

from mypy_extensions import mypyc_attr

from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.store import Bucket, BucketKey, HeldEvent

__all__ = ["MemoryStateStore"]

_HELD_AT = operator.itemgetter(2)  # HeldEvent.held_at, read in C


# Compiled by mypyc (tools/compile_core.py); DocumentStore and test stores extend it.
@mypyc_attr(allow_interpreted_subclasses=True)
class MemoryStateStore:
    """Holds everything in process memory; used by replay, tests and benchmarks."""

    def __init__(self, max_seen: int | None = None) -> None:
        # Beyond `max_seen` remembered ids the oldest are forgotten first (a memory bound
        # for the stream service; None keeps every id for the whole 30 minutes).
        self._max_seen = max_seen
        self._buckets: dict[tuple[str, BucketKey], Bucket] = {}
        # (end, trigger_id, key) in a min-heap; an entry no longer matching its bucket
        # is stale and dropped when it reaches the top or the heap is compacted.
        self._ends: list[tuple[int, str, BucketKey]] = []
        self._trigger_keys: dict[str, dict[BucketKey, None]] = {}
        self._satisfied: dict[str, set[BucketKey]] = {}
        self._held: dict[tuple[str, BucketKey], list[HeldEvent]] = {}
        # (earliest held_at, trigger_id, key) in a min-heap, stale entries dropped lazily.
        self._held_first: list[tuple[int, str, BucketKey]] = []
        self._children: dict[str, list[Firing]] = {}
        self._seen: dict[str, int] = {}
        # (at, event_id) in a min-heap; an entry whose id was marked again is stale.
        self._seen_by_time: list[tuple[int, str]] = []
        self._followers: dict[str, dict[str, EventRecord]] = {}
        self._meta: dict[str, int] = {}
        self._metric: dict[str, bytes] = {}

    # -- buckets ------------------------------------------------------------------
    def bucket(self, trigger_id: str, key: BucketKey) -> Bucket | None:
        return self._buckets.get((trigger_id, key))

    def put_bucket(
        self, trigger_id: str, key: BucketKey, bucket: Bucket, *, satisfied: bool = False
    ) -> None:
        pair = (trigger_id, key)
        old = self._buckets.get(pair)
        if old is None:
            keys = self._trigger_keys.get(trigger_id)
            if keys is None:
                keys = self._trigger_keys[trigger_id] = {}
            keys[key] = None
        # Stored before the index may be compacted: a compaction rebuilds it from the
        # stored buckets, and one stored after it was left out of the index for good
        # (it never came due: a proactive bucket that never fired, found by the
        # reliability suite's rebalance run).
        self._buckets[pair] = bucket
        if old is None or old.end != bucket.end:
            heapq.heappush(self._ends, (bucket.end, trigger_id, key))
            if len(self._ends) > 2 * len(self._buckets) + 1024:
                self._compact_ends()
        if satisfied:
            self._satisfied.setdefault(trigger_id, set()).add(key)
        elif trigger_id in self._satisfied:
            self._satisfied[trigger_id].discard(key)

    def delete_bucket(self, trigger_id: str, key: BucketKey) -> None:
        if self._buckets.pop((trigger_id, key), None) is None:
            return
        keys = self._trigger_keys[trigger_id]
        del keys[key]
        if not keys:
            del self._trigger_keys[trigger_id]
        if trigger_id in self._satisfied:
            self._satisfied[trigger_id].discard(key)

    def _live(self, entry: tuple[int, str, BucketKey]) -> bool:
        bucket = self._buckets.get((entry[1], entry[2]))
        return bucket is not None and bucket.end == entry[0]

    def _compact_ends(self) -> None:
        self._ends = [(b.end, t, k) for (t, k), b in self._buckets.items()]
        heapq.heapify(self._ends)

    def satisfied_keys(self, trigger_id: str) -> list[BucketKey]:
        return sorted(self._satisfied.get(trigger_id, ()))

    def satisfied_buckets(self) -> list[tuple[str, BucketKey]]:
        return sorted((t, k) for t, keys in self._satisfied.items() for k in keys)

    def due_buckets(self, trigger_id: str, as_of: int) -> list[tuple[BucketKey, Bucket]]:
        keys = self._trigger_keys.get(trigger_id)
        if not keys:
            return []
        buckets = self._buckets
        due = [(key, buckets[(trigger_id, key)]) for key in keys]
        due = [(key, bucket) for key, bucket in due if bucket.end <= as_of]
        due.sort(key=lambda item: (item[1].end, item[0]))
        return due

    def next_end_after(self, trigger_id: str, moment: int) -> int | None:
        keys = self._trigger_keys.get(trigger_id)
        if not keys:
            return None
        buckets = self._buckets
        ends = [buckets[(trigger_id, key)].end for key in keys]
        later = [end for end in ends if end > moment]
        return min(later) if later else None

    def expired_buckets(self, cutoff: int) -> list[tuple[str, BucketKey]]:
        heap = self._ends
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        # Walk the heap from its root: a node past the cutoff hides its whole subtree.
        found: set[tuple[int, str, BucketKey]] = set()
        stack = [0]
        size = len(heap)
        while stack:
            index = stack.pop()
            if index >= size or heap[index][0] > cutoff:
                continue
            if self._live(heap[index]):
                found.add(heap[index])
            stack.append(2 * index + 1)
            stack.append(2 * index + 2)
        return [(trigger_id, key) for _, trigger_id, key in sorted(found)]

    def buckets(self, trigger_id: str) -> Iterator[tuple[BucketKey, Bucket]]:
        for key in sorted(self._trigger_keys.get(trigger_id, ())):
            yield key, self._buckets[(trigger_id, key)]

    def bucket_count(self) -> int:
        return len(self._buckets)

    def trigger_bucket_count(self, trigger_id: str) -> int:
        """Open buckets of one trigger (the per-trigger bound of service/core/limits.py)."""
        return len(self._trigger_keys.get(trigger_id, ()))

    # -- held expect events -----------------------------------------------------------
    def held(self, trigger_id: str, key: BucketKey) -> list[HeldEvent]:
        return list(self._held.get((trigger_id, key), ()))

    def put_held(self, trigger_id: str, key: BucketKey, events: list[HeldEvent]) -> None:
        if events:
            self._held[(trigger_id, key)] = list(events)
            first = min(map(_HELD_AT, events))
            heapq.heappush(self._held_first, (first, trigger_id, key))
            if len(self._held_first) > 2 * len(self._held) + 1024:
                self._held_first = [
                    (min(map(_HELD_AT, held)), t, k) for (t, k), held in self._held.items()
                ]
                heapq.heapify(self._held_first)
        else:
            self._held.pop((trigger_id, key), None)

    def held_keys_held_before(self, cutoff: int) -> list[tuple[str, BucketKey]]:
        heap = self._held_first
        found: set[tuple[str, BucketKey]] = set()
        stack = [0]
        while stack:
            index = stack.pop()
            if index >= len(heap) or heap[index][0] >= cutoff:
                continue
            _, trigger_id, key = heap[index]
            held = self._held.get((trigger_id, key))
            if held is not None and any(h.held_at < cutoff for h in held):
                found.add((trigger_id, key))
            stack.append(2 * index + 1)
            stack.append(2 * index + 2)
        # Entries of keys whose early events are gone are stale once they reach the top.
        while heap and (heap[0][1], heap[0][2]) not in self._held:
            heapq.heappop(heap)
        return sorted(found)

    def held_keys(self) -> list[tuple[str, BucketKey]]:
        return sorted(self._held)

    # -- composite child firings --------------------------------------------------------
    def child_firings(self, composite_id: str) -> list[Firing]:
        return list(self._children.get(composite_id, ()))

    def put_child_firings(self, composite_id: str, firings: list[Firing]) -> None:
        if firings:
            self._children[composite_id] = list(firings)
        else:
            self._children.pop(composite_id, None)

    # -- processed event ids ----------------------------------------------------------------
    def seen_at(self, event_id: str) -> int | None:
        return self._seen.get(event_id)

    def mark_seen(self, event_id: str, at: int) -> None:
        self._seen[event_id] = at
        heapq.heappush(self._seen_by_time, (at, event_id))
        if self._max_seen is not None and len(self._seen) > self._max_seen:
            heap, seen = self._seen_by_time, self._seen
            while len(seen) > self._max_seen:
                old_at, old_id = heapq.heappop(heap)
                if seen.get(old_id) == old_at:
                    del seen[old_id]

    def forget_seen_before(self, cutoff: int) -> None:
        # By time, not by marking order: a wall clock can step back, so a later mark may
        # carry an earlier time.
        heap, seen = self._seen_by_time, self._seen
        while heap and heap[0][0] < cutoff:
            at, event_id = heapq.heappop(heap)
            if seen.get(event_id) == at:
                del seen[event_id]

    # -- causal ordering ------------------------------------------------------------------
    def add_follower(self, event: EventRecord) -> None:
        self._followers.setdefault(_leader(event), {})[event.id] = event

    def followers_of(self, leader_id: str) -> list[EventRecord]:
        waiting = self._followers.get(leader_id)
        if not waiting:
            return []
        return sorted(waiting.values(), key=lambda e: (e.occurred, e.id))

    def remove_follower(self, event: EventRecord) -> None:
        leader = _leader(event)
        waiting = self._followers.get(leader)
        if waiting is not None:
            waiting.pop(event.id, None)
            if not waiting:
                del self._followers[leader]

    def followers_received_by(self, cutoff: int) -> list[EventRecord]:
        lost = [
            event
            for waiting in self._followers.values()
            for event in waiting.values()
            if event.received is not None and event.received <= cutoff
        ]
        return sorted(lost, key=lambda e: (e.occurred, e.id))

    # -- named values --------------------------------------------------------------------
    def meta(self, name: str) -> int | None:
        return self._meta.get(name)

    def put_meta(self, name: str, value: int | None) -> None:
        if value is None:
            self._meta.pop(name, None)
        else:
            self._meta[name] = value

    # -- metric triggers ---------------------------------------------------------------------
    def metric_state(self, trigger_id: str) -> bytes | None:
        return self._metric.get(trigger_id)

    def put_metric_state(self, trigger_id: str, data: bytes | None) -> None:
        if data is None:
            self._metric.pop(trigger_id, None)
        else:
            self._metric[trigger_id] = data

    # -- when a tick is next due (service/core/idle.py) ----------------------------------
    def earliest_bucket_end(self) -> int | None:
        """The smallest end of any open bucket (a stale heap entry may make it earlier)."""
        heap = self._ends
        while heap and not self._live(heap[0]):
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def has_satisfied(self) -> bool:
        """Some proactive bucket is stored as satisfied (the next tick deletes it)."""
        return any(self._satisfied.values())

    def earliest_held_at(self) -> int | None:
        """The earliest first-held time of any key holding events (stale: earlier)."""
        heap = self._held_first
        while heap and (heap[0][1], heap[0][2]) not in self._held:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    def earliest_follower_received(self) -> int | None:
        """The earliest `received` among the held followers."""
        times = [
            event.received
            for waiting in self._followers.values()
            for event in waiting.values()
            if event.received is not None
        ]
        return min(times) if times else None

    def earliest_seen(self) -> int | None:
        """The earliest time a remembered id was marked (stale: earlier)."""
        heap, seen = self._seen_by_time, self._seen
        while heap and seen.get(heap[0][1]) != heap[0][0]:
            heapq.heappop(heap)
        return heap[0][0] if heap else None

    # -- lifecycle ---------------------------------------------------------------------------
    def drop_trigger(self, trigger_id: str) -> None:
        for key in list(self._trigger_keys.get(trigger_id, ())):
            self.delete_bucket(trigger_id, key)
        self._satisfied.pop(trigger_id, None)
        for held_key in [k for k in self._held if k[0] == trigger_id]:
            del self._held[held_key]
        self._children.pop(trigger_id, None)
        self._metric.pop(trigger_id, None)


def _leader(event: EventRecord) -> str:
    if event.follows is None:
        msg = f"event {event.id} follows no event and cannot wait for a leader"
        raise ValueError(msg)
    return event.follows
