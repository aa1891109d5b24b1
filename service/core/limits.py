"""Per-trigger state bounds: whether a match may open one more bucket (pure, no I/O)."""

from __future__ import annotations

from typing import Protocol

from service.core.store import Bucket, BucketKey

__all__ = ["BucketCounts", "may_open_bucket"]


class BucketCounts(Protocol):
    """What the check reads of a state store: one bucket, and one trigger's bucket count."""

    def bucket(self, trigger_id: str, key: BucketKey) -> Bucket | None: ...

    def trigger_bucket_count(self, trigger_id: str) -> int: ...


def may_open_bucket(store: BucketCounts, trigger_id: str, key: BucketKey, limit: int) -> bool:
    """True unless `key` has no bucket yet and the trigger already holds `limit` buckets.

    A key that has a bucket is always evaluated, so a trigger at its limit keeps counting,
    firing and closing the buckets it has; only new keys are refused until some close.
    """
    if store.bucket(trigger_id, key) is not None:
        return True
    return store.trigger_bucket_count(trigger_id) < limit
