"""Write automations to the compacted automations topic: the source of truth."""

from __future__ import annotations

from collections.abc import Iterable

import orjson
from aiokafka import AIOKafkaProducer

from service.config import Settings
from service.models.automations import Automation

__all__ = ["automation_bytes", "publish_automations"]


def automation_bytes(automation: Automation) -> bytes:
    """The record value of an automation (its id is the record key)."""
    return orjson.dumps(automation.model_dump(mode="json"))


async def publish_automations(
    settings: Settings,
    automations: Iterable[Automation],
    deleted: Iterable[str] = (),
) -> None:
    """Upsert automations by id and delete others (tombstones); wait for the broker."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
    await producer.start()
    try:
        futures = [
            await producer.send(
                settings.topic_automations, automation_bytes(a), key=str(a.id).encode()
            )
            for a in automations
        ]
        futures += [
            await producer.send(settings.topic_automations, None, key=automation_id.encode())
            for automation_id in deleted
        ]
        for future in futures:
            await future
    finally:
        await producer.stop()
