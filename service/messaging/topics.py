"""Create Tripwire's topics with the configured partition count if they are missing."""

from __future__ import annotations

import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError

from service.config import Settings

__all__ = ["ensure_topics", "topic_names"]

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
