"""Shared factories for the unit tests: events, automations, and a small time-driven driver.

Times in tests are seconds after 2026-01-01T00:00:00Z (`at(seconds)` turns them into
the core's microseconds). Ids are derived from short names (`eid("e1")`, `tid("t")`),
and the driver reports firings back in those short names, so expectations read like
the spec's own examples.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from service.core.engine import AutomationFiring, Engine, replay_state_event_id
from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.times import SECOND, to_us, us_to_iso
from service.models.automations import Automation, parse_automation
from service.models.events import parse_event
from service.state.memory import MemoryStateStore

__all__ = [
    "BASE",
    "Driver",
    "Fired",
    "aid",
    "at",
    "automation",
    "compound",
    "eid",
    "fires_on",
    "make_event",
    "proactive",
    "reactive",
    "sequence",
    "short",
    "tid",
]

BASE = to_us(datetime(2026, 1, 1, tzinfo=UTC))
_NAMESPACE = uuid.UUID("3d0c7f55-2c1e-4f4e-9a51-7b3f6f0d8a10")
_SHORT: dict[str, str] = {}


def at(seconds: float) -> int:
    """The core's microsecond time of `seconds` after the base instant."""
    return BASE + round(seconds * SECOND)


def seconds_of(micros: int) -> float:
    """The inverse of `at`."""
    return (micros - BASE) / SECOND


def _named(kind: str, name: str) -> str:
    value = str(uuid.uuid5(_NAMESPACE, f"{kind}/{name}"))
    _SHORT[value] = name
    return value


def eid(name: str) -> str:
    """The event id a test calls `name`."""
    return _named("event", name)


def tid(name: str) -> str:
    """The trigger id a test calls `name`."""
    return _named("trigger", name)


def aid(name: str) -> str:
    """The automation id of the automation named `name`."""
    return _named("automation", name)


def short(value: str | None) -> str | None:
    """A test's short name for an id it made, or the id itself."""
    if value is None:
        return None
    return _SHORT.get(value, value)


# -- events --------------------------------------------------------------------------


def _iso(seconds: float) -> str:
    return us_to_iso(at(seconds))


def make_event(
    name: str,
    event: str,
    occurred: float,
    *,
    resource: str | dict[str, str] = "prefect.flow-run.r1",
    related: Sequence[dict[str, str]] = (),
    follows: str | None = None,
    received: float | None = None,
) -> EventRecord:
    """`EventRecord(parse_event({...}))` for an event a test calls `name`.

    `resource` is a resource id or a full label mapping; `follows` names the leader.
    """
    labels = {"prefect.resource.id": resource} if isinstance(resource, str) else dict(resource)
    data: dict[str, Any] = {
        "id": eid(name),
        "occurred": _iso(occurred),
        "event": event,
        "resource": labels,
        "related": [dict(r) for r in related],
        "payload": {},
    }
    if follows is not None:
        data["follows"] = eid(follows)
    if received is not None:
        data["received"] = _iso(received)
    return EventRecord(parse_event(data))


def related_resource(role: str, resource_id: str, **labels: str) -> dict[str, str]:
    """A related resource in `role`."""
    return {"prefect.resource.id": resource_id, "prefect.resource.role": role, **labels}


# -- automations -------------------------------------------------------------------------


def reactive(name: str, **fields: Any) -> dict[str, Any]:
    """A Reactive event trigger with id `tid(name)` (threshold 1, within 0 unless given)."""
    return {"type": "event", "id": tid(name), "posture": "Reactive", **fields}


def proactive(name: str, **fields: Any) -> dict[str, Any]:
    """A Proactive event trigger with id `tid(name)`."""
    return {"type": "event", "id": tid(name), "posture": "Proactive", **fields}


def compound(
    name: str, triggers: list[dict[str, Any]], require: int | str, within: float | None
) -> dict[str, Any]:
    """A compound trigger with id `tid(name)`."""
    return {
        "type": "compound",
        "id": tid(name),
        "triggers": triggers,
        "require": require,
        "within": within,
    }


def sequence(name: str, triggers: list[dict[str, Any]], within: float | None) -> dict[str, Any]:
    """A sequence trigger with id `tid(name)`."""
    return {"type": "sequence", "id": tid(name), "triggers": triggers, "within": within}


