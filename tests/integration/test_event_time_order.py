"""The stream applies one bucket's events in the order they happened, as replay does.

The events of one deployment are spread over every events partition (keyed by flow
run). Applied in fetch order, the firings of a "3 Failed per deployment" trigger named
other triggering events than `tripwire replay` on the same events (issue 18); applied
in event-time order (service/core/hold.py) they are the same, read as a backlog by a
worker that starts after them or paced as a live stream.

A backlog of old events produced into a live stream is not this case: a partition that
a fetch proved read to its end before they arrived has passed their time, so they are
late and applied as they arrive (docs/architecture.md, "Stream time").
"""

from __future__ import annotations

import random
import subprocess
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.models.automations import parse_automations
from tests.integration.harness import TRIPWIRE, Cluster, flow_run_event

PER_DEPLOYMENT = {
    "name": "three-failed-per-deployment",
    "trigger": {
        "type": "event",
        "posture": "Reactive",
        "expect": ["prefect.flow-run.Failed"],
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "for_each": ["related:deployment:prefect.resource.id"],
        "threshold": 3,
        "within": 600,
    },
    "actions": [{"type": "do-nothing"}],
}
# Across resources: a run of one deployment fails, then one of another completes.
SEQUENCE = {
    "name": "failed-then-completed",
    "trigger": {
        "type": "sequence",
        "within": 60,
        "triggers": [
            {
                "type": "event",
                "posture": "Reactive",
                "expect": ["prefect.flow-run.Failed"],
                "match_related": {"prefect.resource.id": "prefect.deployment.d0"},
                "threshold": 1,
                "within": 0,
            },
            {
                "type": "event",
                "posture": "Reactive",
                "expect": ["prefect.flow-run.Completed"],
                "match_related": {"prefect.resource.id": "prefect.deployment.d1"},
                "threshold": 1,
                "within": 0,
            },
        ],
    },
    "actions": [{"type": "do-nothing"}],
}


def _events(seed: int, start: datetime, first_number: int, runs: int) -> list[dict[str, Any]]:
    """`runs` runs over 4 deployments, 3 events each, 0.1-0.5 s apart, interleaved."""
    rng = random.Random(seed)  # noqa: S311  # a reproducible workload
    pending = {n: ["Pending", "Running", rng.choice(["Failed", "Completed"])] for n in range(runs)}
    at, number, out = start, first_number, []
    while pending:
        run = rng.choice(sorted(pending))
        state = pending[run].pop(0)
        if not pending[run]:
            del pending[run]
        at += timedelta(seconds=rng.uniform(0.1, 0.5))
        number += 1
        out.append(
            flow_run_event(f"run-{seed}-{run}", state, at, number=number, deployment=f"d{run % 4}")
        )
    return out


def _replay(automations: Path, events: list[dict[str, Any]], tmp: Path) -> Counter[str]:
    path = tmp / "events.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    done = subprocess.run(
        [str(TRIPWIRE), "replay", "--automations", str(automations), "--events", str(path)],
        capture_output=True,
        check=True,
    )
    return Counter(
        _comparable(line["automation"], line["bucket"], line["triggering_event"])
        for line in map(orjson.loads, done.stdout.splitlines())
    )


def _comparable(automation: str, bucket: Any, event: str | None) -> str:
    return orjson.dumps([automation, bucket, event], option=orjson.OPT_SORT_KEYS).decode()


@pytest.mark.parametrize("paced", [False, True], ids=["backlog", "live"])
def test_firings_name_the_same_triggering_events_as_replay(
    cluster: Cluster, tmp_path: Path, paced: bool
) -> None:
    automations = parse_automations([PER_DEPLOYMENT, SEQUENCE])
    names = {str(a.id): a.name for a in automations}
    path = tmp_path / "automations.json"
    path.write_bytes(orjson.dumps([a.model_dump(mode="json") for a in automations]))
    # 180 events as a backlog; paced live, 120 (about 36 s)
    runs = 40 if paced else 60
    span = runs * 3 * 0.3
    start = datetime.now(UTC) - (timedelta() if paced else timedelta(seconds=span + 5))
    events = _events(7 if paced else 3, start, 10_000 if paced else 20_000, runs)
    expected = _replay(path, events, tmp_path)
    assert sum(expected.values()) >= 5  # the workload fires, or it proves nothing
    mark = cluster.marks(cluster.settings.topic_firings)
    cluster.publish(automations)
    if not paced:
        # The last minute's events, waiting for a worker that starts (or restarts) now.
        cluster.produce_events(events)
    worker = cluster.start_worker("w1")
    cluster.wait_loaded("w1", set(names))
    if paced:
        for event in events:
            due = datetime.fromisoformat(event["occurred"]).timestamp() - time.time()
            if due > 0:
                time.sleep(due)
            cluster.produce_events([event])
    wanted = sum(expected.values())
    records = cluster.firings(
        lambda rs: len([r for r in rs if r["automation_id"] in names]) >= wanted,
        timeout=60,
        settle=3.0,
        since=mark,
    )
    actual = Counter(
        _comparable(
            names[r["automation_id"]],
            r["bucket"],
            r["triggering_event"]["id"] if r["triggering_event"] else None,
        )
        for r in records
        if r["automation_id"] in names
    )
    worker.stop()
    assert actual == expected
