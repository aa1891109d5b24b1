"""`tripwire worker`: one stream worker on the Kafka cluster the settings name."""

from __future__ import annotations

import asyncio
import gc
import logging

from service.config import Settings
from service.logs import notice
from service.membership import remember_member_id
from service.messaging.topics import ensure_topics

__all__ = ["run_worker"]

logger = logging.getLogger(__name__)


def run_worker(settings: Settings, loglevel: str = "info") -> int:
    """Create missing topics, then run the Faust worker until it is stopped."""
    from faust.worker import Worker

    from topologies.app import create_app

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    created = loop.run_until_complete(ensure_topics(settings))
    if created:
        logger.info("created topics: %s", ", ".join(created))
    # Faust creates its data directory without parents.
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    # A crashed worker's old membership would otherwise hold the group's join until its
    # session times out (service/membership.py).
    remember_member_id(settings.app_id, settings.state_dir / "member-id")
    app, _ = create_app(settings)
    tune_garbage_collector(settings.gc_threshold)
    # The CLI configured logging (TRIPWIRE_LOG_FORMAT); Faust must not replace it.
    worker = Worker(app, loglevel=loglevel, loop=loop, quiet=True, override_logging=False)
    # Faust's start-up spinner writes terminal escapes into the log stream.
    worker.spinner = None
    notice(
        logger, "stream worker started: group %r on %s", settings.app_id, settings.kafka_bootstrap
    )
    worker.execute_from_commandline()
    return 0


def tune_garbage_collector(threshold: int) -> None:
    """Collect young objects every `threshold` allocations, and never scan start-up's.

    A worker allocates a few objects per record and holds a large, long-lived heap (the
    stores' buckets and events); with Python's default of 700 it spent about a fifth of
    its time in the collector (docs/benchmarks.md). Reference cycles are still freed,
    only in larger batches.
    """
    if threshold <= 0:
        return
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(threshold, older, oldest)
    # Modules, compiled automations and the app live for the whole process.
    gc.freeze()
