"""The compose agent: composite triggers over child firings, keyed by automation."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Sequence
from typing import Any

from service.core.steps import fire_upward
from service.messaging.records import decode_child_firing
from service.metrics import BATCH_SIZE, EVALUATION_SECONDS
from service.state.documents import DocumentStore
from topologies.runtime import Fired, Runtime
from topologies.tables import PartitionTable, settle

__all__ = ["compose_batch"]

logger = logging.getLogger(__name__)

_BATCH = BATCH_SIZE.labels("compose")
_SECONDS = EVALUATION_SECONDS.labels("compose")


async def compose_batch(runtime: Runtime, table: PartitionTable, events: Sequence[Any]) -> None:
    """Apply child firings to their composite parents; emit the root firings."""
    await runtime.automations_loaded.wait()
    started = time.perf_counter()
    fired: list[Fired] = []
    touched: dict[int, DocumentStore] = {}
    pending: list[Awaitable[Any]] = []
    async with table.changing():
        registry = runtime.registry
        for event in events:
            message = event.message
            store = table.store(message.partition)
            try:
                parent_id, firing = decode_child_firing(message.value)
            except Exception as exc:  # noqa: BLE001  # dead-letter, never stop the stream
                reason = f"bad child firing: {exc!r}"
                pending.append(await runtime.dead_letter(message, reason, "bad_child_firing"))
                continue
            parent = registry.composites.get(parent_id)
            if parent is None or store.child_record_applied(parent_id, message.offset):
                continue  # deleted since, or a redelivered record applied already
            store.mark_child_record(parent_id, message.offset)
            touched[message.partition] = store
            if store.child_applied(parent_id, firing.id):
                continue  # evaluate sent this firing again: applied already
            store.mark_child_applied(parent_id, firing.id)
            # The step replay's Engine runs in-process for a child firing.
            climbed = fire_upward(parent, firing, store)
            if climbed is not None:
                fired.append(climbed)
        await settle(runtime, fired, pending, table, touched)
    _BATCH.observe(len(events))
    _SECONDS.observe(time.perf_counter() - started)
