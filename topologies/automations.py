"""Every worker reads the compacted automations topic to its end and keeps following it."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson

from service.core.registry import Registry
from service.errors import ValidationFailed
from service.messaging.follow import Changes, CompactedFollower
from service.models.automations import Automation, parse_automation
from topologies.runtime import Runtime

__all__ = ["follow_automations", "write_mirror"]

logger = logging.getLogger(__name__)


async def follow_automations(runtime: Runtime, mirror: Path | None = None) -> None:
    """Load every automation, mark the runtime ready, then apply changes as they come."""
    settings = runtime.settings
    current: dict[str, Automation] = {}

    def apply(changes: Changes) -> None:
        changed = False
        for key, value in changes.items():
            changed |= _apply(current, key, value)
        if changed:
            # Sorted by id: every worker, and every restart, builds the same load order
            # whatever order the topic's partitions were fetched in.
            runtime.set_registry(Registry.build(sorted(current.values(), key=_by_id)))
            if mirror is not None:
                write_mirror(mirror, current.values())

    follower = CompactedFollower(settings.kafka_bootstrap, settings.topic_automations, apply)
    task = asyncio.create_task(follower.run())
    try:
        loaded = asyncio.create_task(follower.loaded.wait())
        await asyncio.wait([task, loaded], return_when=asyncio.FIRST_COMPLETED)
        if follower.loaded.is_set():
            logger.info("loaded %d automations", len(current))
            runtime.automations_loaded.set()
        await task
    finally:
        task.cancel()


def _by_id(automation: Automation) -> str:
    return str(automation.id)


def _apply(current: dict[str, Automation], key_bytes: bytes, value: bytes | None) -> bool:
    key = key_bytes.decode(errors="replace")
    if value is None:
        return current.pop(key, None) is not None
    try:
        automation = parse_automation(orjson.loads(value))
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
