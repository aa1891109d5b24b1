"""Causal ordering by `follows`, de-duplication by id, and the events clock (spec §7.1, §9)."""

from __future__ import annotations

from dataclasses import dataclass

from service.core.records import EventRecord
from service.core.store import StateStore
from service.core.times import MINUTE

__all__ = ["FOLLOWER_WAIT", "MAX_FOLLOWER_DEPTH", "SEEN_EXPIRATION", "EventsClock", "Ordering"]

SEEN_EXPIRATION = 30 * MINUTE
MAX_FOLLOWER_DEPTH = 20
FOLLOWER_WAIT = 15 * MINUTE


class EventsClock:
    """Prefect's events clock (`update_events_clock`, `get_events_clock_offset`).

    Proactive time runs on event time plus the wall time elapsed since the last event.
    Like Prefect's, it lives in process memory and starts again after a restart.
    """

    __slots__ = ("clock", "updated")

    def __init__(self) -> None:
        self.clock: int | None = None
        self.updated: int | None = None

    def update(self, occurred: int, wall: int) -> None:
        """Record an event that reached evaluation at `wall`."""
        seen = occurred if occurred < wall else wall
        if self.clock is None or seen >= self.clock:
            self.clock = seen
        self.updated = wall

    def offset(self) -> int:
        """Return clock minus the wall time of the latest event; 0 before any event."""
        if self.clock is None or self.updated is None:
            return 0
        return self.clock - self.updated


@dataclass(slots=True)
class Ordering:
    """The seen-id cache and the follower buffer of `ordering/memory.py`."""

    store: StateStore

    def already_seen(self, event_id: str, now: int) -> bool:
        """Processed less than 30 minutes ago (spec §9.3)."""
        at = self.store.seen_at(event_id)
        return at is not None and now < at + SEEN_EXPIRATION

    def mark_seen(self, event_id: str, now: int) -> None:
        """The event's evaluation has ended."""
        self.store.mark_seen(event_id, now)

    def must_wait(self, event: EventRecord, now: int) -> bool:
        """Hold the event while its leader is unseen and it is under 15 min old (§9.2)."""
        leader = event.follows
        if leader is None or leader == event.id or self.already_seen(leader, now):
            return False
        received = event.received if event.received is not None else now
        if now - received >= FOLLOWER_WAIT:
            return False
        self.store.add_follower(event)
        return True

    def lost_followers(self, now: int) -> list[EventRecord]:
        """Followers held 15 minutes or more, released for evaluation on their own."""
        lost = self.store.followers_received_by(now - FOLLOWER_WAIT)
        for event in lost:
            self.store.remove_follower(event)
        return lost

    def forget_expired(self, now: int) -> None:
        """Bound the seen-id memory to the 30-minute window."""
        self.store.forget_seen_before(now - SEEN_EXPIRATION)
