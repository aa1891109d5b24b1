"""The whole trigger engine over one state store: Prefect's consumer, in one pure object.

`process(event, wall)` is `triggers.py:consumer.message_handler` plus
`reactive_evaluation`; `tick(wall)` is the periodic work and the proactive loop, in the
order the replay contract fixes (lost followers, proactive evaluation, sweeps). The
caller supplies every time; nothing here reads a clock. The stream service runs the
same pieces (Router, evaluators, composites) split across its agents.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable

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
from service.core.ids import uuid5_str
from service.core.metrics import CompiledMetricTrigger, MetricTriggers
from service.core.records import EventRecord
from service.core.registry import Registry
from service.core.routing import Match, Router
from service.core.state_events import state_change_event
from service.core.store import StateStore
from service.core.triggers import CompiledAutomation, CompiledComposite, CompiledEventTrigger
from service.models.automations import Automation

__all__ = [
    "AutomationFiring",
    "Engine",
    "firing_state_event_id",
    "replay_state_event_id",
]

_STATE_EVENT_NAMESPACE = uuid.UUID("6f3c1a52-3b7e-4a53-9d55-2f6f3b0c9e11")

FiringTrigger = CompiledEventTrigger | CompiledComposite | CompiledMetricTrigger


def replay_state_event_id(number: int, firing: Firing) -> str:
    """The replay contract's id of the n-th state-change event of a run."""
    return uuid5_str(_STATE_EVENT_NAMESPACE, f"state-change-event/{number}")


def firing_state_event_id(number: int, firing: Firing) -> str:
    """A state-change event id derived from the firing, stable across redeliveries."""
    return uuid5_str(_STATE_EVENT_NAMESPACE, f"firing/{firing.id}/{firing.state}")


class AutomationFiring:
    """A root trigger fired: the automation acts on it.

    Its state-change event is built when first read: `tripwire replay` writes firing
    lines that never read it unless state events are fed back, and building it (its id,
    the triggering event as JSON) cost more than the rest of a firing.
    """

    __slots__ = ("_number", "_state_event", "_state_event_id", "automation", "firing")

    def __init__(
        self,
        automation: CompiledAutomation,
        firing: Firing,
        state_event: EventRecord | None = None,
        *,
        number: int = 0,
        state_event_id: Callable[[int, Firing], str] = firing_state_event_id,
    ) -> None:
        self.automation = automation
        self.firing = firing
        self._state_event = state_event
        self._number = number
        self._state_event_id = state_event_id

    @property
    def state_event(self) -> EventRecord:
        """Prefect's `prefect.automation.triggered` / `.resolved` event for this firing."""
        if self._state_event is None:
            event_id = self._state_event_id(self._number, self.firing)
            self._state_event = state_change_event(self.automation, self.firing, event_id)
        return self._state_event

    def __repr__(self) -> str:
        return f"AutomationFiring({self.automation.name!r}, {self.firing!r})"


