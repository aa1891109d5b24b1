"""The whole trigger engine over one state store: Prefect's consumer, in one pure object.

`process(event, wall)` is `triggers.py:consumer.message_handler` plus
`reactive_evaluation`; `tick(wall)` is the periodic work and the proactive loop, in the
order the replay contract fixes (lost followers, proactive evaluation, sweeps). The
caller supplies every time; nothing here reads a clock. The stream service runs the
same steps (`service/core/steps.py`: apply a match, fire upward, tick a store) split
across its agents.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable

from service.core.firings import Firing
from service.core.ids import uuid5_str
from service.core.metrics import MetricTriggers
from service.core.records import EventRecord
from service.core.registry import Registry
from service.core.routing import Match, Router
from service.core.state_events import state_change_event
from service.core.steps import Fired, apply_match, fire_upward, next_run_key, tick_store
from service.core.store import StateStore
from service.core.triggers import CompiledAutomation
from service.models.automations import Automation

__all__ = [
    "AutomationFiring",
    "Engine",
    "firing_state_event_id",
    "replay_state_event_id",
]

_STATE_EVENT_NAMESPACE = uuid.UUID("6f3c1a52-3b7e-4a53-9d55-2f6f3b0c9e11")


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
            self.store.put_meta(next_run_key(trigger.id), None)
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
            fired = apply_match(
                match.trigger, match.key, match.event, match.wall, self.store, self.metrics
            )
            self._fire(fired, out)

    # -- ticks -------------------------------------------------------------------------
    def tick(self, wall: int) -> list[AutomationFiring]:
        """The periodic work at `wall`: lost followers, proactive evaluation, sweeps."""
        out: list[AutomationFiring] = []
        self._apply(self.router.release_lost_followers(wall), out)
        as_of = wall + self.router.clock.offset()
        scheduled = self.proactive_mode == "scheduled"
        fired = tick_store(
            self.registry, self.store, as_of, wall, self.metrics, scheduled=scheduled
        )
        self._fire(fired, out)
        self.router.ordering.forget_expired(wall)
        self._feed_back(out, wall)
        return out

    # -- firings -----------------------------------------------------------------------
    def _fire(self, fired: list[Fired], out: list[AutomationFiring]) -> None:
        # `fire()`: a child's firing goes to its parent, a root's to the automation. The
        # worker sends a child's firing to the compose agent, which climbs the same way.
        for trigger, firing in fired:
            parent = trigger.parent
            if parent is None:
                self._act(trigger.automation, firing, out)
                continue
            climbed = fire_upward(parent, firing, self.store)
            if climbed is not None:
                self._act(climbed[0].automation, climbed[1], out)

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
