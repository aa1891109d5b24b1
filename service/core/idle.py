"""When an engine's next tick can change anything, so a backtest can skip idle ticks exactly.

A tick at processing time `wall` (`Engine.tick`, direct mode) does, in order: release
followers received 15 min or more before `wall`; at `as_of = wall + clock offset`, open
a missing global proactive bucket, delete satisfied buckets, fire proactive buckets with
`end <= as_of`; evaluate metric triggers; drop held events first held over 30 min before
`wall`; sweep buckets with `end <= as_of - 60 s`; forget ids seen over 30 min before
`wall`. Between two events nothing else changes the state, and the clock offset only
changes when an event (or a released follower) reaches the router. So every tick
before the earliest of these times is a no-op, state and firings alike:

* a global proactive bucket missing, or a satisfied bucket stored: at once;
* a metric trigger holding state: at once (no exact next time is computed for them:
  the caller ticks every interval while any does);
* the earliest bucket end `E`: at `wall >= E - offset` (the sweep's `E + 60 s` comes
  later, so the proactive bound covers both);
* the earliest held follower's `received + 15 min`;
* the earliest first-held expect event's `held_at + 30 min`;
* the earliest remembered id's `seen + 30 min` (forgetting it changes no result, but a
  skipped tick must not keep the memory from shrinking).

Each bound may be early (a stale heap entry), never late: an early bound costs one
tick that does nothing.
"""

from __future__ import annotations

from typing import Protocol

from service.core.engine import Engine
from service.core.evaluator import HELD_RETENTION
from service.core.ordering import FOLLOWER_WAIT, SEEN_EXPIRATION
from service.core.store import Bucket, BucketKey

__all__ = ["AT_ONCE", "DueTimes", "next_tick_due"]

# Due before any tick there can be: the next tick must run.
AT_ONCE = -(1 << 62)


class DueTimes(Protocol):
    """What the bound reads of a store (the memory store replay and backtest run on)."""

    def bucket(self, trigger_id: str, key: BucketKey) -> Bucket | None: ...

    def metric_state(self, trigger_id: str) -> bytes | None: ...

    def earliest_bucket_end(self) -> int | None: ...

    def has_satisfied(self) -> bool: ...

    def earliest_held_at(self) -> int | None: ...

    def earliest_follower_received(self) -> int | None: ...

    def earliest_seen(self) -> int | None: ...


def next_tick_due(engine: Engine, store: DueTimes) -> int | None:
    """The earliest tick time (`wall`) at which a tick of `engine` may change anything.

    None: no tick changes anything until the next event. `AT_ONCE`: the next tick must
    run. `store` is the engine's own store.
    """
    registry = engine.registry
    if engine.proactive_mode != "direct":
        return AT_ONCE  # each trigger's own schedule: not bounded here
    if store.has_satisfied():
        return AT_ONCE
    for trigger in registry.proactive_global:
        if store.bucket(trigger.id, ()) is None:
            return AT_ONCE
    for metric in registry.metric:
        if store.metric_state(metric.id) is not None:
            return AT_ONCE
    due: int | None = None
    end = store.earliest_bucket_end()
    if end is not None:
        due = end - engine.router.clock.offset()
    for moment, wait in (
        (store.earliest_follower_received(), FOLLOWER_WAIT),
        (store.earliest_held_at(), HELD_RETENTION),
        (store.earliest_seen(), SEEN_EXPIRATION),
    ):
        if moment is not None and (due is None or moment + wait < due):
            due = moment + wait
    return due
