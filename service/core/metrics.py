"""Metric triggers: flow-run successes, duration and lateness, judged at ticks (issue #5)."""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import orjson

from service.core.firings import Firing, firing_id
from service.core.patterns import compile_related_specs, compile_resource_spec, covers_related
from service.core.records import EventRecord
from service.core.store import StateStore
from service.core.times import SECOND

if TYPE_CHECKING:
    from service.core.triggers import CompiledAutomation, CompiledComposite

__all__ = [
    "FIRING",
    "FLOW_RUN_PREFIX",
    "MAX_OPEN_RUNS",
    "OK",
    "PENDING",
    "RESOLVING",
    "SLOTS_PER_RANGE",
    "SLOT_HEADROOM",
    "CompiledMetricTrigger",
    "MetricState",
    "MetricTriggers",
    "evaluate_state",
    "metric_value",
    "observe_state",
    "window_totals",
]

FLOW_RUN_PREFIX = "prefect.flow-run."
# `range` is cut into this many epoch-aligned sub-intervals; the window is whole ones.
SLOTS_PER_RANGE = 60
# Per trigger, runs with an open clock (Pending / Running / Late not yet closed); past
# this the run opened longest ago is forgotten, so memory stays bounded.
MAX_OPEN_RUNS = 10_000
# At most this many windows' worth of sub-intervals are kept: room for outcomes dated
# ahead of the last evaluation, or arriving before the first, before the oldest go.
SLOT_HEADROOM = 2

OK, PENDING, FIRING, RESOLVING = "ok", "pending", "firing", "resolving"
TRIGGERED, RESOLVED = "Triggered", "Resolved"

_FAILURES = frozenset({"Failed", "Crashed"})
_FINAL = frozenset({"Completed", "Failed", "Crashed", "Cancelled"})
_TERMINAL = frozenset({"Completed", "Failed", "Crashed"})

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


@dataclass(frozen=True, slots=True)
class _Rules:
    """Which flow-run states open a run's clock, close it with an outcome, or drop it."""

    opens: frozenset[str]
    closes: frozenset[str]
    drops: frozenset[str]

    @property
    def names(self) -> frozenset[str]:
        return self.opens | self.closes | self.drops


_RULES = {
    # A run that went Pending counts once it reaches a final state: 1 unless it failed.
    "successes": _Rules(frozenset({"Pending"}), _FINAL, frozenset()),
    # Running to the next terminal state; Cancelled ends the run without a duration.
    "duration": _Rules(frozenset({"Running"}), _TERMINAL, frozenset({"Cancelled"})),
    # Late to the next Running or Crashed; any other final state ends it uncounted.
    "lateness": _Rules(
        frozenset({"Late"}), frozenset({"Running", "Crashed"}), _FINAL - {"Crashed"}
    ),
}


