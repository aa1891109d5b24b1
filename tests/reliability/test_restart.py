"""A restarted worker becomes ready, after SIGKILL and after SIGTERM, with its tables.

Ready is the worker's own /readyz (automations loaded, tables recovered, no rebalance).
An open bucket (2 of 3 failures) is carried across each restart and must fire on the
third failure, exactly once. The seconds from process start to ready are printed as a
RELIABILITY figure (docs/reliability.md: about 4.7 s on the embedded broker, against
19.8 s after a SIGKILL before the member id was kept), not asserted: a timed assertion
with 0.3 s of margin would fail on a loaded machine, and performance is measured, not
tested.
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime

import httpx

from service.models.automations import parse_automations
from tests.integration.harness import Cluster, Worker, failures_per_run, flow_run_event


def _ready_after(worker: Worker, started: float, limit: float = 60) -> float:
    url = f"http://127.0.0.1:{worker.web_port}/readyz"
    while time.monotonic() - started < limit:
        assert worker.process.poll() is None, worker.log_text()[-3000:]
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return time.monotonic() - started
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    msg = f"worker not ready within {limit} s:\n{worker.log_text()[-3000:]}"
    raise AssertionError(msg)


def _counted(worker: Worker, automation_id: str, run: str, count: int) -> bool:
    url = f"http://127.0.0.1:{worker.web_port}/explain/{automation_id}/"
    try:
        triggers = httpx.get(url, timeout=2).json()["triggers"]
    except (httpx.HTTPError, ValueError, KeyError):
        return False
    return any(
        bucket["key"] == f"prefect.flow-run.{run}" and bucket["count"] == count
        for trigger in triggers
        for bucket in trigger["buckets"]
    )


def test_a_restarted_worker_is_ready_with_its_tables(cluster: Cluster) -> None:
    automation = parse_automations([failures_per_run("third-failure", threshold=3, within=3600)])[0]
    cluster.publish([automation])
    automation_id = str(automation.id)
    started = time.monotonic()
    worker = cluster.start_worker("w1")
    figures = {"first start": _ready_after(worker, started)}
    port = str(worker.web_port)
    now = datetime.now(UTC)
    number = 0
    for stop in (signal.SIGKILL, signal.SIGTERM):
        run = f"run-{stop.name}"
        events = [flow_run_event(run, "Failed", now, number=number + i) for i in (1, 2, 3)]
        number += 10
        cluster.produce_events(events[:2])
        deadline = time.monotonic() + 30
        while not _counted(worker, automation_id, run, 2):
            assert time.monotonic() < deadline, "the two failures were not counted"
            time.sleep(0.1)
        worker.stop(stop)
        started = time.monotonic()
        worker = cluster.start_worker("w1", {"TRIPWIRE_WORKER_WEB_PORT": port})
        figures[f"after {stop.name}"] = _ready_after(worker, started)
        # The bucket came back with the tables: the third failure fires it.
        marks = cluster.marks(cluster.settings.topic_firings)
        cluster.produce_events(events[2:])
        fired = cluster.firings(lambda fs: len(fs) >= 1, timeout=30, settle=1, since=marks)
        assert [f["bucket"]["prefect.resource.id"] for f in fired] == [f"prefect.flow-run.{run}"]
        assert fired[0]["triggering_event"]["id"] == events[2]["id"]
    print(f"\nRELIABILITY restart, seconds from process start to /readyz 200: {figures}")
