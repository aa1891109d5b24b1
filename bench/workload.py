"""A seeded, realistic Prefect workload for `tripwire replay` and the benchmarks.

    python bench/workload.py --seed 7 --automations 1000 --events 20000 --out bench/out/w

writes `automations.json` (Prefect's server JSON, every automation and trigger with an
explicit uuid5 id derived from the seed), `events.jsonl` (arrival order) and `ticks`
(`step:5`, the proactive loop's period) into `--out`: the replay format, for
`tripwire replay`, tests/conformance/check.py-style comparisons and
bench/prefect_engine.py. `--metric-automations K` appends K metric-trigger
automations (successes, duration, lateness; one deployment each), which only Tripwire
evaluates (Prefect's OSS server rejects metric triggers).

The model
---------
* A universe of `--deployments` deployments (default `max(50, automations / 2)`), each
  with a flow, a work pool (and one of its queues) and 1-3 tags. Pools number
  `max(5, deployments / 40)`, flows `max(10, deployments / 4)`.
* Events are flow-run lifecycles, plus their task runs: Scheduled, sometimes Late,
  Pending, Running, then Completed / Failed / Crashed / Cancelling+Cancelled, with
  retries (AwaitingRetry, Retrying) and a few runs that never finish (stuck). Runs
  start at 5 per second of event time (about 33 events/s), last ~15 s (log-normal),
  and each state event `follows` the previous one of its run, as Prefect's do.
  Deployment popularity is Zipf-like (a few busy deployments, a long idle tail).
  Arrival order is `received` order; `received` is `occurred` plus a small random
  delay, so `occurred` increases with small jitter. The stream opens mid-flight
  (runs start 3 minutes before it), like a service joining a live topic.
* The events depend only on the seed, the universe and the event count, never on the
  automation count: with the same `--deployments`, every automation count replays
  the very same events file.
* Automation `i` depends only on the seed, the universe and `i`, so the first 10 of a
  1,000-automation file are the 10-automation file. Nearly all automations pin one
  deployment or one work pool with `match_related` (an object, or a list adding a
  negated tag: not `prefect.tag.dev`), as real users do; the busiest deployments and
  pools get the first automations. The mix (weights in `_KINDS`): failure thresholds
  per deployment (for_each none, deployment or run), retry counts per run, reactive
  Pending -> Completed within a window, proactive stuck runs (after Running, expect a
  terminal state or `prefect.flow-run.*`, within 10-120 s, for_each run), pool
  failure counts (`prefect.*.Failed`), flapping runs (`prefect.flow-run.*`), late
  runs, a proactive "no completion" heartbeat, compound (any / all / 2 of Failed,
  Crashed, Late) and sequence (Pending or Late, Running, Completed) triggers. Four
  automations (slots 3, 28, 53 and 78) are global: a glob over every failure outside
  dev, a prod-tag anchor, a stuck-run check over every flow run, and a late-run count.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import math
import random
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

__all__ = [
    "Universe",
    "default_deployments",
    "generate_automations",
    "generate_events",
    "write_automations",
    "write_events",
]

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)
TICK_STEP_SECONDS = 5
WARM_UP_SECONDS = 180.0

_ADJECTIVES = (
    "amber", "bold", "brave", "calm", "clever", "cosmic", "crimson", "daring", "eager",
    "fancy", "gentle", "golden", "hasty", "icy", "jolly", "keen", "lively", "lucky",
    "mellow", "nimble", "proud", "quick", "quiet", "rapid", "royal", "shiny", "silent",
    "sly", "steady", "swift", "tidy", "vivid", "witty", "zesty",
)  # fmt: skip
_ANIMALS = (
    "albatross", "badger", "beaver", "bison", "cobra", "condor", "coyote", "crane",
    "dingo", "eagle", "falcon", "ferret", "gecko", "heron", "ibis", "jackal", "koala",
    "lemur", "lynx", "marmot", "moose", "newt", "ocelot", "otter", "panda", "puffin",
    "raven", "salmon", "tapir", "toucan", "walrus", "wombat", "yak", "zebra",
)  # fmt: skip
_FLOW_VERBS = (
    "sync", "ingest", "load", "export", "train", "score", "backfill", "refresh",
    "aggregate", "validate", "publish", "archive", "transform", "reconcile", "notify",
)  # fmt: skip
_FLOW_NOUNS = (
    "orders", "users", "events", "invoices", "metrics", "inventory", "clicks", "ledger",
    "features", "models", "reports", "sessions", "payments", "catalog", "logs",
)  # fmt: skip
_EXTRA_TAGS = (
    "etl", "ml", "nightly", "hourly", "critical", "team-data", "team-platform",
    "team-growth", "finance", "marketing", "reporting", "backfill", "sla",
)  # fmt: skip
_POOL_TYPES = ("kubernetes", "process", "docker", "ecs", "cloud-run")
_ENVS = ("prod", "prod", "staging", "dev")

# Prefect's state name -> state type.
_STATE_TYPES = {
    "Scheduled": "SCHEDULED",
    "Late": "SCHEDULED",
    "AwaitingRetry": "SCHEDULED",
    "Pending": "PENDING",
    "Running": "RUNNING",
    "Retrying": "RUNNING",
    "Completed": "COMPLETED",
    "Failed": "FAILED",
    "Crashed": "CRASHED",
    "Cancelling": "CANCELLING",
    "Cancelled": "CANCELLED",
}
_TERMINAL = ("Completed", "Failed", "Crashed", "Cancelled")
_FOLLOWS_WINDOW = 5 * 60  # Prefect links a state event to the previous one within 5 min.


def default_deployments(automations: int) -> int:
    """The universe size for an automation count: `max(50, automations / 2)`."""
    return max(50, automations // 2)


def _namespace(seed: int) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"https://tripwire.invalid/bench/{seed}")


def _uuid4(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _iso(seconds: float) -> str:
    return (EPOCH + timedelta(microseconds=round(seconds * 1_000_000))).strftime(
        "%Y-%m-%dT%H:%M:%S.%fZ"
    )


# -- the universe -----------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Deployment:
    id: str
    name: str
    flow: int
    pool: int
    queue: int
    tags: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Universe:
    """Deployments, flows, work pools and tags; a pure function of (seed, deployments)."""

    seed: int
    deployments: tuple[Deployment, ...]
    flow_ids: tuple[str, ...]
    flow_names: tuple[str, ...]
    pool_ids: tuple[str, ...]
    pool_names: tuple[str, ...]
    pool_types: tuple[str, ...]
    queue_ids: tuple[tuple[str, ...], ...]
    deployment_weights: tuple[float, ...]  # cumulative, Zipf-like by deployment rank

    @classmethod
    def build(cls, seed: int, deployments: int, zipf: float = 0.9) -> Universe:
        ns = _namespace(seed)
        rng = random.Random(f"{seed}/universe")
        n_flows = max(10, deployments // 4)
        n_pools = max(5, deployments // 40)
        flow_names = tuple(
            f"{rng.choice(_FLOW_VERBS)}-{rng.choice(_FLOW_NOUNS)}-{i}" for i in range(n_flows)
        )
        flow_ids = tuple(str(uuid.uuid5(ns, f"flow/{i}")) for i in range(n_flows))
        pool_types = tuple(rng.choice(_POOL_TYPES) for _ in range(n_pools))
        pool_names = tuple(
            f"{'dev' if i % 7 == 3 else 'prod'}-{pool_types[i]}-pool-{i}" for i in range(n_pools)
        )
        pool_ids = tuple(str(uuid.uuid5(ns, f"work-pool/{i}")) for i in range(n_pools))
        queue_ids = tuple(
            tuple(str(uuid.uuid5(ns, f"work-queue/{i}/{q}")) for q in range(3))
            for i in range(n_pools)
        )
        out = []
        for j in range(deployments):
            flow = rng.randrange(n_flows)
            # Busy deployments tend to share the busy pools (pool 0 is the busiest).
            pool = min(n_pools - 1, int(n_pools * rng.random() ** 2))
            env = rng.choice(_ENVS)
            extra = rng.sample(_EXTRA_TAGS, rng.choice((0, 1, 1, 2)))
            out.append(
                Deployment(
                    id=str(uuid.uuid5(ns, f"deployment/{j}")),
                    name=f"{flow_names[flow]}-{env}",
                    flow=flow,
                    pool=pool,
                    queue=rng.randrange(3),
                    tags=(env, *extra),
                )
            )
        weights = list(
            itertools.accumulate(1.0 / (rank + 1) ** zipf for rank in range(deployments))
        )
        return cls(
            seed=seed,
            deployments=tuple(out),
            flow_ids=flow_ids,
            flow_names=flow_names,
            pool_ids=pool_ids,
            pool_names=pool_names,
            pool_types=pool_types,
            queue_ids=queue_ids,
            deployment_weights=tuple(weights),
        )

    def pick_deployment(self, rng: random.Random) -> int:
        total = self.deployment_weights[-1]
        return bisect.bisect_right(self.deployment_weights, rng.random() * total)


# -- events -----------------------------------------------------------------------------
def _related(universe: Universe, dep: Deployment) -> list[dict[str, str]]:
    related = [
        {
            "prefect.resource.id": f"prefect.flow.{universe.flow_ids[dep.flow]}",
            "prefect.resource.role": "flow",
            "prefect.resource.name": universe.flow_names[dep.flow],
        },
        {
            "prefect.resource.id": f"prefect.deployment.{dep.id}",
            "prefect.resource.role": "deployment",
            "prefect.resource.name": dep.name,
        },
        {
            "prefect.resource.id": f"prefect.work-queue.{universe.queue_ids[dep.pool][dep.queue]}",
            "prefect.resource.role": "work-queue",
            "prefect.resource.name": ("default", "high-priority", "low-priority")[dep.queue],
        },
        {
            "prefect.resource.id": f"prefect.work-pool.{universe.pool_ids[dep.pool]}",
            "prefect.resource.role": "work-pool",
            "prefect.resource.name": universe.pool_names[dep.pool],
            "prefect.work-pool.type": universe.pool_types[dep.pool],
        },
    ]
    related += [
        {"prefect.resource.id": f"prefect.tag.{t}", "prefect.resource.role": "tag"}
        for t in dep.tags
    ]
    return related


def _run_states(rng: random.Random, start: float) -> list[tuple[str, float, int]]:
    """(state name, occurred seconds, run count) of one flow run's lifecycle."""
    states = [("Scheduled", start, 0)]
    due = start + rng.uniform(2.0, 45.0)
    if rng.random() < 0.08:
        late = due + 15.0 + rng.uniform(0.0, 5.0)
        states.append(("Late", late, 0))
        due = late + rng.uniform(1.0, 60.0)
    pending = due + rng.uniform(0.0, 2.0)
    states.append(("Pending", pending, 0))
    t = pending + rng.uniform(0.3, 8.0)
    states.append(("Running", t, 1))
    run_count = 1
    while True:
        if rng.random() < 0.03:
            return states  # stuck: no terminal state in the stream
        t += min(1800.0, rng.lognormvariate(math.log(15.0), 0.8))
        roll = rng.random()
        if roll < 0.82:
            states.append(("Completed", t, run_count))
            return states
        if roll < 0.94:
            if run_count < 3 and rng.random() < 0.4:
                states.append(("AwaitingRetry", t, run_count))
                t += rng.uniform(5.0, 30.0)
                run_count += 1
                states.append(("Retrying", t, run_count))
                continue
            states.append(("Failed", t, run_count))
            return states
        if roll < 0.975:
            states.append(("Crashed", t, run_count))
            return states
        states.append(("Cancelling", t, run_count))
        states.append(("Cancelled", t + rng.uniform(0.5, 10.0), run_count))
        return states


