"""A seeded mix of reactive, proactive and composite automations whose firings replay exactly.

The stream service and `tripwire replay` agree on a firing's id only when the input
leaves them nothing to decide differently. So this workload is shaped to that end
(docs/reliability.md says what is compared and why):

* Every event of one deployment is produced with the deployment's id as Kafka key:
  its runs' events keep their order, and so do all matches of a trigger that looks
  at one deployment only (the composites' children, the one trigger without
  `for_each`). Every other trigger buckets per flow run.
* Event time starts at the wall clock, 1 ms apart; every window is an hour long. No
  bucket expires and no proactive deadline passes while the events flow, so the tick
  (wall clock) decides nothing: proactive buckets are opened, carried across kills and
  handovers and closed, and replay (without ticks) and the stream both fire none of
  them. When a proactive deadline passes depends on the wall clock and on how long a
  worker was down (a restarted worker's events clock starts at the wall clock), so
  proactive firings across a kill are compared in their own test with a short window.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from service.models.automations import Automation, parse_automations

WINDOW = 3600
PROACTIVE_WITHIN = WINDOW


@dataclass(frozen=True)
class Workload:
    automations: list[Automation]
    events: list[dict[str, Any]]
    keys: list[bytes]  # the Kafka key of each event: its deployment
    start: datetime

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


def automation_specs(webhook: str | None = None) -> list[dict[str, Any]]:
    """Eleven automations: five reactive, two proactive, four composite.

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


def automations(webhook: str | None = None) -> list[Automation]:
    return parse_automations(automation_specs(webhook))


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
    return Workload(automations(), events, keys, start)
