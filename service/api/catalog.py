"""The API's view of the automations topic: reads follow the topic, writes wait until seen."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, MessageSizeTooLargeError

from service.config import Settings
from service.errors import ServiceError, ValidationFailed
from service.messaging.follow import Changes, CompactedFollower
from service.models.automations import Automation, parse_automation

__all__ = ["Catalog", "RecordTooLarge", "Stored", "WriteFailed", "WriteTimeout", "stored_bytes"]

logger = logging.getLogger(__name__)


class WriteTimeout(ServiceError):
    """A write reached the broker but the API did not see it come back in time."""

    retriable = True


class RecordTooLarge(ServiceError):
    """An automation fits the body limit but its stored record is over a record limit.

    Operator action: split or shorten the automation, or raise the limit the message names.
    """


class WriteFailed(ServiceError):
    """The automations topic could not be written (broker unavailable, refused, timed out)."""

    retriable = True


@dataclass(frozen=True, slots=True)
class Stored:
    """One automation as the API serves it: the model plus Prefect's ORM fields."""

    automation: Automation
    created: datetime
    updated: datetime
    owner_resource: str | None = None

    @property
    def id(self) -> uuid.UUID:
        assert self.automation.id is not None  # noqa: S101  # parse_automation sets it
        return self.automation.id

    def related_resources(self) -> set[str]:
        """Prefect's automation_related_resources: the owner and selected deployments."""
        related = {self.owner_resource} if self.owner_resource else set()
        for action in self.automation.actions:
            extra = action.model_extra or {}
            selected = extra.get("source", "selected") == "selected"
            if action.type == "run-deployment" and selected and extra.get("deployment_id"):
                related.add(f"prefect.deployment.{extra['deployment_id']}")
        return related

    def revised(self, automation: Automation) -> Stored:
        """A new version of this automation: same `created` and owner, `updated` now."""
        return Stored(
            automation,
            created=self.created,
            updated=datetime.now(UTC),
            owner_resource=self.owner_resource,
        )

    def to_json(self) -> dict[str, Any]:
        """Prefect's `Automation` response shape."""
        data = self.automation.model_dump(mode="json")
        data["created"] = self.created.isoformat()
        data["updated"] = self.updated.isoformat()
        return data


def stored_bytes(stored: Stored) -> bytes:
    """The record value: the automation, with the fields only the API reads."""
    data = stored.to_json()
    if stored.owner_resource:
        data["owner_resource"] = stored.owner_resource
    return orjson.dumps(data)


def _decode(value: bytes) -> Stored:
    data = orjson.loads(value)
    automation = parse_automation(data)
    epoch = datetime.fromtimestamp(0, UTC)
    created = _time(data.get("created")) or epoch
    return Stored(
        automation,
        created=created,
        updated=_time(data.get("updated")) or created,
        owner_resource=data.get("owner_resource"),
    )


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


class Catalog:
    """Every automation on the topic, kept current by a follower task."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.automations: dict[str, Stored] = {}
        self._follower = CompactedFollower(
            settings.kafka_bootstrap, settings.topic_automations, self._apply, fetch_wait_ms=20
        )
        self._producer: AIOKafkaProducer | None = None
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def max_record_bytes(self) -> int:
        """The largest automation record the API's producer sends.

        Twice the body limit: the stored form adds trigger ids and every default, and at
        the default body limit this is aiokafka's own 1 MiB default, under Kafka's.
        """
        return 2 * self.settings.api_max_body_bytes

    @property
    def loaded(self) -> bool:
        return self._follower.loaded.is_set() and self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            acks="all",
            max_request_size=self.max_record_bytes,
        )
        await self._producer.start()
        self._task = asyncio.create_task(self._follower.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()

    async def wait_loaded(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._follower.loaded.wait(), seconds)
        except TimeoutError:
            return False
        return True

    def _apply(self, changes: Changes) -> None:
        for key, value in changes.items():
            automation_id = key.decode(errors="replace")
            if value is None:
                self.automations.pop(automation_id, None)
                continue
            try:
                self.automations[automation_id] = _decode(value)
            except (orjson.JSONDecodeError, ValidationFailed) as exc:
                # Written by something other than this API; workers ignore it too.
                logger.warning("automation %s on the topic is invalid: %s", automation_id, exc)
                self.automations.pop(automation_id, None)

    def get(self, automation_id: uuid.UUID) -> Stored | None:
        return self.automations.get(str(automation_id))

    def all(self) -> Iterable[Stored]:
        return self.automations.values()

    async def put(self, stored: Stored) -> None:
        """Write one automation and return once this API's own view holds it."""
        await self._write(str(stored.id), stored_bytes(stored))

    async def delete(self, automation_id: uuid.UUID) -> None:
        await self._write(str(automation_id), None)

    async def _write(self, key: str, value: bytes | None) -> None:
        assert self._producer is not None  # noqa: S101  # start() ran
        topic = self.settings.topic_automations
        size = len(key) + len(value or b"")
        async with self._lock:
            try:
                sent = await self._producer.send(topic, value, key=key.encode())
            except MessageSizeTooLargeError:
                msg = (
                    f"automation {key} is {size} bytes as stored (ids and defaults added), "
                    f"over the {self.max_record_bytes}-byte record limit of the API's "
                    f"producer (twice TRIPWIRE_API_MAX_BODY_BYTES); split it into smaller "
                    "automations or shorten its longest fields"
                )
                raise RecordTooLarge(msg) from None
            except KafkaError as exc:
                raise WriteFailed(_unwritten(key, topic, exc)) from exc
            try:
                metadata = await sent
            except MessageSizeTooLargeError:
                msg = (
                    f"the broker refused automation {key}'s {size}-byte record as too large "
                    f"for '{topic}'; shorten the automation, or raise the topic's "
                    "max.message.bytes (the broker's message.max.bytes)"
                )
                raise RecordTooLarge(msg) from None
            except KafkaError as exc:
                raise WriteFailed(_unwritten(key, topic, exc)) from exc
        seen = await self._follower.wait_for(
            metadata.partition, metadata.offset, self.settings.api_write_timeout
        )
        if not seen:
            msg = (
                f"automation {key} was written to '{self.settings.topic_automations}' but "
                f"did not come back within {self.settings.api_write_timeout:g} s; "
                "read it again shortly"
            )
            raise WriteTimeout(msg)


def _unwritten(key: str, topic: str, exc: KafkaError) -> str:
    return (
        f"automation {key} could not be written to '{topic}': {type(exc).__name__}: {exc}; "
        "nothing was stored unless a read shows it; check the broker and retry"
    )
