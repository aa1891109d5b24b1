"""A memory store persisted as one document per bucket key and per composite trigger.

The stream service keeps a partition's state in memory for speed and writes each
touched document once per batch to its Faust table (changelog + RocksDB); after a
restart or a rebalance the documents are loaded back. Indexes are rebuilt from them,
never persisted, so a batch costs one write per touched key.

The route stage's store holds Prefect's seen-id cache and follower buffer: one document
per held follower, and the ids seen in a batch as one document, deleted once every id in
it is older than the seen-id window, so de-duplication costs one write per batch. So a
reload can bring back an id forgotten since its document was written, with its old time:
the core judges a seen id by its age (`Ordering.already_seen`), never by its presence.

The state contract suite (`tests/contract/`) holds this store live and saved and
reloaded through a table of documents.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.store import Bucket, BucketKey, HeldEvent
from service.state.codec import event_from_json, event_json, firing_from_json, firing_json
from service.state.memory import MemoryStateStore

__all__ = [
    "DocumentStore",
    "Position",
    "bucket_doc_key",
]

# (events partition, offset of the event that caused the routing, index in it)
Position = tuple[int, int, int]

_BUCKET = b"B"
_METRIC = b"M"
# Child firing ids remembered per composite, to recognise a redelivered one.
_RECENT_CHILDREN = 256
_COMPOSITE = b"C"
_FOLLOWER = b"F"
_SEEN = b"S"
_NAMED = b"N"  # named integers (meta): replay's proactive schedule; the worker has none


def bucket_doc_key(trigger_id: str, key: BucketKey) -> bytes:
    """The document key of one (trigger, bucketing key)."""
    return _BUCKET + trigger_id.encode() + b"\0" + orjson.dumps(list(key))


class DocumentStore(MemoryStateStore):
    """A `MemoryStateStore` that knows which documents changed since the last flush."""

    def __init__(self, max_seen: int | None = None) -> None:
        super().__init__(max_seen)
        self._dirty_buckets: set[tuple[str, BucketKey]] = set()
        self._dirty_composites: set[str] = set()
        self._dirty_metrics: set[str] = set()
        # (trigger, key) -> ({events partition: (offset, index)}, wall of last use)
        self._guards: dict[tuple[str, BucketKey], tuple[dict[int, tuple[int, int]], int]] = {}
        self._applied_children: dict[str, list[str]] = {}
        # composite -> offset of the last child-firings record applied (its partition is
        # this store's: child firings are keyed by automation).
        self._child_offsets: dict[str, int] = {}
        # Seen ids not yet written; written seen-id documents -> their latest time.
        self._new_seen: list[tuple[str, int]] = []
        self._seen_docs: dict[int, int] = {}
        self._deleted_seen: list[int] = []
        self._next_seen_doc = 0
        self._dirty_followers: dict[str, EventRecord | None] = {}
        self._dirty_meta: set[str] = set()

    # -- writes mark their document dirty -------------------------------------------
    def put_bucket(
        self, trigger_id: str, key: BucketKey, bucket: Bucket, *, satisfied: bool = False
    ) -> None:
        super().put_bucket(trigger_id, key, bucket, satisfied=satisfied)
        self._dirty_buckets.add((trigger_id, key))

    def delete_bucket(self, trigger_id: str, key: BucketKey) -> None:
        super().delete_bucket(trigger_id, key)
        self._dirty_buckets.add((trigger_id, key))

    def put_held(self, trigger_id: str, key: BucketKey, events: list[HeldEvent]) -> None:
        super().put_held(trigger_id, key, events)
        self._dirty_buckets.add((trigger_id, key))

    def put_child_firings(self, composite_id: str, firings: list[Firing]) -> None:
        super().put_child_firings(composite_id, firings)
        self._dirty_composites.add(composite_id)

    def put_metric_state(self, trigger_id: str, data: bytes | None) -> None:
        super().put_metric_state(trigger_id, data)
        self._dirty_metrics.add(trigger_id)

    def mark_seen(self, event_id: str, at: int) -> None:
        super().mark_seen(event_id, at)
        self._new_seen.append((event_id, at))

    def forget_seen_before(self, cutoff: int) -> None:
        super().forget_seen_before(cutoff)
        for number, latest in list(self._seen_docs.items()):
            if latest < cutoff:
                del self._seen_docs[number]
                self._deleted_seen.append(number)

    def put_meta(self, name: str, value: int | None) -> None:
        super().put_meta(name, value)
        self._dirty_meta.add(name)

    def drop_trigger(self, trigger_id: str) -> None:
        # Everything it drops is a document to rewrite or delete: a bucket document per
        # key that holds a bucket or held events, its composite and metric documents.
        # (Only buckets went through a marking method; a save after the drop kept the rest.)
        keys = {key for key, _ in self.buckets(trigger_id)}
        keys.update(key for held_id, key in self.held_keys() if held_id == trigger_id)
        had_children = bool(self.child_firings(trigger_id))
        had_metric = self.metric_state(trigger_id) is not None
        super().drop_trigger(trigger_id)
        self._dirty_buckets.update((trigger_id, key) for key in keys)
        if had_children:
            self._dirty_composites.add(trigger_id)
        if had_metric:
            self._dirty_metrics.add(trigger_id)

    def add_follower(self, event: EventRecord) -> None:
        super().add_follower(event)
        self._dirty_followers[event.id] = event

    def remove_follower(self, event: EventRecord) -> None:
        super().remove_follower(event)
        self._dirty_followers[event.id] = None

    # -- redelivery guards ------------------------------------------------------------
    def already_applied(self, trigger_id: str, key: BucketKey, source: Position | None) -> bool:
        """Was the match from this source position applied to the key already?

        A position is (events partition, offset of the event that caused the routing,
        index of the match in that routing). Route handles a partition in offset order,
        so per events partition positions only grow; a crash makes route re-read events
        and emit their matches again, and those are recognised here.
        """
        if source is None:
            return False
        guard = self._guards.get((trigger_id, key))
        if guard is None:
            return False
        applied = guard[0].get(source[0])
        return applied is not None and (source[1], source[2]) <= applied

    def mark_applied(
        self, trigger_id: str, key: BucketKey, source: Position | None, wall: int
    ) -> None:
        """Record the position of a match applied to the key at `wall`."""
        if source is None:
            return
        pair = (trigger_id, key)
        # Taken out and put back: the dict stays in order of last use (see below).
        guard = self._guards.pop(pair, None)
        positions = guard[0] if guard is not None else {}
        positions[source[0]] = (source[1], source[2])
        self._guards[pair] = (positions, wall)
        self._dirty_buckets.add(pair)

    def forget_guards_before(self, cutoff: int) -> None:
        """Drop the guards of keys with no state left, last used before `cutoff`.

        An event can only be read again until its offset is committed, seconds later.
        Guards are kept oldest first, so a tick looks at the expired ones only, not at
        every guard of the partition (hundreds of thousands on a busy one).
        """
        expired = []
        for pair, (_, wall) in self._guards.items():
            if wall >= cutoff:
                break
            expired.append(pair)
        for pair in expired:
            if pair in self._buckets or pair in self._held:
                # Its key still holds state: kept, and looked at again after the newer ones.
                self._guards[pair] = self._guards.pop(pair)
            else:
                del self._guards[pair]
                self._dirty_buckets.add(pair)

    def child_applied(self, composite_id: str, firing_id: str) -> bool:
        """Has this child firing (by its deterministic id) been applied already?"""
        return firing_id in self._applied_children.get(composite_id, ())

    def child_record_applied(self, composite_id: str, offset: int) -> bool:
        """Was this child-firings record (by offset) applied already?

        A restart re-reads every record after the last committed offset, however many
        there are; the recent-ids window below only has to catch firings that evaluate
        sent again as new records.
        """
        applied = self._child_offsets.get(composite_id)
        return applied is not None and offset <= applied

    def mark_child_record(self, composite_id: str, offset: int) -> None:
        self._child_offsets[composite_id] = offset
        self._dirty_composites.add(composite_id)

    def mark_child_applied(self, composite_id: str, firing_id: str) -> None:
        """Remember a child firing applied to a composite (its most recent ones)."""
        recent = self._applied_children.setdefault(composite_id, [])
        recent.append(firing_id)
        del recent[:-_RECENT_CHILDREN]
        self._dirty_composites.add(composite_id)

    # -- persistence -----------------------------------------------------------------
    def flush(self) -> list[tuple[bytes, bytes | None]]:
        """Every changed document since the last flush (None: delete it), and forget them."""
        out: list[tuple[bytes, bytes | None]] = []
        for trigger_id, key in sorted(self._dirty_buckets):
            out.append((bucket_doc_key(trigger_id, key), self._bucket_doc(trigger_id, key)))
        for composite_id in sorted(self._dirty_composites):
            rows = self._children.get(composite_id, [])
            applied = self._applied_children.get(composite_id, [])
            offset = self._child_offsets.get(composite_id)
            # A composite with nothing left (its trigger dropped) needs no document.
            value = (
                orjson.dumps({"c": [firing_json(f) for f in rows], "a": applied, "o": offset})
                if rows or applied or offset is not None
                else None
            )
            out.append((_COMPOSITE + composite_id.encode(), value))
        for trigger_id in sorted(self._dirty_metrics):
            out.append((_METRIC + trigger_id.encode(), self.metric_state(trigger_id)))
        for event_id, follower in sorted(self._dirty_followers.items()):
            doc = None if follower is None else orjson.dumps(event_json(follower))
            out.append((_FOLLOWER + event_id.encode(), doc))
        for name in sorted(self._dirty_meta):
            named = self.meta(name)
            out.append((_NAMED + name.encode(), None if named is None else orjson.dumps(named)))
        out.extend((_seen_doc_key(number), None) for number in self._deleted_seen)
        if self._new_seen:
            number = self._next_seen_doc
            self._next_seen_doc += 1
            self._seen_docs[number] = max(at for _, at in self._new_seen)
            out.append((_seen_doc_key(number), orjson.dumps(self._new_seen)))
        self._new_seen = []
        self._deleted_seen.clear()
        self._dirty_followers.clear()
        self._dirty_buckets.clear()
        self._dirty_composites.clear()
        self._dirty_metrics.clear()
        self._dirty_meta.clear()
        return out

    def _bucket_doc(self, trigger_id: str, key: BucketKey) -> bytes | None:
        bucket = self._buckets.get((trigger_id, key))
        held = self._held.get((trigger_id, key))
        guard = self._guards.get((trigger_id, key))
        if bucket is None and not held and guard is None:
            return None
        doc: dict[str, Any] = {
            "b": (
                [bucket.start, bucket.end, bucket.count, _event_or_none(bucket.last_event)]
                if bucket is not None
                else None
            ),
            "h": [[h.occurred, h.event_id, h.held_at] for h in held or ()],
            "g": (
                [[[p, o, i] for p, (o, i) in guard[0].items()], guard[1]]
                if guard is not None
                else None
            ),
            "s": key in self._satisfied.get(trigger_id, ()),
        }
        return orjson.dumps(doc)

    def load(self, documents: Iterable[tuple[bytes, bytes]]) -> int:
        """Load persisted documents (a partition's table contents); return how many."""
        count = 0
        for doc_key, value in documents:
            count += 1
            if doc_key.startswith(_COMPOSITE):
                composite = orjson.loads(value)
                composite_id = doc_key[1:].decode()
                rows = [firing_from_json(row) for row in composite["c"]]
                super().put_child_firings(composite_id, rows)
                self._applied_children[composite_id] = list(composite["a"])
                if composite.get("o") is not None:
                    self._child_offsets[composite_id] = composite["o"]
                continue
            if doc_key.startswith(_METRIC):
                super().put_metric_state(doc_key[1:].decode(), value)
                continue
            if doc_key.startswith(_NAMED):
                super().put_meta(doc_key[1:].decode(), orjson.loads(value))
                continue
            if doc_key.startswith(_FOLLOWER):
                super().add_follower(event_from_json(orjson.loads(value)))
                continue
            if doc_key.startswith(_SEEN):
                pairs = orjson.loads(value)
                for event_id, at in pairs:
                    known = self.seen_at(event_id)
                    if known is None or known < at:
                        super().mark_seen(event_id, at)
                number = int.from_bytes(doc_key[1:], "big")
                self._seen_docs[number] = max(at for _, at in pairs)
                self._next_seen_doc = max(self._next_seen_doc, number + 1)
                continue
            if not doc_key.startswith(_BUCKET):
                continue
            # The key part is JSON, which never holds a raw NUL; a trigger id may.
            trigger_part, _, key_part = doc_key[1:].rpartition(b"\0")
            trigger_id, key = trigger_part.decode(), tuple(orjson.loads(key_part))
            doc = orjson.loads(value)
            if doc["b"] is not None:
                start, end, bucket_count, last = doc["b"]
                bucket = Bucket(
                    start, end, bucket_count, None if last is None else event_from_json(last)
                )
                super().put_bucket(trigger_id, key, bucket, satisfied=bool(doc.get("s")))
            if doc["h"]:
                held = [HeldEvent(o, i, h) for o, i, h in doc["h"]]
                super().put_held(trigger_id, key, held)
            if doc["g"] is not None:
                positions = {p: (o, i) for p, o, i in doc["g"][0]}
                self._guards[(trigger_id, key)] = (positions, doc["g"][1])
        # Documents come in key order; forget_guards_before wants the oldest first.
        self._guards = dict(sorted(self._guards.items(), key=lambda item: item[1][1]))
        return count


def _seen_doc_key(number: int) -> bytes:
    # Big-endian, so RocksDB keeps the documents in the order they were written.
    return _SEEN + number.to_bytes(8, "big")


def _event_or_none(event: EventRecord | None) -> Any:
    return None if event is None else event_json(event)
