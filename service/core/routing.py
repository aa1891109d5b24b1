"""Prefect's triggers consumer up to evaluation: drops, de-duplication, causal order, matching.

The route stage of the stream service and the replay engine both run this; it returns
the (trigger, bucketing key, event, processing time) matches to evaluate, in order.
"""

from __future__ import annotations

from dataclasses import dataclass

from service.core.index import Indexed
from service.core.ordering import MAX_FOLLOWER_DEPTH, EventsClock, Ordering
from service.core.records import EventRecord
from service.core.registry import Registry
from service.core.store import BucketKey, StateStore

__all__ = ["LOG_WRITE", "Match", "Router"]

LOG_WRITE = "prefect.log.write"


@dataclass(slots=True)
class Match:
    """An event that concerns a trigger, with its bucket key and processing time.

    Read-only by convention, not `frozen`: a frozen dataclass's `__init__` costs four
    times as much, and one is built per interested trigger per event.
    """

    trigger: Indexed
    key: BucketKey
    event: EventRecord
    wall: int


class Router:
    """Routes events to the triggers they concern, holding followers for their leaders."""

    def __init__(self, registry: Registry, store: StateStore) -> None:
        self.registry = registry
        self.store = store
        self.clock = EventsClock()
        self.ordering = Ordering(store)

    def route(self, event: EventRecord, wall: int) -> list[Match]:
        """An arriving event at processing time `wall`, plus any followers it releases."""
        # consumer.message_handler drops log writes and recently seen ids (spec §1.2).
        if event.name == LOG_WRITE or self.ordering.already_seen(event.id, wall):
            return []
        out: list[Match] = []
        self._reactive(event.with_received(wall), 0, wall, out)
        return out

    def release_lost_followers(self, wall: int) -> list[Match]:
        """Followers whose leader never came within 15 min, in `occurred` order (§9.2)."""
        out: list[Match] = []
        for follower in self.ordering.lost_followers(wall):
            self._reactive(follower, 0, wall, out)
        return out

    def _reactive(self, event: EventRecord, depth: int, wall: int, out: list[Match]) -> None:
        self.clock.update(event.occurred, wall)
        if event.follows is not None and self.ordering.must_wait(event, wall):
            return
        out.extend(
            Match(trigger, trigger.bucketing_key(event), event, wall)
            for trigger in self.registry.index.interested(event)
        )
        self.ordering.mark_seen(event.id, wall)
        # Followers run at once, in `occurred` order, stamped with the leader's time;
        # one that would be too deep stops the loop and stays held (spec §9.2).
        for follower in self.store.followers_of(event.id):
            if depth + 1 > MAX_FOLLOWER_DEPTH:
                break
            self.store.remove_follower(follower)
            self._reactive(follower, depth + 1, wall, out)
