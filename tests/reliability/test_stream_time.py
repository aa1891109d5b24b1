"""No absence alert that is only a delay: proactive deadlines follow the stream's time.

A live stream of flow runs, each Completed 2-4 s after it starts Running, meets a
trigger "Running, then no Completed/Failed/Crashed within 10 s" that must never fire,
while the worker is stopped (SIGTERM, SIGKILL), paused (SIGSTOP), flooded with a backlog
of older runs produced at once (as a bridge catching up delivers them), and handed over
to a second worker. Each disruption lasts longer than the window, so a worker that
judged deadlines by its wall clock fired for every run that was open across it
(docs/reliability.md). A heartbeat trigger over the same stream must stay quiet while
the heartbeats flow, and fire once they stop, within a tick of its deadline plus the
disorder allowance.
"""

from __future__ import annotations

import asyncio
import random
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from service.models.automations import parse_automations
from tests.integration.api_harness import wait_worker_ready
from tests.integration.harness import Cluster, Worker, scrape, until

WITHIN = 10
TICK = 1.0
ALLOWANCE = 2.0
PAUSE = 3 * WITHIN  # each disruption lasts three windows
SETTLE = 12.0  # seconds of live stream after each disruption

STUCK = {
    "name": "stuck-run",
    "trigger": {
        "type": "event",
        "posture": "Proactive",
        "after": ["prefect.flow-run.Running"],
        "expect": [
            "prefect.flow-run.Completed",
            "prefect.flow-run.Failed",
            "prefect.flow-run.Crashed",
        ],
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "for_each": ["prefect.resource.id"],
        "threshold": 1,
        "within": WITHIN,
    },
    "actions": [{"type": "do-nothing"}],
}
HEARTBEAT = {
    "name": "heartbeat-lost",
    "trigger": {
        "type": "event",
        "posture": "Proactive",
        # Each heartbeat restarts the window (Prefect's zombie-run detection, scenario 24).
        "after": ["heartbeat"],
        "expect": ["heartbeat"],
        "match": {"prefect.resource.id": "heart.*"},
        "for_each": ["prefect.resource.id"],
        "threshold": 1,
        "within": WITHIN,
    },
    "actions": [{"type": "do-nothing"}],
}


def _event(name: str, resource: str, occurred: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": occurred.isoformat(),
        "event": name,
        "resource": {"prefect.resource.id": resource},
    }


