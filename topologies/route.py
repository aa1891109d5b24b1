"""The route agent: decode and validate events, order them causally, fan out matches."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from service.core.routing import Match
from service.errors import DecodeError, TableClosed, ValidationFailed
from service.event_records import decode_event
from service.messaging.records import encode_matches
from service.metrics import BATCH_SIZE, EVALUATION_SECONDS, EVENTS_CONSUMED, LATE_EVENTS, MATCHES
from service.state.documents import DocumentStore, Position
from topologies.partitioning import match_partition
from topologies.progress import RouteProgress, send_progress
from topologies.runtime import Runtime
from topologies.tables import PartitionTable, settle

__all__ = ["route_batch", "route_tick", "send_matches", "with_positions"]

logger = logging.getLogger(__name__)

_BATCH = BATCH_SIZE.labels("route")
_NONE = 2**63  # no valid event read yet (occurred is in microseconds)
_SECONDS = EVALUATION_SECONDS.labels("route")


async def route_batch(
    runtime: Runtime, table: PartitionTable, progress: RouteProgress, events: Sequence[Any]
) -> None:
    """Route one batch; dead-letter what cannot be read, never stop on it.

    The seen ids and held followers the batch changed are written once its matches and
    dead letters are acknowledged: written earlier, a crash would drop the redelivered
    events as seen although their matches were never sent. The partitions' clocks take
    in what the batch read (`RouteProgress`), and their marks go out with the matches.
    """
    await runtime.automations_loaded.wait()
    started = time.perf_counter()
    settings = runtime.settings
    pending: list[Awaitable[Any]] = []
    routed: list[tuple[Match, Position | None]] = []
    touched: dict[int, DocumentStore] = {}
    # events partition -> [earliest occurred, latest occurred, next offset, late events]
    read: dict[int, list[int]] = {}
    floors: dict[int, int | None] = {}
    async with table.changing():
        for event in events:
            message = event.message
            partition = message.partition
            store = touched.get(partition)
            if store is None:
                store = touched[partition] = table.store(partition)
                floors[partition] = progress.watermark(partition)
                read[partition] = [_NONE, -_NONE, 0, 0]
            seen = read[partition]
            seen[2] = message.offset + 1
            wall = runtime.now()
            try:
                record = decode_event(message.value, settings.max_event_bytes)
                occurred = record.occurred
                seen[0], seen[1] = min(seen[0], occurred), max(seen[1], occurred)
                floor = floors[partition]
                if floor is not None and occurred < floor:
                    seen[3] += 1
                matches = runtime.router_for(partition, store).route(record, wall)
            except DecodeError as exc:
                reason = f"invalid event: {exc}"
                pending.append(await runtime.dead_letter(message, reason, exc.kind))
                continue
            except ValidationFailed as exc:
                reason = f"invalid event: {exc}"
                pending.append(await runtime.dead_letter(message, reason, "invalid_event"))
                continue
            except Exception as exc:  # a core bug must not stop the stream
                logger.exception(
                    "routing failed for %s[%d]@%d",
                    message.topic,
                    partition,
                    message.offset,
                    extra={"topic": message.topic, "partition": partition},
                )
                reason = f"routing failed: {exc!r}"
                pending.append(await runtime.dead_letter(message, reason, "routing_failed"))
                continue
            routed += with_positions(matches, partition, message.offset)
        sent_to, sends = await send_matches(runtime, routed)
        pending += sends
        wall = runtime.now()
        late = 0
        for partition, (earliest, latest, next_offset, late_events) in read.items():
            span = (earliest, latest) if earliest <= latest else None
            progress.read(partition, next_offset, span, wall)
            late += late_events
        # The matches just sent wait in evaluate until every source is known to be read
        # past them: say so with them, in the same produce, not at the next progress
        # tick or after the acks. One producer sends both, so on each partition the
        # report follows the matches it speaks for. Not awaited: a lost report only
        # delays them until the next one; if the batch fails, its matches come again
        # behind the report and are late (applied at once), never lost.
        marks = progress.refresh(table.active_partitions())
        for report in await send_progress(runtime, marks, sorted(sent_to)):
            asyncio.ensure_future(report).add_done_callback(_report_sent)
        await settle(runtime, [], pending, table, touched)
    # Once per batch, not per record: the hot path stays free of metric calls.
    if late:
        LATE_EVENTS.inc(late)
    EVENTS_CONSUMED.inc(len(events))
    MATCHES.inc(len(routed))
    _BATCH.observe(len(events))
    _SECONDS.observe(time.perf_counter() - started)


async def route_tick(runtime: Runtime, table: PartitionTable) -> None:
    """Release lost followers and forget expired seen ids, in every owned partition."""
    if not runtime.automations_loaded.is_set() or table.closed:
        return
    try:
        async with table.changing():
            wall = runtime.now()
            routed: list[tuple[Match, Position | None]] = []
            stores = table.active_stores()
            for partition, store in stores.items():
                router = runtime.router_for(partition, store)
                # Lost followers go through the matches topic like any routed event.
                routed += [(match, None) for match in router.release_lost_followers(wall)]
                router.ordering.forget_expired(wall)
            _, pending = await send_matches(runtime, routed)
            await settle(runtime, [], pending, table, stores)
    except TableClosed:
        return  # the worker is stopping; the next owner's tick does this


def with_positions(
    matches: list[Match], partition: int, offset: int
) -> list[tuple[Match, Position]]:
    """Each match with its source position: (partition, offset, ordinal).

    The ordinal counts earlier matches of the same (trigger, key) in this routing (more
    than one only when an event releases followers). It must not depend on the order of
    other triggers' matches: that order follows the registry, which another process (a
    restart, a new automation) may build differently, and evaluate's redelivery guard
    compares positions across processes.
    """
    seen: dict[tuple[str, tuple[str, ...]], int] = {}
    out = []
    for match in matches:
        bucket = (match.trigger.id, match.key)
        ordinal = seen.get(bucket, 0)
        seen[bucket] = ordinal + 1
        out.append((match, (partition, offset, ordinal)))
    return out


async def send_matches(
    runtime: Runtime, routed: list[tuple[Match, Position | None]]
) -> tuple[set[int], list[Awaitable[Any]]]:
    """Send matches as one record (or a few) per matches partition, in routing order.

    Returns the matches partitions sent to, and the sends to await.
    """
    settings = runtime.settings
    by_partition: dict[int, list[tuple[Match, Position | None]]] = {}
    for match, source in routed:
        partition = match_partition(match.trigger, match.key, settings.partitions)
        by_partition.setdefault(partition, []).append((match, source))
    pending = []
    for partition, matches in by_partition.items():
        for value in encode_matches(matches):
            pending.append(await runtime.send(settings.topic_matches, None, value, partition, None))
    return set(by_partition), pending


def _report_sent(future: asyncio.Future[Any]) -> None:
    if not future.cancelled() and future.exception() is not None:
        logger.debug("a progress report was not sent: %r", future.exception())
