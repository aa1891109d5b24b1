"""The tick timer: lost followers, proactive evaluation and sweeps of owned partitions."""

from __future__ import annotations

import logging
import time
from functools import partial

from service.core.evaluator import (
    EXPIRED_BUCKET_BUFFER,
    evaluate_all_proactively,
    sweep_expired_buckets,
    sweep_held_events,
)
from service.core.times import MINUTE
from service.core.triggers import CompiledEventTrigger
from service.errors import TableClosed
from service.metrics import OPEN_BUCKETS, TICK_SECONDS
from service.state.documents import DocumentStore
from topologies.partitioning import match_partition
from topologies.route import send_matches
from topologies.runtime import Fired, Runtime
from topologies.tables import PartitionTable, settle

__all__ = ["tick"]

logger = logging.getLogger(__name__)

# Redelivery guards outlive any uncommitted offset by far.
GUARD_RETENTION = 10 * MINUTE


def _owns_global(trigger: CompiledEventTrigger, *, partition: int, partitions: int) -> bool:
    return match_partition(trigger, (), partitions) == partition


async def tick(runtime: Runtime, table: PartitionTable) -> int:
    """One periodic pass at the wall clock; returns how many firings it made.

    One partition at a time, each under the table's lock with its own writes: the
    evaluate agent's batches run between them instead of waiting for the whole pass (a
    pass that fires hundreds of proactive buckets takes a few hundred milliseconds).
    """
    if not runtime.automations_loaded.is_set() or table.closed:
        return 0
    started = time.perf_counter()
    fired = 0
    try:
        async with table.changing():
            await _release_followers(runtime, table)
        for partition in sorted(table.stores):
            async with table.changing():
                store = table.stores.get(partition)
                if store is not None:  # revoked since the pass began
                    fired += await _tick_partition(runtime, table, partition, store)
        OPEN_BUCKETS.set(sum(store.bucket_count() for store in table.stores.values()))
    except TableClosed:
        return 0  # the worker is stopping; the next owner's tick does this
    TICK_SECONDS.observe(time.perf_counter() - started)
    return fired


async def _release_followers(runtime: Runtime, table: PartitionTable) -> None:
    """Lost followers go through the matches topic like any routed event."""
    wall = runtime.now()
    lost = runtime.router.release_lost_followers(wall)
    pending = await send_matches(runtime, [(match, None) for match in lost])
    runtime.router.ordering.forget_expired(wall)
    await settle(runtime, [], pending, table, {})


async def _tick_partition(
    runtime: Runtime, table: PartitionTable, partition: int, store: DocumentStore
) -> int:
    settings = runtime.settings
    registry = runtime.registry
    wall = runtime.now()
    as_of = wall + runtime.router.clock.offset()
    # A trigger without for_each has one global bucket, kept where its key routes;
    # every partition evaluates the buckets it holds.
    fired: list[Fired] = []
    fired.extend(
        evaluate_all_proactively(
            registry,
            as_of,
            wall,
            store,
            owns_global=partial(_owns_global, partition=partition, partitions=settings.partitions),
        )
    )
    fired.extend(runtime.metrics_for(partition, store).evaluate(wall))
    sweep_held_events(wall, store)
    fired.extend(sweep_expired_buckets(registry, as_of - EXPIRED_BUCKET_BUFFER, as_of, wall, store))
    store.forget_guards_before(wall - GUARD_RETENTION)
    await settle(runtime, fired, [], table, {partition: store})
    return len(fired)
