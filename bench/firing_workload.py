"""A firing-heavy replay workload: Prefect flow-run events of ~1.2 KB, automations that fire.

    python bench/firing_workload.py --seed 7 --automations 1000 --events 200000 --out DIR

writes `automations.json`, `events.jsonl` and `ticks` (`step:5`) into `--out`, the
replay format, like bench/workload.py, whose events it reuses: flow-run lifecycles
(and their task runs) of a small universe of `--deployments` deployments (default 40,
5 work pools), each event with its resource labels, 5-7 related resources (flow,
deployment, work queue, work pool, tags) and a state-transition payload; about 1.2 KB
of JSON per event.

bench/workload.py's automations pin one of hundreds of deployments each and fire on
about one event in twelve. Here the same 1,000 automations are spread over 40
deployments, so a good share of them match every event and most events fire
something, and the whole `tripwire replay` process (parse, route, evaluate, build the
firings and write them) is measured where firings are common. The mix (weights in
`_KINDS`), each automation pinned to deployment `i % deployments` or pool
`i % pools`:

* state-alert: a flow run of the deployment entered one state (Running, Completed,
  Pending, Scheduled, Failed), threshold 1, for_each run: fires on every such event;
* pool-state: the same for a work pool and Completed or Failed;
* deployment-count: 5 completions of the deployment within 5 minutes (no for_each);
* task-failures: 3 failed task runs with the deployment's flow within 60 s;
* stuck-run: proactive, after Running expect a terminal state within 60 s, per run;
* quiet: pinned to a deployment that never runs (the index still files them).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import random
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from workload import (
    TICK_STEP_SECONDS,
    Universe,
    generate_events,
    write_automations,
    write_events,
)

__all__ = ["generate_firing_automations"]

_KINDS = (
    ("state-alert", 45),
    ("pool-state", 5),
    ("deployment-count", 15),
    ("task-failures", 10),
    ("stuck-run", 10),
    ("quiet", 15),
)
_KIND_CUM = tuple(itertools.accumulate(w for _, w in _KINDS))
_STATES = ("Running", "Completed", "Pending", "Scheduled", "Failed")
_TERMINAL = [f"prefect.flow-run.{s}" for s in ("Completed", "Failed", "Crashed", "Cancelled")]


def _trigger(ns: uuid.UUID, index: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": "event",
        "id": str(uuid.uuid5(ns, f"firing/{index}/trigger")),
        "match": fields.pop("match", {"prefect.resource.id": "prefect.flow-run.*"}),
        "match_related": fields.pop("match_related"),
        "after": fields.pop("after", []),
        "expect": fields.pop("expect"),
        "for_each": fields.pop("for_each", []),
        "posture": fields.pop("posture", "Reactive"),
        "threshold": fields.pop("threshold", 1),
        "within": fields.pop("within", 0),
    }


def _automation(universe: Universe, ns: uuid.UUID, index: int) -> dict[str, Any]:
    rng = random.Random(f"{universe.seed}/firing/{index}")
    kind = _KINDS[bisect.bisect_right(_KIND_CUM, rng.random() * _KIND_CUM[-1])][0]
    dep = universe.deployments[index % len(universe.deployments)]
    deployment = {
        "prefect.resource.role": "deployment",
        "prefect.resource.id": f"prefect.deployment.{dep.id}",
    }
    pool = universe.pool_ids[index % len(universe.pool_ids)]
    run = ["prefect.resource.id"]
    if kind == "state-alert":
        state = _STATES[index // len(universe.deployments) % len(_STATES)]
        trigger = _trigger(
            ns, index, match_related=deployment, expect=[f"prefect.flow-run.{state}"], for_each=run
        )
    elif kind == "pool-state":
        state = ("Completed", "Failed")[index % 2]
        trigger = _trigger(
            ns,
            index,
            match_related={
                "prefect.resource.role": "work-pool",
                "prefect.resource.id": f"prefect.work-pool.{pool}",
            },
            expect=[f"prefect.flow-run.{state}"],
            for_each=run,
        )
    elif kind == "deployment-count":
        trigger = _trigger(
            ns,
            index,
            match_related=deployment,
            expect=["prefect.flow-run.Completed"],
            threshold=5,
            within=300,
        )
    elif kind == "task-failures":
        trigger = _trigger(
            ns,
            index,
            match={"prefect.resource.id": "prefect.task-run.*"},
            match_related={
                "prefect.resource.role": "flow",
                "prefect.resource.id": f"prefect.flow.{universe.flow_ids[dep.flow]}",
            },
            expect=["prefect.task-run.Failed"],
            threshold=3,
            within=60,
        )
    elif kind == "stuck-run":
        trigger = _trigger(
            ns,
            index,
            match_related=deployment,
            after=["prefect.flow-run.Running"],
            expect=_TERMINAL,
            for_each=run,
            posture="Proactive",
            within=60,
        )
    else:  # quiet: a deployment id no event carries
        trigger = _trigger(
            ns,
            index,
            match_related={
                "prefect.resource.role": "deployment",
                "prefect.resource.id": f"prefect.deployment.{uuid.uuid5(ns, f'idle/{index}')}",
            },
            expect=["prefect.flow-run.Failed"],
        )
    return {
        "id": str(uuid.uuid5(ns, f"firing/{index}")),
        "name": f"{kind}-{index}",
        "description": f"firing-heavy bench automation {index} ({kind})",
        "enabled": True,
        "tags": [],
        "trigger": trigger,
        "actions": [{"type": "do-nothing"}],
        "actions_on_trigger": [],
        "actions_on_resolve": [],
    }


def generate_firing_automations(universe: Universe, count: int) -> list[dict[str, Any]]:
    """Automations 0..count-1; automation i depends only on (universe, i)."""
    ns = uuid.uuid5(uuid.NAMESPACE_URL, f"https://tripwire.invalid/bench/firing/{universe.seed}")
    return [_automation(universe, ns, i) for i in range(count)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--automations", type=int, default=1000, metavar="N")
    parser.add_argument("--events", type=int, default=200_000, metavar="M")
    parser.add_argument("--deployments", type=int, default=40)
    parser.add_argument("--out", type=Path, required=True, metavar="DIR")
    args = parser.parse_args(argv)
    universe = Universe.build(args.seed, args.deployments)
    args.out.mkdir(parents=True, exist_ok=True)
    write_automations(
        args.out / "automations.json", generate_firing_automations(universe, args.automations)
    )
    write_events(args.out / "events.jsonl", generate_events(universe, args.events))
    (args.out / "ticks").write_text(f"step:{TICK_STEP_SECONDS}\n")
    print(
        f"wrote {args.automations} firing-heavy automations and {args.events} events "
        f"({args.deployments} deployments, {len(universe.pool_ids)} pools) to {args.out}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
