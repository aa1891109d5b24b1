"""A real worker on the real broker: dead letters, proactive timing, restart, takeover."""

from __future__ import annotations

import signal
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.models.automations import Automation, parse_automations
from tests.integration.harness import (
    TRIPWIRE,
    Cluster,
    changelog_topic,
    failures_per_run,
    flow_run_event,
    stuck_runs,
)

THREE_FAILURES = failures_per_run("three-failures-per-run", threshold=3, within=600)


def _automations(*specs: dict[str, Any]) -> list[Automation]:
    return parse_automations(list(specs))


def _replay_ids(tmp: Path, automations: list[Automation], events: list[dict[str, Any]]) -> set[str]:
    autos, evs = tmp / "replay-automations.json", tmp / "replay-events.jsonl"
    autos.write_bytes(orjson.dumps([a.model_dump(mode="json") for a in automations]))
    evs.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    out = subprocess.run(
        [str(TRIPWIRE), "replay", "--automations", str(autos), "--events", str(evs)],
        capture_output=True,
        check=True,
    ).stdout
    return {orjson.loads(line)["id"] for line in out.splitlines() if line.strip()}


def _wait_persisted(cluster: Cluster, keys: int) -> None:
    """Wait until the buckets changelog holds `keys` distinct documents."""
    topic = changelog_topic(cluster.settings)
    records = cluster.read(topic, lambda recs: len({r.key for r in recs}) >= keys, timeout=60)
    assert len({r.key for r in records}) >= keys


def test_malformed_records_are_dead_lettered_and_valid_ones_around_them_fire(
    cluster: Cluster,
) -> None:
    automations = _automations(
        {**THREE_FAILURES, "trigger": {**THREE_FAILURES["trigger"], "threshold": 1}}
    )
    cluster.publish(automations)
    cluster.start_worker("w1")
    now = datetime.now(UTC)
    good = [flow_run_event(f"run-{i}", "Failed", now, number=i) for i in range(1, 4)]
    bad: list[tuple[bytes | None, bytes]] = [
        (b"k", b"{not json"),
        (b"k", b'["a", "list"]'),
        (b"k", orjson.dumps({"id": "x", "event": "e"})),
        (
            b"k",
            orjson.dumps(
                {**good[0], "id": str(good[0]["id"]).replace("0", "9"), "resource": {"no": "id"}}
            ),
        ),
        (b"k", b"\xff\xfe invalid utf-8"),
        (b"k", b"x" * (cluster.settings.max_event_bytes + 1)),
    ]
    mixed = [
        (b"k", orjson.dumps(good[0])),
        *bad[:3],
        (b"k", orjson.dumps(good[1])),
        *bad[3:],
        (b"k", orjson.dumps(good[2])),
    ]
    cluster.produce(mixed)
    firings = cluster.firings(lambda recs: len(recs) >= 3, timeout=60, settle=1)
    assert sorted(f["triggering_event"]["id"] for f in firings) == sorted(e["id"] for e in good)
    dead = cluster.read(cluster.settings.topic_events_dlq, lambda recs: len(recs) >= len(bad))
    assert [r.value for r in dead] == [value for _, value in bad]
    for record in dead:
        headers = dict(record.headers)
        assert headers["tripwire.reason"].startswith(b"invalid event")
        assert headers["tripwire.topic"] == cluster.settings.topic_events.encode()
        assert int(headers["tripwire.offset"]) >= 0
    reasons = [dict(r.headers)["tripwire.reason"].decode() for r in dead]
    assert "not JSON" in reasons[0]
    assert "not a JSON object" in reasons[1]
    assert "prefect.resource.id" in reasons[3]
    assert "limit" in reasons[5]


def test_a_proactive_trigger_fires_within_two_ticks_of_its_deadline_plus_the_allowance(
    cluster: Cluster,
) -> None:
    automations = _automations(stuck_runs("stuck-run", within=10))
    cluster.publish(automations)
    cluster.start_worker("w1")
    cluster.wait_loaded("w1", {str(automations[0].id)})
    occurred = datetime.now(UTC)
    cluster.produce_events(
        [
            flow_run_event("stuck", "Running", occurred, number=1),
            flow_run_event("healthy", "Running", occurred, number=2),
            flow_run_event("healthy", "Completed", occurred + timedelta(seconds=1), number=3),
        ]
    )
    firings = cluster.firings(lambda recs: len(recs) >= 1, timeout=60, settle=3)
    assert len(firings) == 1
    firing = firings[0]
    assert firing["bucket"] == {"prefect.resource.id": "prefect.flow-run.stuck"}
    deadline = occurred + timedelta(seconds=10)
    fired_at = datetime.fromisoformat(firing["fired_at"].replace("Z", "+00:00"))
    lateness = (fired_at - deadline).total_seconds()
    # Judged by the stream's watermark, the disorder allowance behind the events read.
    allowance = cluster.settings.disorder_allowance
    assert allowance <= lateness <= allowance + 2 * cluster.tick_interval + 0.5, lateness


