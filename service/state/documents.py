"""A memory store persisted as one document per bucket key and per composite trigger.

The stream service keeps a partition's state in memory for speed and writes each
touched document once per batch to its Faust table (changelog + RocksDB); after a
restart or a rebalance the documents are loaded back. Indexes are rebuilt from them,
never persisted, so a batch costs one write per touched key.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.store import Bucket, BucketKey, HeldEvent
from service.state.memory import MemoryStateStore

__all__ = ["DocumentStore", "decode_event", "decode_firing", "encode_event", "encode_firing"]

_BUCKET = b"B"
_COMPOSITE = b"C"


def encode_event(event: EventRecord | None) -> Any:
    """An event as JSON-ready data, times included (they may differ from its JSON)."""
    if event is None:
        return None
    return {"j": event.to_json(), "o": event.occurred, "r": event.received}


def decode_event(data: Any) -> EventRecord | None:
    """The inverse of `encode_event`."""
    if data is None:
        return None
    return EventRecord.from_json(data["j"], data["o"], data["r"])


def encode_firing(firing: Firing) -> dict[str, Any]:
    """A firing as JSON-ready data, nested child firings included."""
    return {
        "id": firing.id,
        "t": firing.trigger_id,
        "a": firing.automation_id,
        "w": firing.fired_at,
        "l": firing.labels,
        "e": encode_event(firing.triggering_event),
        "s": firing.state,
        "win": list(firing.window) if firing.window is not None else None,
        "c": [encode_firing(child) for child in firing.child_firings],
        "v": firing.triggering_value,
    }


def decode_firing(data: dict[str, Any]) -> Firing:
    """The inverse of `encode_firing`."""
    window = data["win"]
    return Firing(
        id=data["id"],
        trigger_id=data["t"],
        automation_id=data["a"],
        fired_at=data["w"],
        labels=data["l"],
        triggering_event=decode_event(data["e"]),
        state=data["s"],
        window=(window[0], window[1]) if window is not None else None,
        child_firings=tuple(decode_firing(child) for child in data["c"]),
        triggering_value=data["v"],
    )


def bucket_doc_key(trigger_id: str, key: BucketKey) -> bytes:
    """The document key of one (trigger, bucketing key)."""
    return _BUCKET + trigger_id.encode() + b"\0" + orjson.dumps(list(key))


class DocumentStore(MemoryStateStore):
    """A `MemoryStateStore` that knows which documents changed since the last flush."""

    def __init__(self) -> None:
        super().__init__()
        self._dirty_buckets: set[tuple[str, BucketKey]] = set()
        self._dirty_composites: set[str] = set()
        self._composite_offsets: dict[str, tuple[int, int]] = {}
        # (trigger, key) -> (source offset, wall time) of the last match applied.
        self._offsets: dict[tuple[str, BucketKey], tuple[int, int]] = {}

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

    # -- redelivery guard ------------------------------------------------------------
    def applied_offset(self, trigger_id: str, key: BucketKey) -> int:
        """The source offset of the last match applied to this key (-1 if none)."""
        guard = self._offsets.get((trigger_id, key))
        return guard[0] if guard is not None else -1

    def set_applied_offset(self, trigger_id: str, key: BucketKey, offset: int, wall: int) -> None:
        """Record that the match at `offset` has been applied to this key at `wall`."""
        self._offsets[(trigger_id, key)] = (offset, wall)
        self._dirty_buckets.add((trigger_id, key))

    def forget_guards_before(self, cutoff: int) -> None:
        """Drop redelivery guards of keys with no state left, last used before `cutoff`.

        A match can only be redelivered until its offset is committed, seconds later.
        """
        for pair, (_, wall) in list(self._offsets.items()):
            if wall < cutoff and pair not in self._buckets and pair not in self._held:
                del self._offsets[pair]
                self._dirty_buckets.add(pair)

    def composite_applied_offset(self, composite_id: str) -> int:
        """The source offset of the last child firing applied to a composite (-1 if none)."""
        guard = self._composite_offsets.get(composite_id)
        return guard[0] if guard is not None else -1

    def set_composite_applied_offset(self, composite_id: str, offset: int, wall: int) -> None:
        """Record that the child firing at `offset` has been applied."""
        self._composite_offsets[composite_id] = (offset, wall)
        self._dirty_composites.add(composite_id)

    # -- persistence -----------------------------------------------------------------
    def flush(self) -> list[tuple[bytes, bytes | None]]:
        """Every changed document since the last flush (None: delete it), and forget them."""
        out: list[tuple[bytes, bytes | None]] = []
        for trigger_id, key in sorted(self._dirty_buckets):
            out.append((bucket_doc_key(trigger_id, key), self._bucket_doc(trigger_id, key)))
        for composite_id in sorted(self._dirty_composites):
            rows = self._children.get(composite_id, [])
            guard = self._composite_offsets.get(composite_id)
            value = orjson.dumps(
                {"c": [encode_firing(f) for f in rows], "o": list(guard) if guard else None}
            )
            out.append((_COMPOSITE + composite_id.encode(), value))
        self._dirty_buckets.clear()
        self._dirty_composites.clear()
        return out

    def _bucket_doc(self, trigger_id: str, key: BucketKey) -> bytes | None:
        bucket = self._buckets.get((trigger_id, key))
        held = self._held.get((trigger_id, key))
        offset = self._offsets.get((trigger_id, key))
        if bucket is None and not held and offset is None:
            return None
        doc: dict[str, Any] = {
            "b": (
                [bucket.start, bucket.end, bucket.count, encode_event(bucket.last_event)]
                if bucket is not None
                else None
            ),
            "h": [[h.occurred, h.event_id, h.held_at] for h in held or ()],
            "o": list(offset) if offset is not None else None,
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
                rows = [decode_firing(row) for row in composite["c"]]
                super().put_child_firings(composite_id, rows)
                if composite["o"] is not None:
                    self._composite_offsets[composite_id] = (composite["o"][0], composite["o"][1])
                continue
            if not doc_key.startswith(_BUCKET):
                continue
            trigger_part, _, key_part = doc_key[1:].partition(b"\0")
            trigger_id, key = trigger_part.decode(), tuple(orjson.loads(key_part))
            doc = orjson.loads(value)
            if doc["b"] is not None:
                start, end, bucket_count, last = doc["b"]
                bucket = Bucket(start, end, bucket_count, decode_event(last))
                super().put_bucket(trigger_id, key, bucket, satisfied=bool(doc.get("s")))
            if doc["h"]:
                held = [HeldEvent(o, i, h) for o, i, h in doc["h"]]
                super().put_held(trigger_id, key, held)
            if doc["o"] is not None:
                self._offsets[(trigger_id, key)] = (doc["o"][0], doc["o"][1])
        return count
