"""The state the core reads and writes, as one protocol with typed tables.

The core decides; a store only keeps. Every backend (memory, RocksDB) passes the same
contract suite (`tests/contract/`). Times are microseconds since the epoch.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import NamedTuple, Protocol

from service.core.firings import Firing
from service.core.records import EventRecord

__all__ = ["Bucket", "BucketKey", "HeldEvent", "StateStore"]

BucketKey = tuple[str, ...]


class Bucket(NamedTuple):
    """One (trigger, key) window `[start, end)`: Prefect's `automation_bucket` row (spec §5).

    Immutable, and a named tuple rather than a frozen dataclass because one is built for
    every counted event: a tuple is several times cheaper to construct.
    """

    start: int
    end: int
    # Shadows tuple.count on purpose: Prefect's column name, used everywhere.
    count: int  # type: ignore[assignment]
    last_event: EventRecord | None = None


class HeldEvent(NamedTuple):
    """An expect-only event held for a proactive trigger with `after` (spec §7.6)."""

    occurred: int
    event_id: str
    held_at: int


class StateStore(Protocol):
    """Everything the core keeps between events and ticks."""

    # -- buckets ------------------------------------------------------------------
    def bucket(self, trigger_id: str, key: BucketKey) -> Bucket | None:
        """The key's bucket, if one is open."""

    def put_bucket(
        self, trigger_id: str, key: BucketKey, bucket: Bucket, *, satisfied: bool = False
    ) -> None:
        """Store the key's bucket; `satisfied` marks a proactive bucket at its threshold."""

    def delete_bucket(self, trigger_id: str, key: BucketKey) -> None:
        """Remove the key's bucket (no error if there is none)."""

    def satisfied_keys(self, trigger_id: str) -> list[BucketKey]:
        """Keys whose bucket was last stored with `satisfied=True`."""

    def satisfied_buckets(self) -> list[tuple[str, BucketKey]]:
        """(trigger id, key) of every satisfied bucket, over all triggers."""

    def due_buckets(self, trigger_id: str, as_of: int) -> list[tuple[BucketKey, Bucket]]:
        """The trigger's buckets with `end <= as_of`, by end then key."""

    def next_end_after(self, trigger_id: str, moment: int) -> int | None:
        """The smallest bucket end of the trigger that is `> moment`."""

    def expired_buckets(self, cutoff: int) -> list[tuple[str, BucketKey]]:
        """(trigger id, key) of every bucket with `end <= cutoff`, by end."""

    def buckets(self, trigger_id: str) -> Iterator[tuple[BucketKey, Bucket]]:
        """Every bucket of one trigger, by key."""

    def bucket_count(self) -> int:
        """How many buckets are open, over all triggers."""

    # -- held expect events (spec §7.6) ---------------------------------------------
    def held(self, trigger_id: str, key: BucketKey) -> list[HeldEvent]:
        """The key's held events ([] if none)."""

    def put_held(self, trigger_id: str, key: BucketKey, events: list[HeldEvent]) -> None:
        """Replace the key's held events; an empty list deletes them."""

    def held_keys(self) -> list[tuple[str, BucketKey]]:
        """Every (trigger id, key) that holds events."""

    def held_keys_held_before(self, cutoff: int) -> list[tuple[str, BucketKey]]:
        """Every (trigger id, key) holding an event first held before `cutoff`."""

    # -- composite child firings (spec §10) -------------------------------------------
    def child_firings(self, composite_id: str) -> list[Firing]:
        """The stored child firings of a composite trigger, in the order stored."""

    def put_child_firings(self, composite_id: str, firings: list[Firing]) -> None:
        """Replace them; an empty list deletes them."""

    # -- processed event ids (spec §9.3) ----------------------------------------------
    def seen_at(self, event_id: str) -> int | None:
        """When the id was last processed, if it is remembered."""

    def mark_seen(self, event_id: str, at: int) -> None:
        """Remember that the id was processed at `at`."""

    def forget_seen_before(self, cutoff: int) -> None:
        """Forget ids processed before `cutoff`."""

    # -- causal ordering (spec §9.2) ------------------------------------------------
    def add_follower(self, event: EventRecord) -> None:
        """Hold an event until its leader (`event.follows`) has been processed."""

    def followers_of(self, leader_id: str) -> list[EventRecord]:
        """The events waiting for this leader, in `occurred` order."""

    def remove_follower(self, event: EventRecord) -> None:
        """Stop holding the event."""

    def followers_received_by(self, cutoff: int) -> list[EventRecord]:
        """Held events with `received <= cutoff`, in `occurred` order."""

    # -- small named values: events clock, proactive schedule ---------------------------
    def meta(self, name: str) -> int | None:
        """A named integer, if set."""

    def put_meta(self, name: str, value: int | None) -> None:
        """Set a named integer; None deletes it."""

    # -- metric triggers (docs/metric-triggers.md) -------------------------------------
    def metric_state(self, trigger_id: str) -> bytes | None:
        """A metric trigger's encoded state (open runs, aggregates, phase), if any."""

    def put_metric_state(self, trigger_id: str, data: bytes | None) -> None:
        """Replace a metric trigger's encoded state; None deletes it."""

    # -- lifecycle -------------------------------------------------------------------
    def drop_trigger(self, trigger_id: str) -> None:
        """Forget every bucket, held event, child firing and metric state of a trigger."""
