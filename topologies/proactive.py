"""The tick timer: proactive evaluation, metric triggers and sweeps of owned partitions."""

from __future__ import annotations

import logging
import time
from functools import partial

from service.core.steps import tick_store
from service.core.times import MINUTE
from service.core.triggers import CompiledEventTrigger
from service.errors import TableClosed
from service.metrics import OPEN_BUCKETS, STREAM_TIME_LAG, TICK_SECONDS
from topologies.partitioning import match_partition
from topologies.runtime import Fired, Runtime
from topologies.tables import PartitionTable, settle

__all__ = ["tick"]

logger = logging.getLogger(__name__)

# Redelivery guards outlive any uncommitted offset by far.
GUARD_RETENTION = 10 * MINUTE


def _owns_global(trigger: CompiledEventTrigger, *, partition: int, partitions: int) -> bool:
    return match_partition(trigger, (), partitions) == partition


async def tick(runtime: Runtime, table: PartitionTable) -> int:
    """One periodic pass at each partition's stream time; returns how many firings it made."""
    if not runtime.automations_loaded.is_set() or table.closed:
        return 0
    started = time.perf_counter()
    try:
        async with table.changing():
            fired = await _tick(runtime, table)
            OPEN_BUCKETS.set(sum(store.bucket_count() for store in table.stores.values()))
    except TableClosed:
        return 0  # the worker is stopping; the next owner's tick does this
    TICK_SECONDS.observe(time.perf_counter() - started)
    return fired


async def _tick(runtime: Runtime, table: PartitionTable) -> int:
    settings = runtime.settings
    fired: list[Fired] = []
    wall = runtime.now()
    registry = runtime.registry
    stores = table.active_stores()
    for partition, store in stores.items():
        # Deadlines are judged by the partition's stream time, never by the wall clock:
        # until every events partition has told it how far it was read, nothing is due.
        as_of = runtime.watermarks_of(partition).current()
        if as_of is None:
            continue
        # Nor may it pass a match still held for event-time order: it could meet it.
        waiting = runtime.hold_of(partition).earliest()
        if waiting is not None:
            as_of = min(as_of, waiting - 1)
        STREAM_TIME_LAG.labels(str(partition)).set(max(wall - as_of, 0) / 1_000_000)
        # A trigger without for_each has one global bucket, kept where its key
        # routes; every partition evaluates the buckets it holds. Metric windows and
        # held events count processing time (their firing time and held_at are the wall
        # clock, as in Prefect), so they stay on it.
        owns_global = partial(_owns_global, partition=partition, partitions=settings.partitions)
        metrics = runtime.metrics_for(partition, store)
        fired += tick_store(registry, store, as_of, wall, metrics, owns_global=owns_global)
        store.forget_guards_before(wall - GUARD_RETENTION)
    await settle(runtime, fired, [], table, stores)
    return len(fired)
