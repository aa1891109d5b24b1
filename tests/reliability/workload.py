"""A seeded mix of reactive, proactive and composite automations whose firings replay exactly.

The stream service and `tripwire replay` agree on a firing's id only when the input
leaves them nothing to decide differently. So this workload is shaped to that end
(docs/reliability.md says what is compared and why):

* Every event of one deployment is produced with the deployment's id as Kafka key:
  its runs' events keep their order, and so do all matches of a trigger that looks
  at one deployment only (the composites' children, the one trigger without
  `for_each`). Every other trigger buckets per flow run.
* Event time starts at the wall clock, 1 ms apart; every window but one is an hour
  long. No bucket expires and no hour-long proactive deadline passes while the events
  flow: those proactive buckets are opened, carried across kills and handovers and
  closed, and replay and the stream both fire none of them.
* One proactive trigger, "never-started" (Pending, then no Running), has a window of
  seconds: its deadlines pass while the events flow, across kills and handovers, and
  it must fire for exactly the runs that never start. Its window is
  `NEVER_STARTED_MARGIN` longer than the longest wait from Pending to Running of any
  run that does start, so that set does not depend on when a tick runs: the stream
  (at its stream time) and replay (with ticks) fire the same ids.
"""

from __future__ import annotations

import math
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from service.models.automations import Automation, parse_automations

WINDOW = 3600
PROACTIVE_WITHIN = WINDOW
NEVER_STARTED_MARGIN = 15  # seconds between the longest real wait and the deadline


@dataclass(frozen=True)
class Workload:
    automations: list[Automation]
    events: list[dict[str, Any]]
    keys: list[bytes]  # the Kafka key of each event: its deployment
    start: datetime
    never_started_within: int  # seconds: the "never-started" trigger's window

    def records(self) -> list[tuple[bytes | None, bytes]]:
        return [(k, orjson.dumps(e)) for k, e in zip(self.keys, self.events, strict=True)]


def deployment_id(d: int) -> str:
    return f"prefect.deployment.{uuid.uuid5(uuid.NAMESPACE_URL, f'tripwire-reliability/{d}')}"


def _related(d: int) -> dict[str, Any]:
    return {"prefect.resource.role": "deployment", "prefect.resource.id": deployment_id(d)}


def _reactive(expect: str, d: int, threshold: int = 1) -> dict[str, Any]:
    return {
        "type": "event",
        "posture": "Reactive",
        "expect": [expect],
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "match_related": _related(d),
        # Per run: without `for_each` a fired bucket cools down for its whole window.
        "for_each": ["prefect.resource.id"],
        "threshold": threshold,
        "within": WINDOW,
    }


def automation_specs(
    webhook: str | None = None, never_started_within: int = 60
) -> list[dict[str, Any]]:
    """Twelve automations: five reactive, three proactive, four composite.

    With `webhook`, each calls it once per firing (the action worker's effects);
    otherwise each does nothing.
    """
    actions = [{"type": "call-webhook", "url": webhook}] if webhook else [{"type": "do-nothing"}]
    per_run = {"match": {"prefect.resource.id": "prefect.flow-run.*"}}
    many = {"prefect.resource.role": "deployment", "prefect.resource.id": []}
    specs: list[dict[str, Any]] = [
        {
            "name": "failed-run",
            "trigger": {
                **per_run,
                "type": "event",
                "posture": "Reactive",
                "expect": ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"],
                "match_related": {
                    **many,
                    "prefect.resource.id": [deployment_id(d) for d in (4, 8, 12)],
                },
                "for_each": ["prefect.resource.id"],
                "threshold": 1,
                "within": WINDOW,
            },
        },
        {
            "name": "busy-run",
            "trigger": {
                **per_run,
                "type": "event",
                "posture": "Reactive",
                "expect": ["prefect.flow-run.*"],
                "match_related": _related(0),
                "for_each": ["prefect.resource.id"],
                "threshold": 6,
                "within": WINDOW,
            },
        },
        {
            "name": "crashes-in-deployment",
            "trigger": {**_reactive("prefect.flow-run.Crashed", 1), "for_each": []},
        },
        {
            "name": "retried-run",
            "trigger": {
                **per_run,
                "type": "event",
                "posture": "Reactive",
                "after": ["prefect.flow-run.Failed"],
                "expect": ["prefect.flow-run.Running"],
                "match_related": {
                    **many,
                    "prefect.resource.id": [deployment_id(d) for d in (2, 5, 9)],
                },
                "for_each": ["prefect.resource.id"],
                "threshold": 1,
                "within": WINDOW,
            },
        },
        {
            "name": "not-prod-completions",
            "trigger": {
                **per_run,
                "type": "event",
                "posture": "Reactive",
                "expect": ["prefect.flow-run.Completed"],
                "match_related": {
                    **many,
                    "prefect.resource.id": [deployment_id(d) for d in (7, 11)],
                },
                "for_each": ["prefect.resource.id"],
                "threshold": 1,
                "within": WINDOW,
            },
        },
        {
            "name": "stuck-running",
            "trigger": {
                **per_run,
                "type": "event",
                "posture": "Proactive",
                "after": ["prefect.flow-run.Running"],
                "expect": [
                    "prefect.flow-run.Completed",
                    "prefect.flow-run.Failed",
                    "prefect.flow-run.Crashed",
                ],
                "match_related": {
                    **many,
                    "prefect.resource.id": [deployment_id(d) for d in range(10)],
                },
                "for_each": ["prefect.resource.id"],
                "threshold": 1,
                "within": PROACTIVE_WITHIN,
            },
        },
        {
            "name": "stuck-pending",
            "trigger": {
                **per_run,
                "type": "event",
                "posture": "Proactive",
                "after": ["prefect.flow-run.Pending"],
                "expect": ["prefect.flow-run.Running"],
                "match_related": {
                    **many,
                    "prefect.resource.id": [deployment_id(d) for d in range(6)],
                },
                "for_each": ["prefect.resource.id"],
                "threshold": 1,
                "within": PROACTIVE_WITHIN,
            },
        },
        {
            "name": "never-started",
            "trigger": {
                **per_run,
                "type": "event",
                "posture": "Proactive",
                "after": ["prefect.flow-run.Pending"],
                "expect": ["prefect.flow-run.Running"],
                "for_each": ["prefect.resource.id"],
                "threshold": 1,
                "within": never_started_within,
            },
        },
        {
            "name": "failed-and-crashed",
            "trigger": {
                "type": "compound",
                "require": "all",
                "within": WINDOW,
                "triggers": [
                    _reactive("prefect.flow-run.Failed", 3),
                    _reactive("prefect.flow-run.Crashed", 3),
                ],
            },
        },
        {
            "name": "two-completions-or-a-failure",
            "trigger": {
                "type": "compound",
                "require": "any",
                "within": WINDOW,
                "triggers": [
                    _reactive("prefect.flow-run.Completed", 4, threshold=2),
                    _reactive("prefect.flow-run.Failed", 4),
                ],
            },
        },
        {
            "name": "pending-running-completed",
            "trigger": {
                "type": "sequence",
                "within": WINDOW,
                "triggers": [
                    _reactive("prefect.flow-run.Pending", 5),
                    _reactive("prefect.flow-run.Running", 5),
                    _reactive("prefect.flow-run.Completed", 5),
                ],
            },
        },
        {
            "name": "two-of-three",
            "trigger": {
                "type": "compound",
                "require": 2,
                "within": WINDOW,
                "triggers": [
                    _reactive("prefect.flow-run.Failed", 6),
                    _reactive("prefect.flow-run.Crashed", 6),
                    _reactive("prefect.flow-run.Cancelled", 6),
                ],
            },
        },
    ]
    return [{**s, "actions": actions} for s in specs]


