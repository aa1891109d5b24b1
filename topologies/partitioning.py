"""Which partition a bucket or a composite lives in: one stable hash for every stage."""

from __future__ import annotations

import zlib

from service.core.index import Indexed
from service.core.store import BucketKey
from service.state.documents import bucket_doc_key

__all__ = ["automation_partition", "match_partition"]


def automation_partition(automation_id: str, partitions: int) -> int:
    """The partition of an automation's composite state (child firings go there)."""
    return zlib.crc32(automation_id.encode()) % partitions


def match_partition(trigger: Indexed, key: BucketKey, partitions: int) -> int:
    """The partition that owns a (trigger, bucketing key) and receives its matches.

    A trigger inside a composite lives with its whole tree, in its automation's
    partition: its siblings are then evaluated in arrival order by one consumer, so
    their child firings reach the composite in the order they fired.
    """
    if trigger.parent is not None:
        return automation_partition(trigger.automation.id, partitions)
    # A metric trigger has one state, kept where its (empty) key routes.
    return zlib.crc32(bucket_doc_key(trigger.id, key)) % partitions
