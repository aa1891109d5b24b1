"""`tripwire api`: serve the automations API with uvicorn until stopped."""

from __future__ import annotations

import asyncio
import logging

import uvicorn

from service.config import Settings
from service.logs import notice
from service.messaging.topics import ensure_topics

__all__ = ["run_api"]

logger = logging.getLogger(__name__)


def run_api(settings: Settings) -> int:
    """Create missing topics, then serve the API on TRIPWIRE_API_HOST:TRIPWIRE_API_PORT."""
    from service.api.app import create_api

    asyncio.run(ensure_topics(settings))
    notice(
        logger, "automations API started on http://%s:%d/api", settings.api_host, settings.api_port
    )
    config = uvicorn.Config(
        create_api(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # the process's own logging (service.logs) handles uvicorn's too
        access_log=False,
    )
    uvicorn.Server(config).run()
    return 0
