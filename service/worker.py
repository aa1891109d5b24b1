"""`tripwire worker`: one stream worker on the Kafka cluster the settings name."""

from __future__ import annotations

import asyncio
import logging

from service.config import Settings
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
    app, _ = create_app(settings)
    # The CLI configured logging (TRIPWIRE_LOG_FORMAT); Faust must not replace it.
    worker = Worker(app, loglevel=loglevel, loop=loop, quiet=True, override_logging=False)
    # Faust's start-up spinner writes terminal escapes into the log stream.
    worker.spinner = None
    worker.execute_from_commandline()
    return 0