@pytest.mark.parametrize(
    "stop_signal", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"]
)
def test_a_restarted_worker_keeps_its_buckets(
    cluster: Cluster, tmp_path: Path, stop_signal: int
) -> None:
    automations = _automations(THREE_FAILURES)
    cluster.publish(automations)
    worker = cluster.start_worker("w1")
    start = datetime.now(UTC)
    runs = [f"run-{i}" for i in range(6)]
    first = [
        flow_run_event(run, "Failed", start + timedelta(seconds=n), number=10 * i + n)
        for i, run in enumerate(runs)
        for n in (1, 2)
    ]
    cluster.produce_events(first)
    _wait_persisted(cluster, len(runs))
    worker.stop(stop_signal)
    cluster.start_worker("w1")
    last = [
        flow_run_event(run, "Failed", start + timedelta(seconds=3), number=10 * i + 3)
        for i, run in enumerate(runs)
    ]
    cluster.produce_events(last)
    firings = cluster.firings(lambda recs: len(recs) >= len(runs), timeout=120, settle=2)
    assert {f["id"] for f in firings} == _replay_ids(tmp_path, automations, first + last)
    assert len(firings) == len(runs)


def test_killing_one_of_two_workers_hands_its_partitions_and_state_over(
    cluster: Cluster, tmp_path: Path
) -> None:
    automations = _automations(THREE_FAILURES)
    cluster.publish(automations)
    cluster.start_worker("w1")
    doomed = cluster.start_worker("w2")
    start = datetime.now(UTC)
    runs = [f"run-{i}" for i in range(16)]
    first = [
        flow_run_event(run, "Failed", start + timedelta(seconds=n), number=100 * i + n)
        for i, run in enumerate(runs)
        for n in (1, 2)
    ]
    cluster.produce_events(first)
    _wait_persisted(cluster, len(runs))
    assert "Assigned" in doomed.log_text() or doomed.process.poll() is None
    doomed.stop(signal.SIGKILL)
    last = [
        flow_run_event(run, "Failed", start + timedelta(seconds=3), number=100 * i + 3)
        for i, run in enumerate(runs)
    ]
    cluster.produce_events(last)
    firings = cluster.firings(lambda recs: len(recs) >= len(runs), timeout=180, settle=3)
    ids = [f["id"] for f in firings]
    assert len(ids) == len(set(ids)), "a firing id was emitted twice"
    assert set(ids) == _replay_ids(tmp_path, automations, first + last)


def test_automation_changes_reach_the_running_worker_without_a_restart(cluster: Cluster) -> None:
    automation = _automations(
        {**THREE_FAILURES, "trigger": {**THREE_FAILURES["trigger"], "threshold": 1}}
    )[0]
    cluster.start_worker("w1")
    number = iter(range(1, 1000))

    def fire_once(run: str) -> list[dict[str, Any]]:
        """Produce one failure and return the firings it caused (after a quiet second)."""
        mark = cluster.marks(cluster.settings.topic_firings)
        event = flow_run_event(run, "Failed", datetime.now(UTC), number=next(number))
        cluster.produce_events([event])
        records = cluster.firings(lambda recs: bool(recs), timeout=10, settle=1, since=mark)
        return [r for r in records if r["triggering_event"]["id"] == event["id"]]

    def loaded(enabled: bool) -> bool:
        mirror = orjson.loads(cluster.mirror("w1").read_bytes())
        return [a["enabled"] for a in mirror] == [enabled]

    cluster.publish([automation])
    cluster.wait_loaded("w1", {str(automation.id)})
    assert len(fire_once("added")) == 1

    cluster.publish([automation.model_copy(update={"enabled": False})])
    _wait(lambda: loaded(False))
    assert fire_once("disabled") == []

    cluster.publish([automation])
    _wait(lambda: loaded(True))
    assert len(fire_once("enabled-again")) == 1

    cluster.publish([], deleted=[str(automation.id)])
    cluster.wait_loaded("w1", set())
    assert fire_once("deleted") == []


def _wait(condition: Any, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.1)