def _flow_run_events(
    universe: Universe, rng: random.Random, dep: Deployment, start: float
) -> Iterator[tuple[float, dict[str, Any]]]:
    run_id = _uuid4(rng)
    run_name = f"{rng.choice(_ADJECTIVES)}-{rng.choice(_ANIMALS)}"
    related = _related(universe, dep)
    previous: tuple[str, float, str] | None = None  # name, occurred, event id
    states = _run_states(rng, start)
    for name, occurred, run_count in states:
        event_id = _uuid4(rng)
        ts = _iso(occurred)
        payload: dict[str, Any] = {
            "intended": {
                "from": _STATE_TYPES[previous[0]] if previous else None,
                "to": _STATE_TYPES[name],
            },
            "initial_state": {"type": _STATE_TYPES[previous[0]], "name": previous[0]}
            if previous
            else None,
            "validated_state": {"type": _STATE_TYPES[name], "name": name},
        }
        event: dict[str, Any] = {
            "id": event_id,
            "occurred": ts,
            "event": f"prefect.flow-run.{name}",
            "resource": {
                "prefect.resource.id": f"prefect.flow-run.{run_id}",
                "prefect.resource.name": run_name,
                "prefect.run-count": str(run_count),
                "prefect.state-message": "" if name != "Crashed" else "Worker lost the run",
                "prefect.state-name": name,
                "prefect.state-timestamp": ts,
                "prefect.state-type": _STATE_TYPES[name],
            },
            "related": related,
            "payload": payload,
        }
        if previous is not None and occurred - previous[1] < _FOLLOWS_WINDOW:
            event["follows"] = previous[2]
        yield occurred, event
        previous = (name, occurred, event_id)
    # Task runs: between Running and the end, in the flow run's tags.
    running = [t for n, t, _ in states if n in ("Running", "Retrying")]
    if not running:
        return
    end = states[-1][1] if states[-1][0] in _TERMINAL else running[-1] + 120.0
    tags = [r for r in related if r["prefect.resource.role"] == "tag"]
    for _ in range(rng.choice((0, 0, 1, 1, 1, 2))):
        yield from _task_run_events(rng, run_id, run_name, related[0], tags, running[0], end)


