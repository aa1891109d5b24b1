"""The newest dead-lettered events and actions, read from their topics for the console."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError

from service.config import Settings
from service.messaging.compat import fetch_highwaters
from service.messaging.topics import assign_every_partition

__all__ = ["DeadLetterFeed", "DeadLetters", "dead_letter"]

logger = logging.getLogger(__name__)

# A dead letter's value is shown cut to this many characters: a record of up to the
# event limit (1 MB) would make the page as large, and its start says what it was.
PREVIEW_CHARS = 2000
KEY_CHARS = 200


def _headers(headers: Iterable[tuple[str, bytes]] | None) -> dict[str, str]:
    return {name: value.decode(errors="replace") for name, value in headers or ()}


def dead_letter(
    kind: str,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int,
    key: bytes | None,
    value: bytes | None,
    headers: Iterable[tuple[str, bytes]] | None,
) -> dict[str, Any]:
    """One dead-lettered record as the console shows it: where from, why, and what."""
    named = _headers(headers)
    text = (value or b"").decode(errors="replace")
    entry: dict[str, Any] = {
        "kind": kind,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "dead_lettered_at": datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat(),
        "reason": named.get("tripwire.reason", ""),
        "source": {
            "topic": named.get("tripwire.topic", ""),
            "partition": named.get("tripwire.partition", ""),
            "offset": named.get("tripwire.offset", ""),
        },
        "key": (key or b"").decode(errors="replace")[:KEY_CHARS],
        "truncated": named.get("tripwire.truncated") == "true" or len(text) > PREVIEW_CHARS,
        "value": text[:PREVIEW_CHARS],
    }
    if kind == "action":
        # The action worker's document (docs/actions.md): the firing, the action, the error.
        try:
            document = orjson.loads(value or b"")
        except orjson.JSONDecodeError:
            document = None
        if isinstance(document, dict):
            firing = document.get("firing")
            firing = firing if isinstance(firing, dict) else {}
            action = document.get("action")
            action = action if isinstance(action, dict) else {}
            entry.update(
                automation_id=str(firing.get("automation_id") or ""),
                automation_name=str(firing.get("automation_name") or ""),
                firing_id=str(firing.get("id") or ""),
                action_index=document.get("action_index"),
                action_type=str(action.get("type") or ""),
                attempts=document.get("attempts"),
                error=str(document.get("error") or entry["reason"]),
            )
    return entry


class DeadLetters:
    """The newest `size` dead letters of both topics, kept in memory (the topics keep all)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: dict[tuple[str, int, int], dict[str, Any]] = {}

    def add(self, entries: Iterable[dict[str, Any]]) -> None:
        for entry in entries:
            # By position: a record read again after a reconnect replaces itself.
            self._kept[(entry["topic"], entry["partition"], entry["offset"])] = entry
        if len(self._kept) > self.size:
            for position in sorted(self._kept, key=self._order)[: len(self._kept) - self.size]:
                del self._kept[position]

    def _order(self, position: tuple[str, int, int]) -> tuple[str, str, int, int]:
        entry = self._kept[position]
        return (entry["dead_lettered_at"], *position)

    def newest(self, limit: int | None = None, kind: str | None = None) -> list[dict[str, Any]]:
        """Newest first; `kind` keeps `event` or `action` dead letters only."""
        chosen = sorted(self._kept, key=self._order, reverse=True)
        out = [self._kept[p] for p in chosen if kind is None or self._kept[p]["kind"] == kind]
        return out if limit is None else out[:limit]


class DeadLetterFeed:
    """Follows both dead-letter topics into `DeadLetters`, from the newest records back.

    Nothing is stored: after a restart each partition is read again from `size` records
    before its end, so the list is rebuilt from the topics as it was.
    """

    def __init__(self, settings: Settings, kept: DeadLetters) -> None:
        self.settings = settings
        self.kept = kept
        self.running = False

    async def run(self) -> None:
        """Follow until cancelled; a broker error is retried, never fatal to the API."""
        while True:
            try:
                await self._follow()
            except (KafkaError, OSError, RuntimeError) as exc:
                self.running = False
                logger.warning("dead letters feed: %s; reading again in 2 s", exc)
                await asyncio.sleep(2.0)

    async def _follow(self) -> None:
        kinds = {self.settings.topic_events_dlq: "event", self.settings.topic_actions_dlq: "action"}
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )
        await consumer.start()
        try:
            tps = await assign_every_partition(consumer, kinds)
            # Not end_offsets(): the embedded broker under-reports it (messaging/compat.py).
            ends = await fetch_highwaters(consumer, tps)
            starts = await consumer.beginning_offsets(tps)
            for tp in tps:
                consumer.seek(tp, max(starts[tp], ends[tp] - self.kept.size))
            self.running = True
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=1000)
                self.kept.add(
                    dead_letter(
                        kinds[tp.topic],
                        tp.topic,
                        tp.partition,
                        record.offset,
                        record.timestamp,
                        record.key,
                        record.value,
                        record.headers,
                    )
                    for tp, records in batches.items()
                    for record in records
                )
        finally:
            self.running = False
            await consumer.stop()
