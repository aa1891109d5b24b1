"""The evaluate agent: apply matches to the buckets of its partitions and emit firings."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from service.core.limits import may_open_bucket
from service.core.steps import apply_match
from service.core.times import MINUTE
from service.core.triggers import CompiledEventTrigger
from service.messaging.records import decode_matches, decode_progress
from service.metrics import BATCH_SIZE, EVALUATION_SECONDS, STATE_LIMIT_REJECTIONS
from service.state.documents import DocumentStore
from topologies.runtime import Fired, Runtime
from topologies.tables import PartitionTable, settle

__all__ = ["evaluate_batch"]

logger = logging.getLogger(__name__)

_BATCH = BATCH_SIZE.labels("evaluate")
_SECONDS = EVALUATION_SECONDS.labels("evaluate")


async def evaluate_batch(runtime: Runtime, table: PartitionTable, events: Sequence[Any]) -> None:
    """Evaluate a batch of matches; one document write per touched key."""
    await runtime.automations_loaded.wait()
    started = time.perf_counter()
    fired: list[Fired] = []
    touched: dict[int, DocumentStore] = {}
    pending: list[Awaitable[Any]] = []
    limit = runtime.settings.max_buckets_per_trigger
    allowance = round(runtime.settings.disorder_allowance * 1_000_000)
    async with table.changing():
        registry = runtime.registry
        for event in events:
            message = event.message
            progress = decode_progress(message.value)
            if progress is not None:
                runtime.watermarks_of(message.partition).advance(*progress)
                continue
            store = table.store(message.partition)
            try:
                matches = decode_matches(message.value)
            except Exception as exc:  # noqa: BLE001  # dead-letter, never stop the stream
                reason = f"bad match record: {exc!r}"
                pending.append(await runtime.dead_letter(message, reason, "bad_match"))
                continue
            watermarks = runtime.watermarks_of(message.partition)
            metrics = runtime.metrics_for(message.partition, store)
            for match in matches:
                if match.source is not None:
                    watermarks.lower(match.source[0], match.event.occurred - allowance)
                trigger_id, key = match.trigger_id, match.key
                trigger = registry.event_triggers.get(trigger_id)
                metric = registry.metric_triggers.get(trigger_id)
                owner = trigger if trigger is not None else metric
                if owner is None:
                    continue  # its automation was deleted or disabled since routing
                if store.already_applied(trigger_id, key, match.source):
                    continue  # routed again after a crash, or redelivered: applied already
                if trigger is not None and not may_open_bucket(store, trigger_id, key, limit):
                    # Not marked applied: a refused key must not cost state either.
                    _refuse(trigger, limit, match.event.id, match.wall)
                    continue
                try:
                    fired += apply_match(owner, key, match.event, match.wall, store, metrics)
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
                    continue
                store.mark_applied(trigger_id, key, match.source, match.wall)
                touched[message.partition] = store
        await settle(runtime, fired, pending, table, touched)
    _BATCH.observe(len(events))
    _SECONDS.observe(time.perf_counter() - started)


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