def _task_run_events(
    rng: random.Random,
    run_id: str,
    run_name: str,
    flow: dict[str, str],
    tags: list[dict[str, str]],
    begin: float,
    end: float,
) -> Iterator[tuple[float, dict[str, Any]]]:
    task_id = _uuid4(rng)
    task_name = f"{rng.choice(_FLOW_VERBS)}_{rng.choice(_FLOW_NOUNS)}-{rng.randrange(10)}"
    t = rng.uniform(begin, max(begin, end - 1.0))
    related = [
        {
            "prefect.resource.id": f"prefect.flow-run.{run_id}",
            "prefect.resource.role": "flow-run",
            "prefect.resource.name": run_name,
        },
        flow,
        *tags,
    ]
    previous: str | None = None
    final = "Completed" if rng.random() < 0.93 else "Failed"
    for name in ("Pending", "Running", final):
        event_id = _uuid4(rng)
        ts = _iso(t)
        event: dict[str, Any] = {
            "id": event_id,
            "occurred": ts,
            "event": f"prefect.task-run.{name}",
            "resource": {
                "prefect.resource.id": f"prefect.task-run.{task_id}",
                "prefect.resource.name": task_name,
                "prefect.state-message": "",
                "prefect.state-name": name,
                "prefect.state-timestamp": ts,
                "prefect.state-type": _STATE_TYPES[name],
                "prefect.orchestration": "client",
            },
            "related": related,
            "payload": {"intended": {"to": _STATE_TYPES[name]}, "task_run": {"name": task_name}},
        }
        if previous is not None:
            event["follows"] = previous
        yield t, event
        previous = event_id
        t += rng.uniform(0.01, 0.2) if name == "Pending" else rng.uniform(0.2, 20.0)