def automation(trigger: dict[str, Any], *, name: str = "auto", enabled: bool = True) -> Automation:
    """A validated automation named `name` (id `aid(name)`) with one root trigger."""
    return parse_automation(
        {
            "id": aid(name),
            "name": name,
            "enabled": enabled,
            "trigger": trigger,
            "actions": [{"type": "do-nothing"}],
        }
    )


# -- the driver ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fired:
    """A firing in the tests' short names: root trigger, seconds, triggering event, labels."""

    trigger: str | None
    at: float
    event: str | None = None
    bucket: dict[str, str] = field(default_factory=dict)
    children: tuple[Fired, ...] = ()


def summarize(firing: Firing) -> Fired:
    """A core `Firing` in short names."""
    triggering = firing.triggering_event.id if firing.triggering_event is not None else None
    return Fired(
        trigger=short(firing.trigger_id),
        at=seconds_of(firing.fired_at),
        event=short(triggering),
        bucket=dict(firing.labels),
        children=tuple(summarize(child) for child in firing.child_firings),
    )


class Driver:
    """Feeds events and ticks to an `Engine` with the conformance time model.

    An event is processed at `p_i = max(p_{i-1}, received or occurred)` unless the test
    gives its processing time (`processed_at=`) explicitly.
    """

    def __init__(
        self,
        *automations: Automation,
        proactive_mode: str = "direct",
        feed_state_events: bool = False,
    ) -> None:
        self.store = MemoryStateStore()
        self.engine = Engine(
            list(automations),
            self.store,
            proactive_mode=proactive_mode,
            feed_state_events=feed_state_events,
            state_event_id=replay_state_event_id,
        )
        self.wall: int | None = None
        self.last_tick: int | None = None
        self.raw: list[AutomationFiring] = []
        self.fired: list[Fired] = []

    def send(self, event: EventRecord, *, processed_at: float | None = None) -> list[Fired]:
        """Process one event; return what fired."""
        if processed_at is not None:
            wall = at(processed_at)
        else:
            arrival = event.received if event.received is not None else event.occurred
            wall = arrival if self.wall is None else max(self.wall, arrival)
        assert self.last_tick is None or wall > self.last_tick, "event before a past tick"
        self.wall = wall
        return self._record(self.engine.process(event, wall))

    def tick(self, *moments: float) -> list[Fired]:
        """Run the periodic work at each moment, in order; return what fired."""
        out: list[Fired] = []
        for moment in moments:
            wall = at(moment)
            assert self.wall is None or wall >= self.wall, "tick before a past event"
            self.last_tick = wall
            out += self._record(self.engine.tick(wall))
        return out

    def ticks(self, start: float, stop: float, step: float) -> list[Fired]:
        """Ticks at start, start + step, ... up to and including stop."""
        count = round((stop - start) / step)
        return self.tick(*(start + i * step for i in range(count + 1)))

    def run(self, *items: EventRecord | float) -> list[Fired]:
        """Events (sent) and numbers (ticks) in the given order."""
        out: list[Fired] = []
        for item in items:
            out += self.send(item) if isinstance(item, EventRecord) else self.tick(item)
        return out

    def _record(self, firings: Iterable[AutomationFiring]) -> list[Fired]:
        firings = list(firings)
        self.raw += firings
        out = [summarize(f.firing) for f in firings]
        self.fired += out
        return out


def fires_on(trigger: dict[str, Any], *events: EventRecord) -> list[bool]:
    """For each event on its own: does a fresh automation with `trigger` fire on it?"""
    return [bool(Driver(automation(trigger)).send(event)) for event in events]


def unordered(fired: Iterable[Fired]) -> list[Fired]:
    """Firings in a canonical order, to compare groups whose order the spec leaves free."""
    return sorted(
        fired,
        key=lambda f: (float(f.at), str(f.trigger), str(f.event), sorted(f.bucket.items())),
    )


# -- fixtures: factories -----------------------------------------------------------------


@pytest.fixture
def event_factory() -> Callable[..., EventRecord]:
    """Build validated events: `event_factory(name, event, occurred, ...)`."""
    return make_event


@pytest.fixture
def automation_factory() -> Callable[..., Automation]:
    """Build validated automations around one root trigger."""
    return automation


@pytest.fixture
def driver_factory() -> Callable[..., Driver]:
    """Build a `Driver` over the given automations."""
    return Driver
