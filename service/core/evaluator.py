"""Reactive and proactive evaluation of one event trigger's buckets (spec §6, §7).

Implementation notes, after `triggers.py:evaluate` in Prefect 3.9.1. For one bucket and
`now` (the event's `occurred`, or a tick's shifted `as_of`):

1. `now < start`: a late event or an already-fired window; nothing changes (§6.2).
2. An event inside `[start, end)`, or any event when `within` is 0, is counted and
   becomes `last_event`.
3. Reactive fires as soon as `count >= threshold`; Proactive fires once `end <= now`
   with `count < threshold`. A firing deletes the bucket (§6.3, §7.2).
4. Not fired and `now < end`: the bucket stays, except that a proactive event that is
   both an `after` and an expected event and leaves the count at the threshold restarts
   the window at its own `occurred` (§7.5).
5. Fired or `now >= end`: with `after` the bucket is deleted; without `after` and with
   `within` 0 nothing new opens (an unfired bucket stays as it is); otherwise a new
   window `[max(end, now), +within)` opens, and a reactive event that was not counted
   is evaluated again against it (§6.4).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from typing import TYPE_CHECKING

from service.core.firings import Firing, firing_id
from service.core.records import EventRecord
from service.core.store import Bucket, BucketKey, HeldEvent, StateStore
from service.core.times import MINUTE
from service.core.triggers import CompiledEventTrigger

if TYPE_CHECKING:
    from service.core.registry import Registry

__all__ = [
    "EXPIRED_BUCKET_BUFFER",
    "LOOKBACK",
    "evaluate_all_proactively",
    "evaluate_due_bucket",
    "evaluate_event",
    "evaluate_proactively",
    "sweep_expired_buckets",
    "sweep_held_events",
]

# ordering/__init__.py:PRECEDING_EVENT_LOOKBACK; also the follower wait limit.
LOOKBACK = 15 * MINUTE
# server.events.expired_bucket_buffer
EXPIRED_BUCKET_BUFFER = MINUTE
# automation_held_events.HELD_EXPECT_EVENTS_RETENTION = 2 x look-back.
HELD_RETENTION = 2 * LOOKBACK


def evaluate_event(
    trigger: CompiledEventTrigger,
    key: BucketKey,
    event: EventRecord,
    wall: int,
    store: StateStore,
) -> list[Firing]:
    """`reactive_evaluation` for one interested trigger: open, count, fire (spec §6.1)."""
    name = event.name
    expected = trigger.expects(name)
    is_after = trigger.starts_after(name)
    if trigger.holds_events:
        held = store.held(trigger.id, key)
        event_id = event.id
        for h in held:
            if h.event_id == event_id:
                return []  # a held id is not evaluated again (§7.6)
        if expected and not is_after:
            store.put_held(trigger.id, key, _retain(trigger, held, event, wall))

    bucket: Bucket | None = None
    if is_after:
        # `ensure_bucket`: an existing bucket, even an expired one, is kept as it is.
        bucket = store.bucket(trigger.id, key)
        if bucket is None:
            start, end = event.occurred, event.occurred + trigger.within
            initial = -1 if expected else 0
            bucket = Bucket(start, end, initial + _held_in(trigger, key, start, end, store), event)
            _put(trigger, key, bucket, store)
    elif not trigger.after and expected:
        bucket = store.bucket(trigger.id, key)
        if bucket is None:
            # The first-bucket look-back catches events up to 15 min older (§6.1).
            bucket = Bucket(event.occurred - LOOKBACK, event.occurred + trigger.within, 0, event)
            _put(trigger, key, bucket, store)
    if not expected:
        return []
    if bucket is None:
        bucket = store.bucket(trigger.id, key)
        if bucket is None:
            return []  # an expected event before any `after` event never counts
    firings: list[Firing] = []
    _evaluate(trigger, key, bucket, event.occurred, event, wall, store, firings)
    return firings


def evaluate_proactively(
    trigger: CompiledEventTrigger,
    as_of: int,
    wall: int,
    store: StateStore,
) -> tuple[list[Firing], int]:
    """`proactive_evaluation`: fire every due window below its threshold (spec §7.2).

    Returns the firings and Prefect's `run_again_at`. Unlike Prefect, every due bucket
    is evaluated, however many there are (Prefect pages by offset while deleting).
    """
    if not trigger.for_each:
        _ensure_global_bucket(trigger, as_of, store)
    for key in store.satisfied_keys(trigger.id):
        store.delete_bucket(trigger.id, key)
    firings: list[Firing] = []
    for key, bucket in store.due_buckets(trigger.id, as_of):
        _evaluate(trigger, key, bucket, as_of, None, wall, store, firings)
    run_again_at = as_of + trigger.within
    next_end = store.next_end_after(trigger.id, as_of)
    if next_end is not None and next_end < run_again_at:
        run_again_at = next_end
    return firings, run_again_at


def evaluate_all_proactively(
    registry: Registry,
    as_of: int,
    wall: int,
    store: StateStore,
    *,
    owns_global: Callable[[CompiledEventTrigger], bool] | None = None,
) -> list[tuple[CompiledEventTrigger, Firing]]:
    """`proactive_evaluation` of every proactive trigger at once (direct mode, spec §7.2).

    The per-trigger steps run in the same order for every trigger (open the global
    bucket, delete satisfied buckets, fire due ones), but a tick touches only global
    buckets, satisfied buckets and due buckets: its cost follows what is due, not how
    many triggers or open buckets there are. `owns_global` says where a partitioned
    store keeps a trigger's global bucket.
    """
    for trigger in registry.proactive_global:
        if owns_global is None or owns_global(trigger):
            _ensure_global_bucket(trigger, as_of, store)
    for trigger_id, key in store.satisfied_buckets():
        store.delete_bucket(trigger_id, key)
    by_id = registry.event_triggers
    due = [
        (candidate, key)
        for trigger_id, key in store.expired_buckets(as_of)
        if (candidate := by_id.get(trigger_id)) is not None and candidate.proactive
    ]
    due.sort(key=lambda item: item[0].order)  # stable: by end within a trigger
    fired: list[tuple[CompiledEventTrigger, Firing]] = []
    firings: list[Firing] = []
    for trigger, key in due:
        bucket = store.bucket(trigger.id, key)
        if bucket is not None and bucket.end <= as_of:
            _evaluate(trigger, key, bucket, as_of, None, wall, store, firings)
            fired += [(trigger, firing) for firing in firings]
            firings.clear()
    return fired


def _ensure_global_bucket(trigger: CompiledEventTrigger, as_of: int, store: StateStore) -> None:
    # Step 1 of `proactive_evaluation` for a trigger without for_each: an existing
    # bucket is kept; a new one counts the held events in its window (spec §7.2, §7.6).
    if store.bucket(trigger.id, ()) is None:
        start, end = as_of, as_of + trigger.within
        _put(trigger, (), Bucket(start, end, _held_in(trigger, (), start, end, store)), store)


def evaluate_due_bucket(
    trigger: CompiledEventTrigger, key: BucketKey, as_of: int, wall: int, store: StateStore
) -> list[Firing]:
    """Fire one unsatisfied proactive bucket at `as_of` before a sweep deletes it unseen."""
    bucket = store.bucket(trigger.id, key)
    firings: list[Firing] = []
    if bucket is not None and bucket.count < trigger.threshold:
        _evaluate(trigger, key, bucket, as_of, None, wall, store, firings)
    return firings


def sweep_expired_buckets(
    registry: Registry, cutoff: int, as_of: int, wall: int, store: StateStore
) -> list[tuple[CompiledEventTrigger, Firing]]:
    """Delete every bucket with `end <= cutoff` (spec §8 step 4).

    Prefect's sweep can delete a due proactive bucket its schedule has not evaluated
    yet, so it never fires; Tripwire fires it first (docs/semantics.md).
    """
    fired: list[tuple[CompiledEventTrigger, Firing]] = []
    for trigger_id, key in store.expired_buckets(cutoff):
        trigger = registry.event_triggers.get(trigger_id)
        if trigger is not None and trigger.proactive:
            fired += [(trigger, f) for f in evaluate_due_bucket(trigger, key, as_of, wall, store)]
        bucket = store.bucket(trigger_id, key)
        if bucket is not None and bucket.end <= cutoff:
            store.delete_bucket(trigger_id, key)
    return fired


def sweep_held_events(now: int, store: StateStore) -> None:
    """Drop events first held over 30 min before `now` (spec §7.6).

    A key whose window is still open at `now` keeps them; both comparisons are unshifted.
    """
    cutoff = now - HELD_RETENTION
    for trigger_id, key in store.held_keys_held_before(cutoff):
        bucket = store.bucket(trigger_id, key)
        if bucket is not None and bucket.end > now:
            continue
        held = store.held(trigger_id, key)
        kept = [h for h in held if h.held_at >= cutoff]
        if len(kept) != len(held):
            store.put_held(trigger_id, key, kept)


def _evaluate(
    trigger: CompiledEventTrigger,
    key: BucketKey,
    bucket: Bucket,
    now: int,
    event: EventRecord | None,
    wall: int,
    store: StateStore,
    firings: list[Firing],
) -> None:
    count = 1 if event is not None else 0
    if now < bucket.start:
        return
    previous_last = bucket.last_event
    if count and (trigger.immediate or bucket.start <= now < bucket.end):
        bucket = Bucket(bucket.start, bucket.end, bucket.count + 1, event)
        count = 0
    fired = False
    if (trigger.reactive or bucket.end <= now) and trigger.meets_threshold(bucket.count):
        triggering = event if event is not None else bucket.last_event
        firings.append(
            Firing(
                id=firing_id(trigger.id, key, (bucket.start, bucket.end), triggering),
                trigger_id=trigger.id,
                automation_id=trigger.automation.id,
                fired_at=wall,
                labels=trigger.labels(key),
                triggering_event=triggering,
                window=(bucket.start, bucket.end),
            )
        )
        store.delete_bucket(trigger.id, key)
        fired = True
    elif now < bucket.end:
        if event is not None and count == 0 and _restarts(trigger, event, bucket):
            _restart(trigger, key, event, previous_last, store)
        else:
            _put(trigger, key, bucket, store)
        return

    if trigger.after:
        store.delete_bucket(trigger.id, key)
        return
    if trigger.immediate:
        if not fired:
            _put(trigger, key, bucket, store)  # kept as it is, count included (§6.4)
        return
    start = max(bucket.end, now)
    end = start + trigger.within
    if trigger.reactive and count > 0:
        # The event lay past the old window: evaluate it again in the new one (§6.4).
        _evaluate(trigger, key, Bucket(start, end, 0), now, event, wall, store, firings)
        return
    _put(trigger, key, Bucket(start, end, count), store)


def _restarts(trigger: CompiledEventTrigger, event: EventRecord, bucket: Bucket) -> bool:
    # Same event in `after` and `expect`, threshold reached inside the window (§7.5).
    return (
        trigger.proactive
        and bucket.count >= trigger.threshold
        and trigger.starts_after(event.name)
        and trigger.expects(event.name)
    )


def _restart(
    trigger: CompiledEventTrigger,
    key: BucketKey,
    event: EventRecord,
    previous_last: EventRecord | None,
    store: StateStore,
) -> None:
    start, end = event.occurred, event.occurred + trigger.within
    last = event
    if (
        previous_last is not None
        and not trigger.starts_after(previous_last.name)
        and previous_last.occurred >= event.occurred
    ):
        last = previous_last  # the 3.9 rule: a newer expect-only event is kept (§7.5)
    store.delete_bucket(trigger.id, key)
    count = _held_in(trigger, key, start, end, store)
    _put(trigger, key, Bucket(start, end, count, last), store)


def _put(trigger: CompiledEventTrigger, key: BucketKey, bucket: Bucket, store: StateStore) -> None:
    satisfied = trigger.proactive and bucket.count >= trigger.threshold
    store.put_bucket(trigger.id, key, bucket, satisfied=satisfied)


def _held_in(
    trigger: CompiledEventTrigger, key: BucketKey, start: int, end: int, store: StateStore
) -> int:
    if not trigger.holds_events:
        return 0
    held = store.held(trigger.id, key)  # sorted by occurred (see _retain)
    return bisect.bisect_left(held, (end,)) - bisect.bisect_left(held, (start,))


def _retain(
    trigger: CompiledEventTrigger, held: list[HeldEvent], event: EventRecord, wall: int
) -> list[HeldEvent]:
    """Hold a new event and trim the key's held events as Prefect does (§7.6).

    Held lists are kept sorted by (occurred, event id), so trimming is bisection. The
    bisections compare tuples, no key function: `(t,)` sorts before every held event
    that occurred at `t` or later, and the tuple's own order is (occurred, event id).
    """
    held = list(held)
    bisect.insort(held, HeldEvent(event.occurred, event.id, wall))
    horizon = max(HELD_RETENTION, trigger.within)
    oldest_kept = bisect.bisect_left(held, (held[-1].occurred - horizon,))
    if oldest_kept:
        del held[:oldest_kept]
    # In the new event's epoch-aligned slot of width `within`, the first and last
    # `threshold` events decide any window; the ones between can go.
    within = trigger.within
    slot_start = event.occurred // within * within
    first = bisect.bisect_left(held, (slot_start,))
    last = bisect.bisect_left(held, (slot_start + within,))
    keep = max(trigger.threshold, 0)
    if last - first > 2 * keep:
        del held[first + keep : last - keep]
    return held