def generate_events(
    universe: Universe, count: int, *, runs_per_second: float = 5.0
) -> list[dict[str, Any]]:
    """`count` events in arrival (`received`) order; a function of (universe, count)."""
    rng = random.Random(f"{universe.seed}/events")
    pending: list[tuple[float, int, dict[str, Any]]] = []
    # Runs start WARM_UP seconds early and events received before 0 are dropped, so
    # the stream opens in a steady state, mid-lifecycle, as a restarted service sees it.
    clock = -WARM_UP_SECONDS
    serial = 0
    while True:
        for _ in range(256):
            clock += rng.expovariate(runs_per_second)
            dep = universe.deployments[universe.pick_deployment(rng)]
            for occurred, event in _flow_run_events(universe, rng, dep, clock):
                received = occurred + 0.02 + rng.expovariate(1 / 0.08)
                if received < 0:
                    continue
                event["received"] = _iso(received)
                pending.append((received, serial, event))
                serial += 1
        # Every later run starts after `clock`: once `count` events arrived before it,
        # the first `count` in arrival order are final.
        if len(pending) >= count and sum(1 for r, _, _ in pending if r <= clock) >= count:
            break
    pending.sort(key=lambda item: (item[0], item[1]))
    events = [event for _, _, event in pending[:count]]
    # A leader received before the stream began was processed by the service before
    # it (Prefect's seen-id cache outlives restarts); don't make its followers wait
    # 15 minutes for an event that will never come.
    delivered = {event["id"] for event in events}
    for event in events:
        if "follows" in event and event["follows"] not in delivered:
            del event["follows"]
    return events


