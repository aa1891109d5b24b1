"""`tripwire api`: serve the automations API with uvicorn until stopped."""

from __future__ import annotations

import asyncio
import logging
from types import FrameType

import uvicorn

from service.api.live import LiveFeed
from service.config import Settings
from service.logs import notice
from service.messaging.topics import ensure_topics

__all__ = ["run_api"]

logger = logging.getLogger(__name__)

STREAM_STOP_SECONDS = 3


def run_api(settings: Settings) -> int:
    """Create missing topics, then serve the API on TRIPWIRE_API_HOST:TRIPWIRE_API_PORT."""
    from service.api.app import create_api

    asyncio.run(ensure_topics(settings))
    notice(
        logger, "automations API started on http://%s:%d/api", settings.api_host, settings.api_port
    )
    app = create_api(settings)
    config = uvicorn.Config(
        app,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,  # the process's own logging (service.logs) handles uvicorn's too
        access_log=False,
        # uvicorn waits for every open response before it stops; a stream that somehow
        # outlives the live feed's close is cut after this many seconds.
        timeout_graceful_shutdown=STREAM_STOP_SECONDS,
    )
    _Server(config, app.state.live).run()
    return 0


class _Server(uvicorn.Server):
    """uvicorn's server that ends the console's live streams as soon as it is told to stop.

    A live stream never ends on its own, and uvicorn stops only once every response has:
    without this, Ctrl-C would wait for each open browser tab.
    """

    def __init__(self, config: uvicorn.Config, live: LiveFeed) -> None:
        super().__init__(config)
        self.live = live

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        self.live.close_threadsafe()
