"""The core's view of an event: the fields triggers read, with times as microseconds."""

from __future__ import annotations

from typing import Any

from service.core.times import to_us
from service.models.events import Event

__all__ = ["EventRecord"]


class EventRecord:
    """A validated event as the core reads it; `source` keeps the full Prefect event."""

    __slots__ = (
        "_json",
        "follows",
        "id",
        "name",
        "occurred",
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
    def from_validated(cls, event: Event, data: dict[str, Any]) -> EventRecord:
        """A freshly validated event that keeps its decoded JSON for cheap re-encoding."""
        record = cls.from_json(data, to_us(event.occurred), None)
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
            assert self.source is not None  # noqa: S101  # one of the two is always set
            self._json = self.source.model_dump(mode="json")
        return self._json

    def __repr__(self) -> str:
        return f"EventRecord({self.name!r}, id={self.id}, occurred={self.occurred})"