# -- automations ------------------------------------------------------------------------
_FLOW_RUN = {"prefect.resource.id": "prefect.flow-run.*"}
_STUCK_EXPECT = [
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Crashed",
    "prefect.flow-run.Cancelled",
]
_GLOBAL_SLOTS = (3, 28, 53, 78)
# (kind, weight); the global kinds only occur at their slots.
_KINDS = (
    ("deployment-failures", 30),
    ("run-retries", 7),
    ("pending-to-completed", 10),
    ("stuck-run", 14),
    ("pool-failures", 10),
    ("flapping-run", 7),
    ("late-runs", 7),
    ("no-completion", 3),
    ("failure-or-crash-compound", 4),
    ("lifecycle-sequence", 3),
    ("any-failure-glob", 5),
)
_KIND_CUM = tuple(itertools.accumulate(w for _, w in _KINDS))


@dataclass(slots=True)
class _Ids:
    ns: uuid.UUID
    index: int
    children: int = 0

    def automation(self) -> str:
        return str(uuid.uuid5(self.ns, f"automation/{self.index}"))

    def trigger(self) -> str:
        self.children += 1
        return str(uuid.uuid5(self.ns, f"automation/{self.index}/trigger/{self.children}"))


def _deployment_spec(universe: Universe, index: int) -> dict[str, str]:
    # Users put automations on their busiest deployments first: rank index // 2.
    dep = universe.deployments[(index // 2) % len(universe.deployments)]
    return {
        "prefect.resource.role": "deployment",
        "prefect.resource.id": f"prefect.deployment.{dep.id}",
    }


def _pool_spec(universe: Universe, index: int) -> dict[str, str]:
    # About 10% of automations pin a pool: ~8 per pool once every pool has some.
    pool = (index // 80) % len(universe.pool_ids)
    return {
        "prefect.resource.role": "work-pool",
        "prefect.resource.id": f"prefect.work-pool.{universe.pool_ids[pool]}",
    }


def _pinned(rng: random.Random, spec: dict[str, str]) -> dict[str, str] | list[dict[str, str]]:
    """The pin alone, or (15%) with a negated tag: not the runs tagged dev."""
    if rng.random() < 0.15:
        return [spec, {"prefect.resource.role": "tag", "prefect.resource.id": "!prefect.tag.dev"}]
    return spec


def _event_trigger(ids: _Ids, **fields: Any) -> dict[str, Any]:
    trigger: dict[str, Any] = {
        "type": "event",
        "id": ids.trigger(),
        "match": fields.pop("match", dict(_FLOW_RUN)),
        "match_related": fields.pop("match_related", {}),
        "after": fields.pop("after", []),
        "expect": fields.pop("expect"),
        "for_each": fields.pop("for_each", []),
        "posture": fields.pop("posture", "Reactive"),
        "threshold": fields.pop("threshold", 1),
        "within": fields.pop("within", 0),
    }
    assert not fields, fields
    return trigger


def _actions(
    rng: random.Random, ns: uuid.UUID, kind: str, dep_id: str | None
) -> list[dict[str, Any]]:
    block = str(uuid.uuid5(ns, f"block/{rng.randrange(20)}"))
    notify = {
        "type": "send-notification",
        "block_document_id": block,
        "subject": "Prefect flow run notification",
        "body": "Flow run {{ flow.name }}/{{ flow_run.name }} entered {{ flow_run.state.name }}.",
    }
    if kind == "stuck-run" and rng.random() < 0.5:
        return [{"type": "cancel-flow-run", "source": "inferred"}, notify]
    if kind == "deployment-failures" and dep_id is not None and rng.random() < 0.2:
        return [{"type": "pause-deployment", "source": "selected", "deployment_id": dep_id}, notify]
    if rng.random() < 0.15:
        return [{"type": "call-webhook", "block_document_id": block, "payload": "{{ event }}"}]
    return [notify]


def _automation(universe: Universe, ns: uuid.UUID, index: int) -> dict[str, Any]:
    rng = random.Random(f"{universe.seed}/automation/{index}")
    ids = _Ids(ns, index)
    automation_id = ids.automation()
    dep = _deployment_spec(universe, index)
    dep_id = dep["prefect.resource.id"].removeprefix("prefect.deployment.")
    if index in _GLOBAL_SLOTS:
        kind = f"global-{_GLOBAL_SLOTS.index(index)}"
    else:
        kind = _KINDS[bisect.bisect_right(_KIND_CUM, rng.random() * _KIND_CUM[-1])][0]
    trigger = _trigger(universe, rng, ids, index, kind, dep)
    return {
        "id": automation_id,
        "name": f"{kind}-{index}",
        "description": f"bench automation {index} ({kind})",
        "enabled": rng.random() >= 0.02,
        "tags": [],
        "trigger": trigger,
        "actions": _actions(rng, ns, kind, dep_id),
        "actions_on_trigger": [],
        "actions_on_resolve": [],
    }


def _trigger(
    universe: Universe,
    rng: random.Random,
    ids: _Ids,
    index: int,
    kind: str,
    dep: dict[str, str],
) -> dict[str, Any]:
    run = ["prefect.resource.id"]
    per_deployment = ["related:deployment:prefect.resource.id"]
    if kind == "deployment-failures":
        threshold = rng.choice((1, 1, 1, 2, 3, 5))
        return _event_trigger(
            ids,
            match_related=_pinned(rng, dep),
            expect=rng.choice(
                (
                    ["prefect.flow-run.Failed"],
                    ["prefect.flow-run.Failed", "prefect.flow-run.Crashed"],
                )
            ),
            for_each=rng.choice(([], per_deployment, run)),
            threshold=threshold,
            within=0 if threshold == 1 else rng.choice((60, 300, 600, 3600)),
        )
    if kind == "run-retries":
        return _event_trigger(
            ids,
            match_related=_pinned(rng, dep),
            expect=["prefect.flow-run.AwaitingRetry"],
            for_each=run,
            threshold=2,
            within=3600,
        )
    if kind == "pending-to-completed":
        return _event_trigger(
            ids,
            match_related=_pinned(rng, dep),
            after=["prefect.flow-run.Pending"],
            expect=["prefect.flow-run.Completed"],
            for_each=run,
            within=rng.choice((60, 120, 300, 600)),
        )
    if kind == "stuck-run":
        pin = dep if rng.random() < 0.8 else _pool_spec(universe, index)
        return _event_trigger(
            ids,
            posture="Proactive",
            match_related=pin,
            after=["prefect.flow-run.Running"],
            expect=rng.choice((_STUCK_EXPECT, _STUCK_EXPECT, ["prefect.flow-run.*"])),
            for_each=run,
            within=rng.choice((10, 15, 30, 60, 90, 120)),
        )
    if kind == "pool-failures":
        return _event_trigger(
            ids,
            match_related=_pinned(rng, _pool_spec(universe, index)),
            expect=rng.choice((["prefect.flow-run.Crashed"], ["prefect.*.Failed"])),
            for_each=rng.choice(([], ["related:work-pool:prefect.resource.id"])),
            threshold=3,
            within=300,
        )
    if kind == "flapping-run":
        return _event_trigger(
            ids,
            match_related=_pinned(rng, dep),
            expect=["prefect.flow-run.*"],
            for_each=run,
            threshold=8,
            within=600,
        )
    if kind == "late-runs":
        return _event_trigger(
            ids,
            match_related=_pinned(rng, dep),
            expect=["prefect.flow-run.Late"],
            for_each=per_deployment,
        )
    if kind == "no-completion":
        return _event_trigger(
            ids,
            posture="Proactive",
            match_related=dep,
            expect=["prefect.flow-run.Completed"],
            within=rng.choice((300, 600, 900)),
        )
    if kind == "failure-or-crash-compound":
        require = rng.choice(("any", "all", 2))
        children = [
            _event_trigger(ids, match_related=dep, expect=["prefect.flow-run.Failed"]),
            _event_trigger(ids, match_related=dep, expect=["prefect.flow-run.Crashed"]),
            _event_trigger(ids, match_related=dep, expect=["prefect.flow-run.Late"]),
        ]
        return {
            "type": "compound",
            "id": ids.trigger(),
            "require": require,
            "within": rng.choice((600, 3600, None)),
            "triggers": children,
        }
    if kind == "lifecycle-sequence":
        first = rng.choice(("prefect.flow-run.Pending", "prefect.flow-run.Late"))
        children = [
            _event_trigger(ids, match_related=dep, expect=[name])
            for name in (first, "prefect.flow-run.Running", "prefect.flow-run.Completed")
        ]
        return {"type": "sequence", "id": ids.trigger(), "within": 600, "triggers": children}
    if kind == "any-failure-glob":
        return _event_trigger(
            ids,
            match={},
            match_related=_pinned(rng, dep),
            expect=["prefect.*.Failed"],
            for_each=per_deployment,
        )
    # The global automations: no deployment or pool pin.
    if kind == "global-0":  # every failure outside dev: a real glob, never anchored
        return _event_trigger(
            ids,
            match={},
            match_related={
                "prefect.resource.role": "tag",
                "prefect.resource.id": "!prefect.tag.dev",
            },
            expect=["prefect.*.Failed"],
        )
    if kind == "global-1":  # prod crashes: anchored on the prod tag
        return _event_trigger(
            ids,
            match_related={
                "prefect.resource.role": "tag",
                "prefect.resource.id": "prefect.tag.prod",
            },
            expect=["prefect.flow-run.Crashed"],
            for_each=per_deployment,
        )
    if kind == "global-2":  # every stuck flow run, anywhere
        return _event_trigger(
            ids,
            posture="Proactive",
            after=["prefect.flow-run.Running"],
            expect=_STUCK_EXPECT,
            for_each=run,
            within=120,
        )
    assert kind == "global-3"  # many late runs anywhere
    return _event_trigger(ids, expect=["prefect.flow-run.Late"], threshold=10, within=600)


def generate_automations(universe: Universe, count: int) -> list[dict[str, Any]]:
    """Automations 0..count-1; automation i depends only on (universe, i)."""
    ns = _namespace(universe.seed)
    return [_automation(universe, ns, i) for i in range(count)]


# -- files ------------------------------------------------------------------------------
def write_automations(path: Path, automations: list[dict[str, Any]]) -> None:
    path.write_bytes(orjson.dumps(automations))


def write_events(path: Path, events: list[dict[str, Any]]) -> None:
    with path.open("wb") as out:
        for event in events:
            out.write(orjson.dumps(event))
            out.write(b"\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--automations", type=int, default=1000, metavar="N")
    parser.add_argument("--events", type=int, default=20_000, metavar="M")
    parser.add_argument(
        "--deployments",
        type=int,
        default=None,
        help="universe size (default max(50, N/2)); keep it fixed to share events across N",
    )
    parser.add_argument(
        "--metric-automations",
        type=int,
        default=0,
        metavar="K",
        help="also write K metric-trigger automations (Tripwire only: Prefect's OSS server "
        "rejects metric triggers)",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    args = parser.parse_args(argv)
    deployments = args.deployments or default_deployments(args.automations)
    universe = Universe.build(args.seed, deployments)
    args.out.mkdir(parents=True, exist_ok=True)
    automations = generate_automations(universe, args.automations)
    automations += generate_metric_automations(universe, args.metric_automations)
    write_automations(args.out / "automations.json", automations)
    write_events(args.out / "events.jsonl", generate_events(universe, args.events))
    (args.out / "ticks").write_text(f"step:{TICK_STEP_SECONDS}\n")
    print(
        f"wrote {args.automations} automations, {args.events} events "
        f"({deployments} deployments, {len(universe.pool_ids)} pools) to {args.out}",
        file=sys.stderr,
    )
    return 0


_METRICS = (
    ("successes", "<", 0.9),
    ("duration", ">", 300.0),
    ("lateness", ">", 60.0),
)


def generate_metric_automations(universe: Universe, count: int) -> list[dict[str, Any]]:
    """`count` metric-trigger automations, each on one deployment, the metrics mixed."""
    ns = _namespace(universe.seed)
    out = []
    for index in range(count):
        name, operator, threshold = _METRICS[index % len(_METRICS)]
        out.append(
            {
                "id": str(uuid.uuid5(ns, f"metric-automation/{index}")),
                "name": f"metric-{name}-{index}",
                "enabled": True,
                "trigger": {
                    "id": str(uuid.uuid5(ns, f"metric-trigger/{index}")),
                    "type": "metric",
                    "posture": "Metric",
                    "match": {"prefect.resource.id": "prefect.flow-run.*"},
                    "match_related": _deployment_spec(universe, index),
                    "metric": {
                        "name": name,
                        "operator": operator,
                        "threshold": threshold,
                        "range": 300,
                        "firing_for": 60,
                    },
                },
                "actions": [{"type": "do-nothing"}],
            }
        )
    return out


if __name__ == "__main__":
    sys.exit(main())
