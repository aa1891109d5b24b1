"""Tripwire's topics: create them with the configured partition count, find and assign them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError, TopicAlreadyExistsError
from aiokafka.structs import TopicPartition

from service.config import Settings
from service.errors import ConfigError

__all__ = ["assign_every_partition", "ensure_topics", "topic_names", "topic_partitions"]

logger = logging.getLogger(__name__)


def topic_names(settings: Settings) -> dict[str, dict[str, str]]:
    """Every topic Tripwire owns, with its configs."""
    compact = {"cleanup.policy": "compact"}
    return {
        settings.topic_events: {},
        settings.topic_events_dlq: {},
        settings.topic_matches: {},
        settings.topic_child_firings: {},
        settings.topic_firings: {},
        settings.topic_automations: compact,
        settings.topic_actions_dlq: {},
    }


async def ensure_topics(settings: Settings) -> list[str]:
    """Create the missing topics; return the names created.

    An auto-created topic would get the broker's default partition count, which breaks
    co-partitioning (broker notes, gap 5).
    """
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, settings.partitions, settings.replication_factor, topic_configs=configs)
            for name, configs in topic_names(settings).items()
            if name not in existing
        ]
        if wanted:
            try:
                await admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                logger.info("another process created some topics first")
        return [t.name for t in wanted]
    finally:
        await admin.close()


async def topic_partitions(settings: Settings, topic: str, hint: str) -> list[int]:
    """The partition ids of an existing topic; ConfigError if it is missing.

    Checked against the full topic list first: a Metadata request naming an unknown
    topic makes the embedded broker create it with 4 partitions (broker notes, gap 5).
    """
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap, request_timeout_ms=10_000
    )
    try:
        await admin.start()
    except KafkaError as exc:
        msg = (
            f"cannot reach the Kafka broker at {settings.kafka_bootstrap} ({exc}); start it "
            "with `make run` (tripwire up) or set TRIPWIRE_KAFKA_BOOTSTRAP"
        )
        raise ConfigError(msg) from None
    try:
        if topic not in set(await admin.list_topics()):
            msg = f"topic {topic!r} does not exist on {settings.kafka_bootstrap}; {hint}"
            raise ConfigError(msg)
        described = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return sorted(int(p["partition"]) for p in described[0]["partitions"])


async def assign_every_partition(consumer: Any, topics: Iterable[str]) -> list[TopicPartition]:
    """Assign every partition of the topics to a started consumer, once they all exist.

    Waits (re-reading the metadata every second) while none of them has partitions yet:
    a reader that starts before the worker created its topics.
    """
    tps: list[TopicPartition] = []
    while not tps:
        for topic in topics:
            for partition in sorted(consumer.partitions_for_topic(topic) or ()):
                tps.append(TopicPartition(topic, partition))
        if not tps:
            await asyncio.sleep(1.0)
            await consumer.topics()  # refreshes the metadata
    consumer.assign(tps)
    return tps
