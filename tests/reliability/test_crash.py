"""Workers killed and replaced mid-run lose no firing: the firings topic equals replay's set.

Seeds are printed; TRIPWIRE_RELIABILITY_SEED reruns one. The figures lines
(`RELIABILITY {...}`, shown with `pytest -s`) are the ones in docs/reliability.md.
"""

from __future__ import annotations

import os
import random
import signal
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest

from service.models.automations import parse_automations
from tests.integration.actions_harness import Actions
from tests.integration.api_harness import wait_worker_ready
from tests.integration.harness import Cluster, Worker, flow_run_event, stuck_runs
from tests.integration.http_target import Target, always, http_target
from tests.reliability.support import firing_ids, missing_by_automation, replay, report
from tests.reliability.workload import (
    NEVER_STARTED_MARGIN,
    Workload,
    automations,
    generate,
    never_started,
)

SEED = int(os.environ.get("TRIPWIRE_RELIABILITY_SEED", "11"))


def _with_webhooks(workload: Workload, target: Target) -> Workload:
    target.on("/effect", always(200))
    return Workload(
        automations(f"{target.url}/effect", workload.never_started_within),
        workload.events,
        workload.keys,
        workload.start,
        workload.never_started_within,
    )


def _finish(
    cluster: Cluster, workload: Workload, tmp: Path, target: Target, name: str, **figures: object
) -> None:
    """Wait for every expected firing, compare with replay, then check each effect ran once.

    Proactive firings are compared too: the hour-long windows fire none, and
    "never-started" fires for exactly the runs that never start (replay says so, and
    the events do), so the id sets being equal means 0 false and 0 missed.
    """
    expected = replay(workload, tmp)
    stuck, longest = never_started(workload.events)
    assert longest + NEVER_STARTED_MARGIN <= workload.never_started_within
    assert {expected.by_id[i] for i in expected.proactive} == {"never-started"}
    assert sorted(expected.proactive_runs.values()) == sorted(stuck)
    ids = firing_ids(
        cluster,
        set(expected.by_id),
        timeout=float(os.environ.get("TRIPWIRE_RELIABILITY_WAIT", "300")),
        settle=3,
        # The last deadlines pass a window after the last events are read.
        quiet=30 + workload.never_started_within,
    )
    got = set(ids)
    if got != set(expected.by_id):
        records = cluster.firings(lambda recs: len(recs) >= len(ids), timeout=30)
        (tmp / "firings-on-topic.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in records))
    assert got == set(expected.by_id), (
        f"missing {missing_by_automation(expected, got)}, "
        f"unexpected {len(got - set(expected.by_id))}"
    )
    # A redelivered record is the same firing: same id, same content but for fired_at.
    target.wait_for("/effect", len(expected.by_id), timeout=300)
    time.sleep(2)  # a late second call would show here
    effects = Counter(r.headers["Idempotency-Key"] for r in target.to("/effect"))
    line = report(
        name,
        ids,
        expected,
        effects=len(effects),
        effects_repeated=sum(1 for n in effects.values() if n > 1),
        **figures,
    )
    assert set(effects) == {f"{i}:0" for i in expected.by_id}
    assert line["effects_repeated"] == 0, [k for k, n in effects.items() if n > 1][:5]


def test_sigkill_at_random_points_loses_no_firing_and_repeats_no_effect(
    cluster: Cluster, tmp_path: Path
) -> None:
    rng = random.Random(SEED)  # noqa: S311 - a seeded test plan, not a secret
    count = int(os.environ.get("TRIPWIRE_RELIABILITY_EVENTS", "100000"))
    kills = int(os.environ.get("TRIPWIRE_RELIABILITY_KILLS", "5"))
    cuts = sorted(rng.sample(range(count // 20, count - count // 20), kills))
    delays = [round(rng.uniform(0.2, 3.0), 2) for _ in cuts]
    print(f"\nseed {SEED}: SIGKILL after producing events {cuts}, {delays} s after ready")
    with http_target() as target:
        workload = _with_webhooks(generate(SEED, count), target)
        cluster.publish(workload.automations)
        Actions(cluster).start()
        records = workload.records()
        worker = cluster.start_worker("w1")
        begun = time.monotonic()
        done = 0
        for cut, delay in zip(cuts, delays, strict=True):
            cluster.produce(records[done:cut])
            done = cut
            wait_worker_ready(worker)
            time.sleep(delay)
            assert worker.process.poll() is None, worker.log_text()[-3000:]
            worker.stop(signal.SIGKILL)
            worker = cluster.start_worker("w1")
        cluster.produce(records[done:])
        _finish(
            cluster,
            workload,
            tmp_path,
            target,
            "sigkill",
            seed=SEED,
            events=count,
            kills=len(cuts),
            seconds=round(time.monotonic() - begun),
        )
        assert worker.process.poll() is None


def test_a_second_worker_joins_then_the_first_leaves_and_nothing_is_lost(
    cluster: Cluster, tmp_path: Path
) -> None:
    count = 30_000
    with http_target() as target:
        workload = _with_webhooks(generate(SEED + 1, count), target)
        cluster.publish(workload.automations)
        Actions(cluster).start()
        records = workload.records()
        begun = time.monotonic()
        first: Worker = cluster.start_worker("w1")
        cluster.produce(records[: count // 3])
        wait_worker_ready(first)
        second = cluster.start_worker("w2")
        cluster.produce(records[count // 3 : 2 * count // 3])
        wait_worker_ready(second)
        assert first.stop(signal.SIGTERM) == 0, first.log_text()[-3000:]
        cluster.produce(records[2 * count // 3 :])
        _finish(
            cluster,
            workload,
            tmp_path,
            target,
            "rebalance",
            seed=SEED + 1,
            events=count,
            seconds=round(time.monotonic() - begun),
        )
        assert second.process.poll() is None


STUCK_WITHIN = 12  # seconds: long enough to kill and restart a worker inside it


def _open_buckets(worker: Worker, automation_id: str) -> set[str]:
    url = f"http://127.0.0.1:{worker.web_port}/explain/{automation_id}/"
    with urllib.request.urlopen(url, timeout=5) as response:
        answer = orjson.loads(response.read())
    return {b["key"] for t in answer["triggers"] for b in t.get("buckets", [])}


@pytest.mark.parametrize("down", [1.0, STUCK_WITHIN + 2.0], ids=["restart-first", "deadline-first"])
def test_proactive_deadlines_survive_a_sigkill_and_fire_once(cluster: Cluster, down: float) -> None:
    """Open proactive buckets live through a SIGKILL; each fires once, never early.

    Either the worker is back before the deadline passes, or the deadline passes while
    it is down and the restarted worker's first ticks fire it.
    """
    (automation,) = parse_automations([stuck_runs("stuck-across-a-kill", STUCK_WITHIN)])
    cluster.publish([automation])
    worker = cluster.start_worker("w1")
    wait_worker_ready(worker)
    stuck = {f"stuck-{i}" for i in range(20)}
    healthy = {f"healthy-{i}" for i in range(20)}
    occurred = datetime.now(UTC)
    events = [
        flow_run_event(run, "Running", occurred, number=n) for n, run in enumerate(sorted(stuck))
    ]
    for n, run in enumerate(sorted(healthy), start=100):
        events.append(flow_run_event(run, "Running", occurred, number=n))
        events.append(flow_run_event(run, "Completed", occurred, number=n + 100))
    cluster.produce_events(events)
    # Kill only once the healthy runs are settled, so that what fires depends on the
    # kill and not on how fast a restarted worker re-reads their Completed events.
    want = {f"prefect.flow-run.{run}" for run in stuck}
    deadline = time.monotonic() + 60
    while _open_buckets(worker, str(automation.id)) != want:
        assert time.monotonic() < deadline, _open_buckets(worker, str(automation.id))
        time.sleep(0.2)
    worker.stop(signal.SIGKILL)
    time.sleep(down)
    worker = cluster.start_worker("w1")
    records = cluster.firings(
        lambda recs: {r["bucket"]["prefect.resource.id"] for r in recs} >= want,
        timeout=90,
        settle=2 * cluster.tick_interval + 2,
    )
    assert {r["bucket"]["prefect.resource.id"] for r in records} == want
    assert len({r["id"] for r in records}) == len(stuck), "one firing id per stuck run"
    due = occurred + timedelta(seconds=STUCK_WITHIN)
    early = [r for r in records if datetime.fromisoformat(r["fired_at"]) < due]
    assert not early, early[:3]
    assert worker.process.poll() is None
