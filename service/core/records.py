"""The core's view of an event: the fields triggers read, with times as microseconds."""

from __future__ import annotations

from typing import Any

import orjson

from service.core.times import to_us
from service.models.events import Event

__all__ = ["EventRecord"]


class EventRecord:
    """A validated event as the core reads it; `source` keeps the full Prefect event.

    `raw`, when set, is the event's JSON exactly as it was received and validated:
    encoders embed it as is (`json_value`), and `to_json` parses it only when asked.
    """

    __slots__ = (
        "_json",
        "follows",
        "id",
        "name",
        "occurred",
        "raw",
        "received",
        "related",
        "resource",
        "source",
    )

    def __init__(self, source: Event | None, received: int | None = None) -> None:
        if source is None:
            return  # filled in by from_json
        self.source: Event | None = source
        self._json: dict[str, Any] | None = None
        self.raw: bytes | None = None
        self.id = str(source.id)
        self.name = source.event
        self.occurred = to_us(source.occurred)
        self.received = to_us(source.received) if source.received is not None else received
        self.follows = str(source.follows) if source.follows is not None else None
        self.resource = source.resource
        self.related = source.related

    @classmethod
    def from_json(cls, data: dict[str, Any], occurred: int, received: int | None) -> EventRecord:
        """Rebuild an event that was validated before (a match record, a stored bucket)."""
        record = cls(None)
        record.source = None
        record._json = data
        record.raw = None
        record.id = str(data["id"])
        record.name = data["event"]
        record.occurred = occurred
        record.received = received
        follows = data.get("follows")
        record.follows = str(follows) if follows is not None else None
        record.resource = data["resource"]
        record.related = data.get("related") or []
        return record

    @classmethod
    def from_raw(
        cls,
        raw: bytes,
        fields: tuple[str, str, int, int | None, str | None],
        resource: dict[str, str],
        related: list[dict[str, str]],
    ) -> EventRecord:
        """An event validated before, from its JSON bytes and the fields the core reads.

        `fields` is (id, name, occurred, received, follows); the bytes are parsed only
        if someone asks for `to_json()`.
        """
        record = cls(None)
        record.source = None
        record._json = None
        record.raw = raw
        record.id, record.name, record.occurred, record.received, record.follows = fields
        record.resource = resource
        record.related = related
        return record

    @classmethod
    def from_validated(
        cls, event: Event, data: dict[str, Any], raw: bytes | None = None
    ) -> EventRecord:
        """A freshly validated event that keeps its decoded JSON (and the bytes it came as)."""
        record = cls.from_json(data, to_us(event.occurred), None)
        record.raw = raw
        record.id = str(event.id)
        record.follows = str(event.follows) if event.follows is not None else None
        record.received = to_us(event.received) if event.received is not None else None
        return record

    def with_received(self, received: int) -> EventRecord:
        """Stamp the event as received at `received` if it carried no `received`."""
        if self.received is None:
            self.received = received
        return self

    def to_json(self) -> dict[str, Any]:
        """The full event as Prefect's JSON."""
        if self._json is None:
            if self.raw is not None:
                self._json = orjson.loads(self.raw)
            else:
                assert self.source is not None  # noqa: S101  # one of the three is always set
                self._json = self.source.model_dump(mode="json")
        return self._json

    def json_value(self) -> dict[str, Any] | orjson.Fragment:
        """The event for an orjson encoder: its original bytes when held, else `to_json()`.

        The bytes go into the output as they are, neither parsed nor encoded again.
        """
        if self.raw is not None:
            return orjson.Fragment(self.raw)
        return self.to_json()

    def __repr__(self) -> str:
        return f"EventRecord({self.name!r}, id={self.id}, occurred={self.occurred})"
