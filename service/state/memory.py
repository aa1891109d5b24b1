"""In-memory `StateStore`: plain dicts plus sorted indexes of bucket ends."""

from __future__ import annotations

import heapq
from collections.abc import Iterator

from sortedcontainers import SortedSet

from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.store import Bucket, BucketKey, HeldEvent

__all__ = ["MemoryStateStore"]


class MemoryStateStore:
    """Holds everything in process memory; used by replay, tests and benchmarks."""

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, BucketKey], Bucket] = {}
        self._ends: SortedSet = SortedSet()  # (end, trigger_id, key)
        self._trigger_ends: dict[str, SortedSet] = {}  # trigger_id -> (end, key)
        self._satisfied: dict[str, set[BucketKey]] = {}
        self._held: dict[tuple[str, BucketKey], list[HeldEvent]] = {}
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
        old = self._buckets.get((trigger_id, key))
        if old is None or old.end != bucket.end:
            ends = self._trigger_ends.get(trigger_id)
            if ends is None:
                ends = self._trigger_ends[trigger_id] = SortedSet()
            if old is not None:
                self._ends.discard((old.end, trigger_id, key))
                ends.discard((old.end, key))
            self._ends.add((bucket.end, trigger_id, key))
            ends.add((bucket.end, key))
        self._buckets[(trigger_id, key)] = bucket
        if satisfied:
            self._satisfied.setdefault(trigger_id, set()).add(key)
        elif trigger_id in self._satisfied:
            self._satisfied[trigger_id].discard(key)

    def delete_bucket(self, trigger_id: str, key: BucketKey) -> None:
        old = self._buckets.pop((trigger_id, key), None)
        if old is None:
            return
        self._ends.discard((old.end, trigger_id, key))
        self._trigger_ends[trigger_id].discard((old.end, key))
        if trigger_id in self._satisfied:
            self._satisfied[trigger_id].discard(key)

    def satisfied_keys(self, trigger_id: str) -> list[BucketKey]:
        return sorted(self._satisfied.get(trigger_id, ()))

    def due_buckets(self, trigger_id: str, as_of: int) -> list[tuple[BucketKey, Bucket]]:
        ends = self._trigger_ends.get(trigger_id)
        if not ends:
            return []
        stop = ends.bisect_left((as_of + 1,))
        return [(key, self._buckets[(trigger_id, key)]) for _, key in ends[:stop]]

    def next_end_after(self, trigger_id: str, moment: int) -> int | None:
        ends = self._trigger_ends.get(trigger_id)
        if not ends:
            return None
        index = ends.bisect_left((moment + 1,))
        return int(ends[index][0]) if index < len(ends) else None

    def expired_buckets(self, cutoff: int) -> list[tuple[str, BucketKey]]:
        stop = self._ends.bisect_left((cutoff + 1,))
        return [(trigger_id, key) for _, trigger_id, key in self._ends[:stop]]

    def buckets(self, trigger_id: str) -> Iterator[tuple[BucketKey, Bucket]]:
        keys = sorted(k for t, k in self._buckets if t == trigger_id)
        for key in keys:
            yield key, self._buckets[(trigger_id, key)]

    def bucket_count(self) -> int:
        return len(self._buckets)

    # -- held expect events -----------------------------------------------------------
    def held(self, trigger_id: str, key: BucketKey) -> list[HeldEvent]:
        return list(self._held.get((trigger_id, key), ()))

    def put_held(self, trigger_id: str, key: BucketKey, events: list[HeldEvent]) -> None:
        if events:
            self._held[(trigger_id, key)] = list(events)
        else:
            self._held.pop((trigger_id, key), None)

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

    # -- lifecycle ---------------------------------------------------------------------------
    def drop_trigger(self, trigger_id: str) -> None:
        for key in [k for t, k in self._buckets if t == trigger_id]:
            self.delete_bucket(trigger_id, key)
        self._trigger_ends.pop(trigger_id, None)
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
