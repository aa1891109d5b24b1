"""The whole trigger engine over one state store: Prefect's consumer, in one pure object.

`process(event, wall)` is `triggers.py:consumer.message_handler` plus
`reactive_evaluation`; `tick(wall)` is the periodic work and the proactive loop, in the
order the replay contract fixes (lost followers, proactive evaluation, sweeps). The
caller supplies every time; nothing here reads a clock.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from service.core.composite import child_fired
from service.core.evaluator import (
    evaluate_due_bucket,
    evaluate_event,
    evaluate_proactively,
    sweep_held_events,
)
from service.core.firings import Firing
from service.core.index import TriggerIndex
from service.core.metrics import CompiledMetricTrigger, MetricTriggers
from service.core.ordering import MAX_FOLLOWER_DEPTH, EventsClock, Ordering
from service.core.records import EventRecord
from service.core.state_events import state_change_event
from service.core.store import StateStore
from service.core.times import MINUTE
from service.core.triggers import (
    CompiledAutomation,
    CompiledComposite,
    CompiledEventTrigger,
    compile_automation,
)
from service.models.automations import Automation

__all__ = ["AutomationFiring", "Engine", "replay_state_event_id"]

LOG_WRITE = "prefect.log.write"
# server.events.expired_bucket_buffer
EXPIRED_BUCKET_BUFFER = 1 * MINUTE
_STATE_EVENT_NAMESPACE = uuid.UUID("6f3c1a52-3b7e-4a53-9d55-2f6f3b0c9e11")


def replay_state_event_id(number: int, firing: Firing) -> str:
    """The replay contract's id of the n-th state-change event of a run."""
    return str(uuid.uuid5(_STATE_EVENT_NAMESPACE, f"state-change-event/{number}"))


def firing_state_event_id(number: int, firing: Firing) -> str:
    """A state-change event id derived from the firing, stable across redeliveries."""
    return str(uuid.uuid5(_STATE_EVENT_NAMESPACE, f"firing/{firing.id}/{firing.state}"))


@dataclass(frozen=True, slots=True)
class AutomationFiring:
    """A root trigger fired: the automation acts on it."""

    automation: CompiledAutomation
    firing: Firing
    state_event: EventRecord


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
        self.clock = EventsClock(store)
        self.ordering = Ordering(store)
        self.automations: list[CompiledAutomation] = []
        self.index = TriggerIndex()
        self.proactive: list[CompiledEventTrigger] = []
        self.metrics = MetricTriggers((), store)
        self._proactive_by_id: dict[str, CompiledEventTrigger] = {}
        self.load(automations)

    def load(self, automations: Iterable[Automation]) -> None:
        """Replace the loaded automations; disabled ones are not loaded (spec §2)."""
        compiled = [
            compile_automation(a, order) for order, a in enumerate(automations) if a.enabled
        ]
        self.automations = compiled
        triggers = [t for a in compiled for t in a.event_triggers()]
        self.index = TriggerIndex(triggers)
        self.proactive = [t for t in triggers if t.proactive]
        self.metrics = MetricTriggers(
            [t for a in compiled for t in a.metric_triggers()], self.store
        )
        self._proactive_by_id = {t.id: t for t in self.proactive}

    # -- events ----------------------------------------------------------------------
    def process(self, event: EventRecord, wall: int) -> list[AutomationFiring]:
        """Evaluate one arriving event at processing time `wall`."""
        out: list[AutomationFiring] = []
        self._consume(event.with_received(wall), wall, out)
        self._feed_back(out, 0, wall)
        return out

    def _consume(self, event: EventRecord, wall: int, out: list[AutomationFiring]) -> None:
        # consumer.message_handler drops log writes and recently seen ids (spec §1.2).
        if event.name == LOG_WRITE or self.ordering.already_seen(event.id, wall):
            return
        self._reactive(event, 0, wall, out)

    def _reactive(
        self, event: EventRecord, depth: int, wall: int, out: list[AutomationFiring]
    ) -> None:
        self.clock.update(event.occurred, wall)
        if self.ordering.must_wait(event, wall):
            return
        for trigger in self.index.interested(event):
            key = trigger.bucketing_key(event)
            for firing in evaluate_event(trigger, key, event, wall, self.store):
                self._fire(trigger, firing, wall, out)
        self.metrics.observe(event)  # metric triggers aggregate; they fire only at ticks
        self.ordering.mark_seen(event.id, wall)
        # Followers run at once, in `occurred` order, stamped with the leader's time;
        # one that would be too deep stops the loop and stays held (spec §9.2).
        for follower in self.store.followers_of(event.id):
            if depth + 1 > MAX_FOLLOWER_DEPTH:
                break
            self.store.remove_follower(follower)
            self._reactive(follower, depth + 1, wall, out)

    # -- ticks -------------------------------------------------------------------------
    def tick(self, wall: int) -> list[AutomationFiring]:
        """The periodic work at `wall`: lost followers, proactive evaluation, sweeps."""
        out: list[AutomationFiring] = []
        for follower in self.ordering.lost_followers(wall):
            self._reactive(follower, 0, wall, out)
        as_of = wall + self.clock.offset()
        for trigger in self.proactive:
            if self.proactive_mode == "scheduled":
                next_run = self.store.meta(f"next_run:{trigger.id}")
                if next_run is not None and next_run > wall:
                    continue
            firings, run_again_at = evaluate_proactively(trigger, as_of, wall, self.store)
            if self.proactive_mode == "scheduled":
                self.store.put_meta(f"next_run:{trigger.id}", run_again_at)
            for firing in firings:
                self._fire(trigger, firing, wall, out)
        # Metric triggers are judged at the tick's wall time (docs/metric-triggers.md).
        for metric, firing in self.metrics.evaluate(wall):
            self._fire(metric, firing, wall, out)
        sweep_held_events(wall, self.store)
        for trigger_id, key in self.store.expired_buckets(as_of - EXPIRED_BUCKET_BUFFER):
            # Prefect's sweep can delete a due proactive bucket that its schedule has not
            # evaluated yet, so it never fires; Tripwire evaluates it first (semantics.md).
            trigger = self._proactive_by_id.get(trigger_id)
            if trigger is not None:
                for firing in evaluate_due_bucket(trigger, key, as_of, wall, self.store):
                    self._fire(trigger, firing, wall, out)
            bucket = self.store.bucket(trigger_id, key)
            if bucket is not None and bucket.end <= as_of - EXPIRED_BUCKET_BUFFER:
                self.store.delete_bucket(trigger_id, key)
        self.ordering.forget_expired(wall)
        self._feed_back(out, 0, wall)
        return out

    # -- firings -----------------------------------------------------------------------
    def _fire(
        self,
        trigger: CompiledEventTrigger | CompiledComposite | CompiledMetricTrigger,
        firing: Firing | None,
        wall: int,
        out: list[AutomationFiring],
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
        event_id = self._state_event_id(self._firing_count, firing)
        event = state_change_event(automation, firing, event_id)
        out.append(AutomationFiring(automation, firing, event))

    def _feed_back(self, out: list[AutomationFiring], start: int, wall: int) -> None:
        # Replay's --feed-state-events: state-change events go back in as input, at the
        # same processing time, in the order they were produced (automation chaining).
        if not self.feed_state_events:
            return
        queue = deque(f.state_event for f in out[start:])
        while queue:
            produced = len(out)
            self._consume(queue.popleft(), wall, out)
            queue.extend(f.state_event for f in out[produced:])