class LiveStream:
    """Flow runs and a heartbeat produced as they happen, from a thread of its own."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.bootstrap, self.topic = bootstrap, topic
        self.runs = 0
        self._stop_runs = threading.Event()
        self._stop_heart = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._run()), daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop_heartbeat(self) -> None:
        self._stop_heart.set()

    def finish(self) -> None:
        """Start no new run; every open run completes; then return."""
        self._stop_runs.set()
        self._thread.join(30)

    async def _run(self) -> None:
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap, linger_ms=5)
        await producer.start()
        rng = random.Random(18)  # noqa: S311  # a repeatable workload
        completions: list[tuple[float, str]] = []
        next_heartbeat = 0.0
        try:
            while not (self._stop_runs.is_set() and not completions):
                now = time.monotonic()
                if not self._stop_runs.is_set():
                    run = f"prefect.flow-run.live-{self.runs}"
                    self.runs += 1
                    await self._send(producer, _event("prefect.flow-run.Running", run, _now()))
                    completions.append((now + rng.uniform(2, 4), run))
                for due, run in [c for c in completions if c[0] <= now]:
                    completions.remove((due, run))
                    await self._send(producer, _event("prefect.flow-run.Completed", run, _now()))
                if not self._stop_heart.is_set() and now >= next_heartbeat:
                    await self._send(producer, _event("heartbeat", "heart.1", _now()))
                    next_heartbeat = now + 1.0
                await asyncio.sleep(0.1)
        finally:
            await producer.stop()

    async def _send(self, producer: AIOKafkaProducer, event: dict[str, Any]) -> None:
        key = event["resource"]["prefect.resource.id"].encode()
        await producer.send_and_wait(self.topic, orjson.dumps(event), key=key)


def _now() -> datetime:
    return datetime.now(UTC)


def _backlog(runs: int, span: float) -> list[tuple[bytes, bytes]]:
    """Completed runs of the last `span` seconds, as a bridge catching up delivers them."""
    rng = random.Random(23)  # noqa: S311  # a repeatable workload
    start = _now() - timedelta(seconds=span)
    records = []
    for n in range(runs):
        began = start + timedelta(seconds=rng.uniform(0, span - 5))
        run = f"prefect.flow-run.backlog-{n}"
        for name, at in (
            ("prefect.flow-run.Running", began),
            ("prefect.flow-run.Completed", began + timedelta(seconds=rng.uniform(2, 4))),
        ):
            records.append((run.encode(), orjson.dumps(_event(name, run, at))))
    return records


BACKLOG_RUNS = 15_000  # 30,000 events of the last two minutes, produced at once
BACKLOG_SPAN = 120.0


def _drained(worker: Worker, topic: str, slack: int = 0) -> None:
    """Wait until the worker's committed lag on the events topic is at most `slack`.

    With a live stream running the lag is never 0 for long (commits follow every few
    seconds), so a backlog counts as read once the lag is down to the live stream's.
    """

    def lags() -> bool:
        lag = [
            value
            for (name, labels), value in scrape(worker.web_port).items()
            if name == "tripwire_consumer_lag" and dict(labels).get("topic") == topic
        ]
        return bool(lag) and sum(lag) <= slack

    until(lags, timeout=180, what=f"{topic} drained")


def _stuck_firings(cluster: Cluster) -> list[dict[str, Any]]:
    firings = cluster.firings(lambda recs: False, timeout=3)
    return [f for f in firings if f["automation_name"] == "stuck-run"]


def test_no_absence_alert_across_stops_pauses_backlogs_and_a_handover(cluster: Cluster) -> None:
    cluster.tick_interval = TICK
    cluster.publish(parse_automations([STUCK, HEARTBEAT]))
    env = {"TRIPWIRE_DISORDER_ALLOWANCE": str(ALLOWANCE)}
    worker = cluster.start_worker("w1", env)
    wait_worker_ready(worker)
    events = cluster.settings.topic_events
    steps: list[str] = ["backlog into an idle worker"]
    cluster.produce(_backlog(BACKLOG_RUNS, span=BACKLOG_SPAN))
    _drained(worker, events)
    # Its deadlines pass during the next step; a firing would show at that step's check.
    live = LiveStream(cluster.bootstrap, events)
    live.start()
    time.sleep(SETTLE)

    def restart(stopped: Worker, sig: signal.Signals) -> Worker:
        stopped.stop(sig)
        time.sleep(PAUSE)
        fresh = cluster.start_worker("w1", env)
        wait_worker_ready(fresh)
        return fresh

    for sig in (signal.SIGTERM, signal.SIGKILL):
        worker = restart(worker, sig)
        steps.append(sig.name)
        time.sleep(SETTLE)
        assert _stuck_firings(cluster) == [], steps

    worker.process.send_signal(signal.SIGSTOP)
    time.sleep(2 * WITHIN)  # two windows, as the 60 s pause of a 30 s window
    worker.process.send_signal(signal.SIGCONT)
    steps.append("SIGSTOP")
    time.sleep(SETTLE)
    assert _stuck_firings(cluster) == [], steps

    cluster.produce(_backlog(BACKLOG_RUNS, span=BACKLOG_SPAN))
    steps.append("backlog into a live stream")
    _drained(worker, events, slack=500)
    time.sleep(SETTLE)
    assert _stuck_firings(cluster) == [], steps

    second = cluster.start_worker("w2", env)
    wait_worker_ready(second)
    time.sleep(SETTLE)
    worker.stop(signal.SIGTERM)
    steps.append("handover")
    time.sleep(SETTLE)

    live.stop_heartbeat()
    live.finish()
    time.sleep(WITHIN + ALLOWANCE + 3 * TICK)
    firings = cluster.firings(lambda recs: False, timeout=3)
    stuck = [f for f in firings if f["automation_name"] == "stuck-run"]
    assert stuck == [], (steps, len(stuck), live.runs)
    lost = [f for f in firings if f["automation_name"] == "heartbeat-lost"]
    assert len(lost) == 1, lost
    fired_at = datetime.fromisoformat(lost[0]["fired_at"])
    late = (fired_at - datetime.fromisoformat(lost[0]["window"]["end"])).total_seconds()
    print(
        f"\nRELIABILITY stream time: {live.runs} live runs, 2 x {BACKLOG_RUNS:,} backlog runs, "
        f"steps {steps}: 0 stuck-run firings; heartbeat fired {late:.1f} s after its deadline"
    )
    # Judged by the watermark: the allowance after its window's end, then within a tick
    # and the progress reports that carry the watermark; never before.
    assert ALLOWANCE <= late <= ALLOWANCE + 3 * TICK + 2, late
