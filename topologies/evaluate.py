"""The evaluate agent: apply matches to the buckets of its partitions and emit firings."""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from faust.types import TP

from service.core.hold import EventTimeHold
from service.core.limits import may_open_bucket
from service.core.steps import apply_match
from service.core.times import MINUTE
from service.core.triggers import CompiledEventTrigger
from service.messaging.ordered_fetch import Positions
from service.messaging.records import RoutedMatch, decode_matches, decode_progress
from service.metrics import (
    BATCH_SIZE,
    EVALUATION_SECONDS,
    HELD_MATCHES,
    OUT_OF_ORDER_MATCHES,
    STATE_LIMIT_REJECTIONS,
)
from service.state.documents import DocumentStore
from topologies.runtime import Fired, Runtime
from topologies.tables import PartitionTable, settle

__all__ = ["evaluate_batch"]

logger = logging.getLogger(__name__)

_BATCH = BATCH_SIZE.labels("evaluate")
_SECONDS = EVALUATION_SECONDS.labels("evaluate")


async def evaluate_batch(
    runtime: Runtime, table: PartitionTable, positions: Positions, events: Sequence[Any]
) -> None:
    """Evaluate a batch of matches; one document write per touched key.

    Matches wait in their partition's hold until every source partition has been read
    past them, and are applied in event-time order (service/core/hold.py). Their
    records are acknowledged with the batch, but no commit passes the first record
    whose matches are still held (`Positions.floors`): a crash or a new owner reads it
    again, and the redelivery guard skips what was applied.
    """
    await runtime.automations_loaded.wait()
    started = time.perf_counter()
    fired: list[Fired] = []
    touched: dict[int, DocumentStore] = {}
    pending: list[Awaitable[Any]] = []
    held: dict[int, EventTimeHold[RoutedMatch]] = {}
    topic = runtime.settings.topic_matches
    allowance = round(runtime.settings.disorder_allowance * 1_000_000)
    out_of_order = 0
    async with table.changing():
        try:
            for event in events:
                message = event.message
                partition = message.partition
                watermarks = runtime.watermarks_of(partition)
                hold = held.get(partition)
                if hold is None:
                    hold = held[partition] = runtime.hold_of(partition)
                progress = decode_progress(message.value)
                if progress is not None:
                    for source, watermark, order_mark in progress:
                        watermarks.advance(source, watermark, order_mark)
                    continue
                try:
                    matches = decode_matches(message.value)
                except Exception as exc:  # noqa: BLE001  # dead-letter, never stop the stream
                    reason = f"bad match record: {exc!r}"
                    pending.append(await runtime.dead_letter(message, reason, "bad_match"))
                    continue
                for match in matches:
                    occurred = _order_time(match)
                    if match.source is None:
                        # A lost follower, released by route's tick: late by 15 minutes.
                        _apply(runtime, table, partition, match, fired, touched)
                        continue
                    watermarks.lower(match.source[0], occurred - allowance)
                    latest = hold.latest_released
                    if latest is not None and occurred < latest:
                        out_of_order += 1
                    hold.push(match.source[0], occurred, message.offset, match)
            limit = runtime.settings.max_held_matches
            released = [
                [
                    (_order_time(match), partition, match)
                    for match in hold.release(runtime.watermarks_of(partition).order(), limit)
                ]
                for partition, hold in held.items()
            ]
            # Across this worker's partitions too, in event-time order, each at its own
            # processing time: a sequence orders its children by when they fired.
            for _, partition, match in heapq.merge(*released, key=_event_time):
                _apply(runtime, table, partition, match, fired, touched)
            await settle(runtime, fired, pending, table, touched)
        except BaseException:
            for hold in held.values():
                hold.rollback()
            raise
        for partition, hold in held.items():
            hold.commit()
            tp = TP(topic, partition)
            floor = hold.floor()
            if floor is None:
                positions.floors.pop(tp, None)
            else:
                positions.floors[tp] = floor
    if out_of_order:
        OUT_OF_ORDER_MATCHES.inc(out_of_order)
    HELD_MATCHES.set(sum(len(hold) for hold in runtime.holds.values()))
    _BATCH.observe(len(events))
    _SECONDS.observe(time.perf_counter() - started)


def _order_time(match: RoutedMatch) -> int:
    # An event from the future counts as the time route read it, as the watermarks take
    # it: it must not hold its partition's queue back.
    return min(match.event.occurred, match.wall)


def _event_time(item: tuple[int, int, RoutedMatch]) -> tuple[int, int]:
    return item[0], item[1]


def _apply(
    runtime: Runtime,
    table: PartitionTable,
    partition: int,
    match: RoutedMatch,
    fired: list[Fired],
    touched: dict[int, DocumentStore],
) -> None:
    """Apply one match to its partition's store, unless it was applied already.

    At the processing time of now, when its turn in event-time order came, not when
    route read it: route reads partitions in fetch order.
    """
    registry = runtime.registry
    trigger_id, key = match.trigger_id, match.key
    trigger = registry.event_triggers.get(trigger_id)
    owner = trigger if trigger is not None else registry.metric_triggers.get(trigger_id)
    if owner is None:
        return  # its automation was deleted or disabled since routing
    store = table.store(partition)
    if store.already_applied(trigger_id, key, match.source):
        return  # routed again after a crash, or redelivered: applied already
    limit = runtime.settings.max_buckets_per_trigger
    if trigger is not None and not may_open_bucket(store, trigger_id, key, limit):
        # Not marked applied: a refused key must not cost state either.
        _refuse(trigger, limit, match.event.id, runtime.now())
        return
    wall = runtime.now()
    try:
        metrics = runtime.metrics_for(partition, store)
        fired += apply_match(owner, key, match.event, wall, store, metrics)
    except Exception:
        logger.exception(
            "evaluation of event %s failed for trigger %s",
            match.event.id,
            trigger_id,
            extra={
                "automation_id": owner.automation.id,
                "trigger_id": trigger_id,
                "event_id": match.event.id,
            },
        )
        return
    store.mark_applied(trigger_id, key, match.source, wall)
    touched[partition] = store


_last_warned: dict[str, int] = {}


def _refuse(trigger: CompiledEventTrigger, limit: int, event_id: str, wall: int) -> None:
    STATE_LIMIT_REJECTIONS.inc()
    # One line per trigger per minute: a flood of new keys must not flood the log too.
    if wall - _last_warned.get(trigger.id, -MINUTE) < MINUTE:
        return
    _last_warned[trigger.id] = wall
    logger.warning(
        "trigger %s of automation %s holds %d buckets in a partition, its limit "
        "(TRIPWIRE_MAX_BUCKETS_PER_TRIGGER): matches for new keys are skipped, e.g. event %s",
        trigger.id,
        trigger.automation.id,
        limit,
        event_id,
        extra={"automation_id": trigger.automation.id, "trigger_id": trigger.id},
    )
