"""The core's view of an event: the fields triggers read, with times as microseconds."""

from __future__ import annotations

from typing import Any

from service.core.times import to_us
from service.models.events import Event

__all__ = ["EventRecord"]


class EventRecord:
    """A validated event as the core reads it; `source` keeps the full Prefect event."""

    __slots__ = (
        "follows",
        "id",
        "name",
        "occurred",
        "received",
        "related",
        "resource",
        "source",
    )

    def __init__(self, source: Event, received: int | None = None) -> None:
        self.source = source
        self.id = str(source.id)
        self.name = source.event
        self.occurred = to_us(source.occurred)
        self.received = to_us(source.received) if source.received is not None else received
        self.follows = str(source.follows) if source.follows is not None else None
        self.resource = source.resource
        self.related = source.related

    def with_received(self, received: int) -> EventRecord:
        """Return the event stamped as received at `received` if it carried no `received`."""
        if self.received is not None:
            return self
        return EventRecord(self.source, received)

    def to_json(self) -> dict[str, Any]:
        """The full event as Prefect's JSON."""
        return self.source.model_dump(mode="json")

    def __repr__(self) -> str:
        return f"EventRecord({self.name!r}, id={self.id}, occurred={self.occurred})"