class Engine:
    """Evaluates every loaded automation against events and ticks."""

    def __init__(
        self,
        automations: Iterable[Automation],
        store: StateStore,
        *,
        proactive_mode: str = "direct",
        feed_state_events: bool = False,
        state_event_id: Callable[[int, Firing], str] = firing_state_event_id,
    ) -> None:
        if proactive_mode not in ("direct", "scheduled"):
            msg = f"proactive mode must be 'direct' or 'scheduled', not {proactive_mode!r}"
            raise ValueError(msg)
        self.store = store
        self.proactive_mode = proactive_mode
        self.feed_state_events = feed_state_events
        self._state_event_id = state_event_id
        self._firing_count = 0
        self.registry = Registry()
        self.router = Router(self.registry, store)
        self.metrics = MetricTriggers((), store)
        self.load(automations)

    @property
    def automations(self) -> list[CompiledAutomation]:
        """The loaded (enabled) automations, compiled."""
        return self.registry.automations

    def load(self, automations: Iterable[Automation]) -> None:
        """Replace the loaded automations; disabled ones are not loaded (spec §2)."""
        registry = Registry.build(automations)
        # The in-memory schedule resets on every reload, as Prefect's does (spec §7.1).
        for trigger in self.registry.proactive + registry.proactive:
            self.store.put_meta(f"next_run:{trigger.id}", None)
        self.registry = registry
        self.router.registry = registry
        self.metrics = MetricTriggers(registry.metric, self.store)

    # -- events ----------------------------------------------------------------------
    def process(self, event: EventRecord, wall: int) -> list[AutomationFiring]:
        """Evaluate one arriving event at processing time `wall`."""
        out: list[AutomationFiring] = []
        self._apply(self.router.route(event, wall), out)
        self._feed_back(out, wall)
        return out

    def _apply(self, matches: list[Match], out: list[AutomationFiring]) -> None:
        for match in matches:
            trigger = match.trigger
            if isinstance(trigger, CompiledMetricTrigger):
                # Metric triggers aggregate here and fire only at ticks.
                self.metrics.observe_one(trigger, match.event)
                continue
            for firing in evaluate_event(trigger, match.key, match.event, match.wall, self.store):
                self._fire(trigger, firing, match.wall, out)

    # -- ticks -------------------------------------------------------------------------
    def tick(self, wall: int) -> list[AutomationFiring]:
        """The periodic work at `wall`: lost followers, proactive evaluation, sweeps."""
        out: list[AutomationFiring] = []
        self._apply(self.router.release_lost_followers(wall), out)
        as_of = wall + self.router.clock.offset()
        if self.proactive_mode == "direct":
            for trigger, firing in evaluate_all_proactively(self.registry, as_of, wall, self.store):
                self._fire(trigger, firing, wall, out)
        else:
            self._scheduled(as_of, wall, out)
        # Metric triggers are judged at the tick's wall time (docs/metric-triggers.md).
        for metric, firing in self.metrics.evaluate(wall):
            self._fire(metric, firing, wall, out)
        sweep_held_events(wall, self.store)
        expired = sweep_expired_buckets(
            self.registry, as_of - EXPIRED_BUCKET_BUFFER, as_of, wall, self.store
        )
        for trigger, firing in expired:
            self._fire(trigger, firing, wall, out)
        self.router.ordering.forget_expired(wall)
        self._feed_back(out, wall)
        return out

    def _scheduled(self, as_of: int, wall: int, out: list[AutomationFiring]) -> None:
        # Prefect's production schedule: a trigger runs when its next-run time (unset
        # at first) is at or before the unshifted wall time (spec §7.1).
        for trigger in self.registry.proactive:
            next_run = self.store.meta(f"next_run:{trigger.id}")
            if next_run is not None and next_run > wall:
                continue
            firings, run_again_at = evaluate_proactively(trigger, as_of, wall, self.store)
            self.store.put_meta(f"next_run:{trigger.id}", run_again_at)
            for firing in firings:
                self._fire(trigger, firing, wall, out)

    # -- firings -----------------------------------------------------------------------
    def _fire(
        self, trigger: FiringTrigger, firing: Firing | None, wall: int, out: list[AutomationFiring]
    ) -> None:
        # `fire()`: a child's firing goes to its parent, a root's to the automation.
        while firing is not None:
            parent = trigger.parent
            if parent is None:
                self._act(trigger.automation, firing, out)
                return
            firing = child_fired(parent, firing, wall, self.store)
            trigger = parent

    def _act(
        self, automation: CompiledAutomation, firing: Firing, out: list[AutomationFiring]
    ) -> None:
        self._firing_count += 1
        out.append(
            AutomationFiring(
                automation, firing, number=self._firing_count, state_event_id=self._state_event_id
            )
        )

    def _feed_back(self, out: list[AutomationFiring], wall: int) -> None:
        # Replay's --feed-state-events: state-change events go back in as input, at the
        # same processing time, in the order they were produced (automation chaining).
        if not self.feed_state_events:
            return
        queue = deque([f.state_event for f in out])
        while queue:
            produced = len(out)
            self._apply(self.router.route(queue.popleft(), wall), out)
            queue.extend([f.state_event for f in out[produced:]])
