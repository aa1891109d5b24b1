"""`tripwire automations ...`: put automations on, list and remove them from the topic."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from service.config import Settings
from service.errors import ConfigError
from service.messaging.automations import publish_automations
from service.messaging.compat import caught_up, fetch_highwaters
from service.models.automations import Automation, parse_automations

__all__ = ["main"]


def main(args: Any, settings: Settings) -> int:
    """Run one `automations` subcommand; returns the exit status."""
    if args.action == "apply":
        automations = _read(Path(args.file))
        asyncio.run(publish_automations(settings, automations))
        for automation in automations:
            print(f"applied {automation.id} {automation.name}")
        return 0
    if args.action == "rm":
        asyncio.run(publish_automations(settings, [], deleted=args.ids))
        for automation_id in args.ids:
            print(f"removed {automation_id}")
        return 0
    for automation in asyncio.run(read_automations(settings)):
        state = "enabled" if automation.enabled else "disabled"
        print(f"{automation.id}  {state:8}  {automation.name}")
    return 0


def _read(path: Path) -> list[Automation]:
    try:
        data = orjson.loads(path.read_bytes())
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror}"
        raise ConfigError(msg) from None
    except orjson.JSONDecodeError as exc:
        msg = f"{path}: not valid JSON: {exc}"
        raise ConfigError(msg) from None
    return parse_automations(data)


async def read_automations(settings: Settings) -> list[Automation]:
    """The automations currently on the topic (latest record per id, tombstones applied)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(settings.topic_automations) or set()
        tps = [TopicPartition(settings.topic_automations, p) for p in sorted(partitions)]
        if not tps:
            return []
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        target = await fetch_highwaters(consumer, tps)
        current: dict[bytes, bytes | None] = {}
        while not await caught_up(consumer, target):
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for record in records:
                    if record.key is not None:
                        current[record.key] = record.value
        out = []
        for value in current.values():
            if value is not None:
                try:
                    out.extend(parse_automations(orjson.loads(value)))
                except Exception as exc:  # noqa: BLE001  # one bad record must not hide the rest
                    print(f"skipped an unreadable automation: {exc}", file=sys.stderr)
        return out
    finally:
        await consumer.stop()
