"""What one worker holds between batches: automations, routing state, partition stores."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import orjson
from aiokafka.errors import MessageSizeTooLargeError

from service.config import Settings
from service.core.engine import AutomationFiring, firing_state_event_id
from service.core.hold import EventTimeHold
from service.core.metrics import MetricTriggers
from service.core.registry import Registry
from service.core.routing import Router
from service.core.state_events import state_change_event
from service.core.steps import Fired
from service.core.watermarks import Watermarks
from service.errors import DeadLetterFailed
from service.messaging.records import (
    DeadLetterCopy,
    RoutedMatch,
    dead_letter_copies,
    dead_letter_headers,
    encode_child_firing,
    firing_record_bytes,
)
from service.metrics import EVENTS_DEAD_LETTERED, FIRINGS
from service.state.documents import DocumentStore
from topologies.partitioning import automation_partition

__all__ = ["Fired", "Headers", "Runtime", "Send"]

logger = logging.getLogger(__name__)

Headers = list[tuple[str, bytes]]
Send = Callable[[str, bytes | None, bytes | None, int | None, Headers | None], Awaitable[Any]]


class Runtime:
    """Shared by the agents and timers of one worker process (one event loop)."""

    def __init__(self, settings: Settings, send: Send) -> None:
        self.settings = settings
        # The producer's send: every record the agents and timers write goes through it.
        self.send = send
        self.registry = Registry()
        # Per events partition, the seen-id cache and the follower buffer (spec §9) are
        # documents of the route table, so that both survive restarts and handovers.
        self.route_stores: dict[int, DocumentStore] = {}
        self._routers: dict[int, Router] = {}
        # Per partition, cached over the buckets and composites tables (PartitionTable).
        self.evaluate_stores: dict[int, DocumentStore] = {}
        self.compose_stores: dict[int, DocumentStore] = {}
        self._metric_evaluators: dict[int, tuple[Registry, MetricTriggers]] = {}
        self.automations_loaded = asyncio.Event()
        # Tables whose assigned partitions were recovered at least once (readiness).
        self.recovered_tables: set[str] = set()
        # agent -> why its partitions are being read again after a failed batch.
        self.stalled: dict[str, str] = {}
        # matches partition -> the watermarks of the events partitions that feed it.
        self.watermarks: dict[int, Watermarks] = {}
        # matches partition -> its matches waiting for event-time order, each with the
        # offset of its record.
        self.holds: dict[int, EventTimeHold[RoutedMatch]] = {}
        self._last_wall = 0

    def now(self) -> int:
        """Processing time in microseconds, strictly increasing within this process.

        Every event gets its own instant, as in a consumer that handles one at a time,
        so firing times (and with them sequence order) follow arrival order.
        """
        self._last_wall = max(self._last_wall + 1, time.time_ns() // 1000)
        return self._last_wall

    def route_store(self) -> DocumentStore:
        """A new route-table store: seen ids bounded by TRIPWIRE_MAX_SEEN_IDS."""
        return DocumentStore(max_seen=self.settings.max_seen_ids)

    def router_for(self, partition: int, store: DocumentStore) -> Router:
        """The router of one events partition, over its route-table store."""
        router = self._routers.get(partition)
        if router is None or router.store is not store:
            router = self._routers[partition] = Router(self.registry, store)
        elif router.registry is not self.registry:
            router.registry = self.registry
        return router

    def watermarks_of(self, partition: int) -> Watermarks:
        """The watermarks feeding one matches partition (every events partition's)."""
        watermarks = self.watermarks.get(partition)
        if watermarks is None:
            watermarks = self.watermarks[partition] = Watermarks(self.settings.partitions)
        return watermarks

    def hold_of(self, partition: int) -> EventTimeHold[RoutedMatch]:
        """The matches one matches partition holds for event-time order."""
        hold = self.holds.get(partition)
        if hold is None:
            hold = self.holds[partition] = EventTimeHold()
        return hold

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

    async def emit(self, fired: Iterable[Fired]) -> list[Awaitable[Any]]:
        """Send root firings to the firings topic and child firings to their parents."""
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

    async def dead_letter(self, message: Any, reason: str, kind: str) -> Awaitable[None]:
        """Send a record we cannot use to the dead-letter topic; await the result once.

        The copy keeps the original key and bytes; one over the producer's or the
        broker's size limit goes as a cut copy (`dead_letter_copies`: value and key cut),
        whose headers say so.
        `reason` goes to the record's header; `kind`, a short fixed name, is the metric's
        label (a free-text label would be a new time series per bad record). What the
        returned awaitable raises is a `DeadLetterFailed`: its batch must not be
        committed.
        """
        logger.warning(
            "dead-lettering %s[%d]@%d: %s",
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
        headers = dead_letter_headers(reason, message.topic, message.partition, message.offset)
        copies = dead_letter_copies(message.key, message.value)
        # The first copy is handed to the producer now, in the batch's order.
        first = await self._send_dead_letter(copies[0], headers)
        return asyncio.ensure_future(self._dead_lettered(message, copies, headers, first, kind))

    async def _send_dead_letter(
        self, copy: DeadLetterCopy, headers: Headers
    ) -> Awaitable[Any] | BaseException:
        key, value, extra = copy
        topic = self.settings.topic_events_dlq
        try:
            sent: Awaitable[Any] = await asyncio.wait_for(
                self.send(topic, key, value, None, headers + extra),
                self.settings.producer_timeout,
            )
        except Exception as exc:  # noqa: BLE001  # judged with the ack's errors below
            return exc
        return sent

    async def _dead_lettered(
        self,
        message: Any,
        copies: list[DeadLetterCopy],
        headers: Headers,
        sent: Awaitable[Any] | BaseException,
        kind: str,
    ) -> None:
        for index in range(len(copies)):
            if index:
                sent = await self._send_dead_letter(copies[index], headers)
            try:
                if isinstance(sent, BaseException):
                    raise sent
                # Bounded here too: a topic the broker will not describe (refused, or
                # missing with auto-creation off) holds aiokafka in a metadata wait.
                await asyncio.wait_for(sent, self.settings.producer_timeout)
            except Exception as exc:
                if _too_large(exc) and index + 1 < len(copies):
                    logger.warning(
                        "%s[%d]@%d: the dead-letter copy is too large (%s); sending it cut",
                        message.topic,
                        message.partition,
                        message.offset,
                        exc,
                    )
                    continue
                topic = self.settings.topic_events_dlq
                msg = (
                    f"{message.topic}[{message.partition}]@{message.offset} could not be "
                    f"written to the dead-letter topic {topic}: {exc!r}"
                )
                raise DeadLetterFailed(msg) from exc
            # Counted once the broker has it: the metric never counts a lost copy.
            EVENTS_DEAD_LETTERED.labels(kind).inc()
            return


def _too_large(exc: BaseException) -> bool:
    """Did the producer or the broker refuse the record for its size?"""
    return isinstance(exc, MessageSizeTooLargeError) or isinstance(
        exc.__cause__, MessageSizeTooLargeError
    )
