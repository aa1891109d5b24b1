"""`python -m service.messaging.create_topics`: the deployment's one-shot topic creation step."""

from __future__ import annotations

import asyncio
import sys

from service.config import Settings
from service.logs import configure_logging
from service.messaging.topics import ensure_topics, topic_names

__all__ = ["main"]


def main() -> int:
    """Create every missing Tripwire topic on TRIPWIRE_KAFKA_BOOTSTRAP; print what exists."""
    settings = Settings()
    configure_logging(settings.log_format, "topics")
    created = set(asyncio.run(ensure_topics(settings)))
    for name in topic_names(settings):
        print(f"{name}: {'created' if name in created else 'exists'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
