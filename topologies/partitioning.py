"""Which partition a bucket or a composite lives in: one stable hash for every stage."""

from __future__ import annotations

import zlib

from service.core.store import BucketKey
from service.state.documents import bucket_doc_key

__all__ = ["automation_partition", "bucket_partition"]


def bucket_partition(trigger_id: str, key: BucketKey, partitions: int) -> int:
    """The partition of a (trigger, bucketing key): route sends its matches there."""
    return zlib.crc32(bucket_doc_key(trigger_id, key)) % partitions


def automation_partition(automation_id: str, partitions: int) -> int:
    """The partition of an automation's composite state (child firings go there)."""
    return zlib.crc32(automation_id.encode()) % partitions
