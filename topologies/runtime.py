"""What one worker holds between batches: automations, routing state, partition stores."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson

from service.config import Settings
from service.core.engine import AutomationFiring, firing_state_event_id
from service.core.firings import Firing
from service.core.metrics import CompiledMetricTrigger, MetricTriggers
from service.core.registry import Registry
from service.core.routing import Router
from service.core.state_events import state_change_event
from service.core.triggers import CompiledComposite, CompiledEventTrigger
from service.messaging.records import (
    dead_letter_headers,
    encode_child_firing,
    firing_record_bytes,
)
from service.metrics import EVENTS_DEAD_LETTERED, FIRINGS
from service.state.documents import DocumentStore
from service.state.memory import MemoryStateStore
from topologies.partitioning import automation_partition

__all__ = ["Runtime"]

logger = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
Fired = tuple[CompiledEventTrigger | CompiledComposite | CompiledMetricTrigger, Firing]
Send = Callable[[str, bytes | None, bytes | None, int | None, Headers | None], Awaitable[Any]]


class Runtime:
    """Shared by the agents and timers of one worker process (one event loop)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.registry = Registry()
        # Prefect's seen-id cache, follower buffer and events clock live in process
        # memory too (spec §9.3, §7.1); they are rebuilt as events arrive.
        self.router = Router(self.registry, MemoryStateStore(max_seen=settings.max_seen_ids))
        # Per partition, cached over the buckets and composites tables (PartitionTable).
        self.evaluate_stores: dict[int, DocumentStore] = {}
        self.compose_stores: dict[int, DocumentStore] = {}
        self._metric_evaluators: dict[int, tuple[Registry, MetricTriggers]] = {}
        self.automations_loaded = asyncio.Event()
        # Tables whose assigned partitions were recovered at least once (readiness).
        self.recovered_tables: set[str] = set()
        self._last_wall = 0
        self.send: Send | None = None

    def now(self) -> int:
        """Processing time in microseconds, strictly increasing within this process.

        Every event gets its own instant, as in a consumer that handles one at a time,
        so firing times (and with them sequence order) follow arrival order.
        """
        self._last_wall = max(self._last_wall + 1, time.time_ns() // 1000)
        return self._last_wall

    def metrics_for(self, partition: int, store: DocumentStore) -> MetricTriggers:
        """The metric triggers over one evaluate partition's store (rebuilt on reload)."""
        current = self._metric_evaluators.get(partition)
        if current is None or current[0] is not self.registry or current[1].store is not store:
            current = (self.registry, MetricTriggers(self.registry.metric, store))
            self._metric_evaluators[partition] = current
        return current[1]

    def set_registry(self, registry: Registry) -> None:
        """Swap in a new automations snapshot (hot reload)."""
        self.registry = registry
        self.router.registry = registry

    async def emit(self, fired: Iterable[Fired]) -> list[Awaitable[Any]]:
        """Send root firings to the firings topic and child firings to their parents."""
        assert self.send is not None  # noqa: S101  # set when the app is built
        settings = self.settings
        pending: list[Awaitable[Any]] = []
        states: dict[str, int] = {}
        for trigger, firing in fired:
            parent = trigger.parent
            if parent is not None:
                partition = automation_partition(firing.automation_id, settings.partitions)
                value = encode_child_firing(parent.id, firing)
                pending.append(
                    await self.send(
                        settings.topic_child_firings,
                        firing.automation_id.encode(),
                        value,
                        partition,
                        None,
                    )
                )
                continue
            automation = trigger.automation
            states[firing.state] = states.get(firing.state, 0) + 1
            logger.debug(
                "firing %s (%s) of automation %s",
                firing.id,
                firing.state,
                firing.automation_id,
                extra={
                    "automation_id": firing.automation_id,
                    "trigger_id": firing.trigger_id,
                    "firing_id": firing.id,
                },
            )
            event = state_change_event(automation, firing, firing_state_event_id(0, firing))
            record = AutomationFiring(automation, firing, event)
            pending.append(
                await self.send(
                    settings.topic_firings,
                    firing.id.encode(),
                    firing_record_bytes(record),
                    None,
                    None,
                )
            )
            if settings.emit_state_events:
                # Prefect publishes it on the ordinary events topic, so automations can
                # chain (spec §11).
                resource_id = event.resource["prefect.resource.id"]
                pending.append(
                    await self.send(
                        settings.topic_events,
                        resource_id.encode(),
                        orjson.dumps(event.json_value()),
                        None,
                        None,
                    )
                )
        for state, count in states.items():
            FIRINGS.labels(state).inc(count)
        return pending

    async def dead_letter(self, message: Any, reason: str, kind: str) -> Awaitable[Any]:
        """Send a record we cannot use to the dead-letter topic, original bytes intact.

        `reason` goes to the record's header; `kind`, a short fixed name, is the metric's
        label (a free-text label would be a new time series per bad record).
        """
        assert self.send is not None  # noqa: S101  # set when the app is built
        headers = dead_letter_headers(reason, message.topic, message.partition, message.offset)
        EVENTS_DEAD_LETTERED.labels(kind).inc()
        logger.warning(
            "dead-lettered %s[%d]@%d: %s",
            message.topic,
            message.partition,
            message.offset,
            reason,
            extra={
                "topic": message.topic,
                "partition": message.partition,
                "offset": message.offset,
                "reason": kind,
            },
        )
        sent: Awaitable[Any] = await self.send(
            self.settings.topic_events_dlq, message.key, message.value, None, headers
        )
        return sent