@dataclass(eq=False, slots=True)
class CompiledMetricTrigger:
    """A metric trigger with its matchers and window geometry precomputed."""

    id: str
    automation: CompiledAutomation
    parent: CompiledComposite | None
    metric: str  # "successes" | "duration" | "lateness"
    threshold: float
    operator: str
    range: int  # microseconds
    firing_for: int  # microseconds
    match: Mapping[str, Any]
    match_related: Any
    width: int = field(init=False)  # one sub-interval, microseconds
    slots: int = field(init=False)  # sub-intervals before the current one in the window
    names: frozenset[str] = field(init=False)  # flow-run state names the metric reads
    order: int = 0
    prefilter_patterns: tuple[str, ...] = field(init=False)  # for the trigger index
    rules: _Rules = field(init=False)
    _compare: Callable[[float, float], bool] = field(init=False)
    _match: Any = field(init=False)
    _related: Any = field(init=False)

    def __post_init__(self) -> None:
        self.width = max(1, -(-self.range // SLOTS_PER_RANGE))
        self.slots = -(-self.range // self.width)
        self.rules = _RULES[self.metric]
        self.names = self.rules.names
        self.prefilter_patterns = tuple(sorted(FLOW_RUN_PREFIX + name for name in self.names))
        self._compare = _OPERATORS[self.operator]
        self._match = compile_resource_spec(self.match)
        self._related = compile_related_specs(self.match_related)

    @property
    def fingerprint(self) -> str:
        """What stored aggregates depend on; a change of metric or range starts afresh."""
        return f"{self.metric}/{self.width}"

    def covers(self, event: EventRecord) -> bool:
        """A flow-run state event this metric reads, passing `match` and `match_related`."""
        name = event.name
        if not name.startswith(FLOW_RUN_PREFIX) or name[len(FLOW_RUN_PREFIX) :] not in self.names:
            return False
        return self.covers_resources(event)

    def covers_resources(self, event: EventRecord) -> bool:
        """`match` on the primary resource, then each `match_related` object."""
        return self._match(event.resource) and covers_related(self._related, event.related)

    def bucketing_key(self, event: EventRecord) -> tuple[str, ...]:
        """A metric has one state per trigger: no bucketing key."""
        return ()

    def breaches(self, value: float) -> bool:
        """`value <operator> threshold`."""
        return self._compare(value, self.threshold)


@dataclass(slots=True)
class MetricState:
    """One trigger's memory: open runs, per-sub-interval sums, and its breach phase."""

    fingerprint: str
    # run id -> when its clock opened; insertion order is opening order (for eviction).
    runs: dict[str, int] = field(default_factory=dict)
    # sub-interval index -> [sum, count]; sums are integers (µs, or successes) so the
    # incremental aggregate is exact.
    slots: dict[int, list[int]] = field(default_factory=dict)
    phase: str = OK
    start: int | None = None  # the breach's first evaluation (pending, firing, resolving)
    since: int | None = None  # the recovery's first evaluation (resolving)

    def is_idle(self) -> bool:
        return self.phase == OK and not self.runs and not self.slots

    def encode(self) -> bytes:
        return orjson.dumps(
            {
                "v": self.fingerprint,
                "runs": list(self.runs.items()),
                "slots": [[k, s, c] for k, (s, c) in self.slots.items()],
                "phase": self.phase,
                "start": self.start,
                "since": self.since,
            }
        )

    @classmethod
    def decode(cls, data: bytes, fingerprint: str) -> MetricState:
        raw = orjson.loads(data)
        state = cls(fingerprint, phase=raw["phase"], start=raw["start"], since=raw["since"])
        # Aggregates of another metric or sub-interval width mean nothing now; the
        # breach phase is kept so a firing breach can still resolve.
        if raw["v"] == fingerprint:
            state.runs = {run: at for run, at in raw["runs"]}
            state.slots = {k: [s, c] for k, s, c in raw["slots"]}
        return state


def observe_state(
    state: MetricState, trigger: CompiledMetricTrigger, name: str, run: str, at: int
) -> bool:
    """Apply one flow-run state (`name` without the prefix) at `at`; True if it changed."""
    rules = trigger.rules
    if name in rules.closes:
        opened = state.runs.pop(run, None)
        if opened is None:
            return False
        if trigger.metric == "successes":
            amount = 0 if name in _FAILURES else 1
        else:
            # Out-of-order `occurred` times could make a span negative; it counts as 0.
            amount = max(0, at - opened)
        _record(state, trigger, at, amount)
        return True
    if name in rules.opens:
        # The first opening state since the last close starts the clock; repeats do not.
        if run in state.runs:
            return False
        state.runs[run] = at
        if len(state.runs) > MAX_OPEN_RUNS:
            del state.runs[next(iter(state.runs))]
        return True
    if name in rules.drops:
        return state.runs.pop(run, None) is not None
    return False


def _record(state: MetricState, trigger: CompiledMetricTrigger, at: int, amount: int) -> None:
    index = at // trigger.width
    slot = state.slots.get(index)
    if slot is None:
        state.slots[index] = [amount, 1]
        if len(state.slots) > SLOT_HEADROOM * (trigger.slots + 1):
            del state.slots[min(state.slots)]
    else:
        slot[0] += amount
        slot[1] += 1


def window_totals(state: MetricState, trigger: CompiledMetricTrigger, at: int) -> tuple[int, int]:
    """(sum, count) over the window at `at`: its sub-interval and the `slots` before it."""
    last = at // trigger.width
    first = last - trigger.slots
    total = count = 0
    for index, (amount, n) in state.slots.items():
        if first <= index <= last:
            total += amount
            count += n
    return total, count


def metric_value(trigger: CompiledMetricTrigger, total: int, count: int) -> float | None:
    """The metric from window totals: a rate for successes, mean seconds otherwise."""
    if count == 0:
        return None  # no data: neither breaches nor resolves
    if trigger.metric == "successes":
        return total / count
    return total / count / SECOND


def evaluate_state(
    state: MetricState, trigger: CompiledMetricTrigger, at: int
) -> tuple[list[Firing], bool]:
    """One evaluation at `at`: prune, compute, step the breach phase; (firings, changed)."""
    first = at // trigger.width - trigger.slots
    stale = [index for index in state.slots if index < first]
    for index in stale:
        del state.slots[index]
    changed = bool(stale)
    value = metric_value(trigger, *window_totals(state, trigger, at))
    if value is None:
        return [], changed
    holds = trigger.breaches(value)
    firings: list[Firing] = []
    before = (state.phase, state.start, state.since)
    # Prometheus-style `for`: a breach (or a recovery) must hold at every evaluation
    # from its first one until one at least `firing_for` later.
    if state.phase == OK and holds:
        state.phase, state.start = PENDING, at
    if state.phase == PENDING:
        start = _required(state.start)
        if not holds:
            state.phase, state.start = OK, None
        elif at - start >= trigger.firing_for:
            state.phase = FIRING
            firings.append(_firing(trigger, TRIGGERED, start, at, value))
    elif state.phase == FIRING and not holds:
        state.phase, state.since = RESOLVING, at
    if state.phase == RESOLVING:
        since = _required(state.since)
        if holds:
            state.phase, state.since = FIRING, None
        elif at - since >= trigger.firing_for:
            firings.append(_firing(trigger, RESOLVED, _required(state.start), at, value))
            state.phase, state.start, state.since = OK, None, None
    return firings, changed or before != (state.phase, state.start, state.since)


def _required(value: int | None) -> int:
    if value is None:
        msg = "metric breach phase has no start time"
        raise ValueError(msg)
    return value


def _firing(
    trigger: CompiledMetricTrigger, state: str, start: int, at: int, value: float
) -> Firing:
    # The breach start is the window of the id: a Triggered and its Resolved pair up,
    # and a redelivered evaluation derives the same id.
    return Firing(
        id=firing_id(trigger.id, (), (start, start), None, state),
        trigger_id=trigger.id,
        automation_id=trigger.automation.id,
        fired_at=at,
        labels={},
        triggering_event=None,
        state=state,
        window=(start, at),
        triggering_value=value,
    )


class MetricTriggers:
    """The loaded metric triggers over one store: events feed them, ticks judge them."""

    def __init__(self, triggers: Iterable[CompiledMetricTrigger], store: StateStore) -> None:
        self.triggers = list(triggers)
        self.store = store
        # Decoded states by trigger id, with the bytes they were stored as: reused only
        # while the store still holds exactly those bytes.
        self._cache: dict[str, tuple[bytes, MetricState]] = {}

    def __len__(self) -> int:
        return len(self.triggers)

    def observe(self, event: EventRecord) -> None:
        """Feed one processed event to every metric trigger it concerns."""
        for trigger in self.triggers:
            if trigger.covers(event):
                self.observe_one(trigger, event)

    def observe_one(self, trigger: CompiledMetricTrigger, event: EventRecord) -> None:
        """Feed one event that `trigger.covers()` to that trigger."""
        name = event.name[len(FLOW_RUN_PREFIX) :]
        run = event.resource["prefect.resource.id"]
        state = self._load(trigger) or MetricState(trigger.fingerprint)
        # observe_state changes nothing when it returns False, so the cached state
        # still matches the stored bytes.
        if observe_state(state, trigger, name, run, event.occurred):
            self._save(trigger, state)

    def evaluate(self, wall: int) -> list[tuple[CompiledMetricTrigger, Firing]]:
        """Evaluate every metric trigger at `wall`, in load order.

        A child's Resolved firing is not returned: composites take Triggered firings only.
        """
        out: list[tuple[CompiledMetricTrigger, Firing]] = []
        for trigger in self.triggers:
            state = self._load(trigger)
            if state is None:
                continue  # nothing observed, nothing breaching: no value
            firings, changed = evaluate_state(state, trigger, wall)
            if changed:
                self._save(trigger, state)
            out += [(trigger, f) for f in firings if f.state == TRIGGERED or trigger.parent is None]
        return out

    def totals(self, trigger: CompiledMetricTrigger, wall: int) -> tuple[int, int]:
        """(sum, count) of the window at `wall`, without changing anything."""
        state = self._load(trigger)
        return (0, 0) if state is None else window_totals(state, trigger, wall)

    def value(self, trigger: CompiledMetricTrigger, wall: int) -> float | None:
        """The metric at `wall` (None: no data), without changing anything."""
        return metric_value(trigger, *self.totals(trigger, wall))

    def _load(self, trigger: CompiledMetricTrigger) -> MetricState | None:
        data = self.store.metric_state(trigger.id)
        if data is None:
            self._cache.pop(trigger.id, None)
            return None
        cached = self._cache.get(trigger.id)
        if cached is not None and (cached[0] is data or cached[0] == data):
            return cached[1]
        state = MetricState.decode(data, trigger.fingerprint)
        self._cache[trigger.id] = (data, state)
        return state

    def _save(self, trigger: CompiledMetricTrigger, state: MetricState) -> None:
        if state.is_idle():
            self.store.put_metric_state(trigger.id, None)
            self._cache.pop(trigger.id, None)
            return
        data = state.encode()
        self.store.put_metric_state(trigger.id, data)
        self._cache[trigger.id] = (data, state)