def automations(webhook: str | None = None, never_started_within: int = 60) -> list[Automation]:
    return parse_automations(automation_specs(webhook, never_started_within))


def never_started(events: list[dict[str, Any]]) -> tuple[set[str], float]:
    """The runs with a Pending and no Running; the longest Pending-to-Running wait (s)."""
    pending: dict[str, datetime] = {}
    started: set[str] = set()
    longest = 0.0
    for event in events:
        run = event["resource"]["prefect.resource.id"]
        if event["event"] == "prefect.flow-run.Pending":
            pending.setdefault(run, datetime.fromisoformat(event["occurred"]))
        elif event["event"] == "prefect.flow-run.Running" and run in pending and run not in started:
            started.add(run)
            wait = datetime.fromisoformat(event["occurred"]) - pending[run]
            longest = max(longest, wait.total_seconds())
    return set(pending) - started, longest


def _lifecycle(rng: random.Random) -> list[str]:
    """One run's states: Pending, Running, retries, an end; some runs get stuck."""
    roll = rng.random()
    if roll < 0.02:
        return ["Pending"]
    if roll < 0.05:
        return ["Pending", "Running"]
    states = ["Pending", "Running"]
    while rng.random() < 0.15:
        states += ["Failed", "AwaitingRetry", "Running"]
    states.append(rng.choices(["Completed", "Failed", "Crashed", "Cancelled"], [80, 12, 5, 3])[0])
    return states


def generate(seed: int, count: int, deployments: int = 16, now: datetime | None = None) -> Workload:
    """`count` events of interleaved flow runs over `deployments` deployments."""
    rng = random.Random(seed)  # noqa: S311 - a seeded workload, not a secret
    start = (now or datetime.now(UTC)).replace(microsecond=0)
    events: list[dict[str, Any]] = []
    keys: list[bytes] = []
    active: list[tuple[int, str, list[str]]] = []
    runs = 0
    while len(events) < count:
        if len(active) < 50 or rng.random() < 0.25:
            runs += 1
            d = min(deployments - 1, int(deployments * rng.random() ** 1.5))
            active.append((d, f"{seed}-{runs}", _lifecycle(rng)))
            continue
        i = rng.randrange(len(active))
        d, run, states = active[i]
        state = states.pop(0)
        if not states:
            active.pop(i)
        n = len(events)
        events.append(
            {
                "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "occurred": (start + timedelta(milliseconds=n)).isoformat(),
                "event": f"prefect.flow-run.{state}",
                "resource": {
                    "prefect.resource.id": f"prefect.flow-run.{run}",
                    "prefect.state-name": state,
                },
                "related": [
                    {"prefect.resource.id": deployment_id(d), "prefect.resource.role": "deployment"}
                ],
                "payload": {"n": n},
            }
        )
        keys.append(deployment_id(d).encode())
    within = math.ceil(never_started(events)[1]) + NEVER_STARTED_MARGIN
    return Workload(automations(None, within), events, keys, start, within)
