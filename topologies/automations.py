"""Every worker reads the compacted automations topic to its end and keeps following it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from service.core.registry import Registry
from service.errors import ValidationFailed
from service.messaging.compat import caught_up, fetch_highwaters
from service.models.automations import Automation, parse_automation
from topologies.runtime import Runtime

__all__ = ["follow_automations", "write_mirror"]

logger = logging.getLogger(__name__)


async def follow_automations(runtime: Runtime, mirror: Path | None = None) -> None:
    """Load every automation, mark the runtime ready, then apply changes as they come."""
    settings = runtime.settings
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    try:
        partitions = consumer.partitions_for_topic(settings.topic_automations) or set()
        tps = [TopicPartition(settings.topic_automations, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        # Not end_offsets(): Tansu under-reports it (broker notes, gap 1).
        target = await fetch_highwaters(consumer, tps) if tps else {}
        current: dict[str, Automation] = {}
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            changed = False
            for records in batches.values():
                for record in records:
                    changed |= _apply(current, record)
            if changed or not runtime.automations_loaded.is_set():
                done = await caught_up(consumer, target)
                if changed:
                    runtime.set_registry(Registry.build(current.values()))
                    if mirror is not None:
                        write_mirror(mirror, current.values())
                if done and not runtime.automations_loaded.is_set():
                    logger.info("loaded %d automations", len(current))
                    runtime.automations_loaded.set()
    except asyncio.CancelledError:
        raise
    finally:
        await consumer.stop()


def _apply(current: dict[str, Automation], record: Any) -> bool:
    key = record.key.decode() if record.key else None
    if key is None:
        logger.warning("automations record without a key at offset %d: ignored", record.offset)
        return False
    if record.value is None:
        return current.pop(key, None) is not None
    try:
        automation = parse_automation(orjson.loads(record.value))
    except (orjson.JSONDecodeError, ValidationFailed) as exc:
        logger.warning("automation %s is invalid and is ignored: %s", key, exc)
        return current.pop(key, None) is not None
    current[key] = automation
    return True


def write_mirror(path: Path, automations: Any) -> None:
    """Keep a copy of the automations so the embedded default can re-publish them."""
    data = [a.model_dump(mode="json") for a in automations]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    tmp.replace(path)
