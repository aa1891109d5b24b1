"""The steps that drive the core, written once: replay's Engine and the worker's agents call them.

- `apply_match`: one match (a trigger, its bucketing key, an event) to one store;
- `fire_upward`: a child's firing reaching its composite parent, climbing while
  composites fire;
- `tick_store`: one tick of one store (proactive evaluation, metric triggers, the
  held-event and expired-bucket sweeps), in the order the replay contract fixes.

Each returns what fired as (trigger, firing) pairs and leaves sending to its caller:
the Engine fires upward in-process, the worker sends child firings to the compose
agent, which then runs `fire_upward`. So a replay scenario runs the worker's own steps.
"""

from __future__ import annotations

from collections.abc import Callable

from service.core.composite import child_fired
from service.core.evaluator import (
    EXPIRED_BUCKET_BUFFER,
    evaluate_all_proactively,
    evaluate_event,
    evaluate_proactively,
    sweep_expired_buckets,
    sweep_held_events,
)
from service.core.firings import Firing
from service.core.metrics import CompiledMetricTrigger, MetricTriggers
from service.core.records import EventRecord
from service.core.registry import Registry
from service.core.store import BucketKey, StateStore
from service.core.triggers import CompiledComposite, CompiledEventTrigger

__all__ = [
    "Fired",
    "FiringTrigger",
    "apply_match",
    "evaluate_scheduled",
    "fire_upward",
    "next_run_key",
    "tick_store",
]

FiringTrigger = CompiledEventTrigger | CompiledComposite | CompiledMetricTrigger
# What a step fired: a root's firing goes to its automation, a child's to its parent.
Fired = tuple[FiringTrigger, Firing]


def apply_match(
    trigger: CompiledEventTrigger | CompiledMetricTrigger,
    key: BucketKey,
    event: EventRecord,
    wall: int,
    store: StateStore,
    metrics: MetricTriggers,
) -> list[Fired]:
    """Apply one match to one store at processing time `wall`; what it fired.

    `metrics` are the metric triggers over the same store. Redelivery guards and bucket
    limits are the caller's: replay has neither.
    """
    if isinstance(trigger, CompiledMetricTrigger):
        # Metric triggers aggregate here and fire only at ticks.
        metrics.observe_one(trigger, event)
        return []
    return [(trigger, firing) for firing in evaluate_event(trigger, key, event, wall, store)]


def fire_upward(
    parent: CompiledComposite, firing: Firing, store: StateStore
) -> tuple[CompiledComposite, Firing] | None:
    """A child's firing reaches its parent: apply it, and climb while composites fire.

    Returns the topmost composite that fired, with its firing, if the climb reached a
    root; None if a composite kept the firing to wait for its other children. Each
    parent fires at its child's firing time: the same instant in Prefect, where the
    composite is evaluated inside the child's transaction.
    """
    trigger = parent
    result = child_fired(parent, firing, firing.fired_at, store)
    while result is not None and trigger.parent is not None:
        result = child_fired(trigger.parent, result, result.fired_at, store)
        trigger = trigger.parent
    return None if result is None else (trigger, result)


def next_run_key(trigger_id: str) -> str:
    """The store's meta name of a proactive trigger's next scheduled run."""
    return f"next_run:{trigger_id}"


def evaluate_scheduled(registry: Registry, as_of: int, wall: int, store: StateStore) -> list[Fired]:
    """Prefect's production schedule: each proactive trigger runs when it is due.

    A trigger runs when its next-run time (unset at first) is at or before the
    unshifted wall time (spec §7.1).
    """
    fired: list[Fired] = []
    for trigger in registry.proactive:
        name = next_run_key(trigger.id)
        next_run = store.meta(name)
        if next_run is not None and next_run > wall:
            continue
        firings, run_again_at = evaluate_proactively(trigger, as_of, wall, store)
        store.put_meta(name, run_again_at)
        fired += [(trigger, firing) for firing in firings]
    return fired


def tick_store(
    registry: Registry,
    store: StateStore,
    as_of: int,
    wall: int,
    metrics: MetricTriggers,
    *,
    owns_global: Callable[[CompiledEventTrigger], bool] | None = None,
    scheduled: bool = False,
) -> list[Fired]:
    """One tick of one store; what it fired, in the order it fired.

    Proactive deadlines and the expired-bucket sweep are judged at `as_of` (replay's
    shifted clock, the worker's stream time); metric triggers and held events count
    processing time `wall`, as their firing times and `held_at` do. The order
    (proactive, metrics, held sweep, expired sweep) is the replay contract's.
    `owns_global` says whether a partitioned store keeps a trigger's global bucket;
    `scheduled` runs Prefect's per-trigger schedule instead of every trigger at once.
    """
    fired: list[Fired]
    if scheduled:
        fired = evaluate_scheduled(registry, as_of, wall, store)
    else:
        fired = list(
            evaluate_all_proactively(registry, as_of, wall, store, owns_global=owns_global)
        )
    fired += metrics.evaluate(wall)
    sweep_held_events(wall, store)
    fired += sweep_expired_buckets(registry, as_of - EXPIRED_BUCKET_BUFFER, as_of, wall, store)
    return fired
