"""`tripwire up` (what `make run` runs): broker, worker, restart; the CLI against it."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest

from service.messaging.broker import free_port
from tests.integration.harness import TRIPWIRE, Cluster, flow_run_event

AUTOMATION = {
    "name": "any-failure",
    "trigger": {
        "type": "event",
        "posture": "Reactive",
        "expect": ["prefect.flow-run.Failed"],
        "threshold": 1,
        "within": 0,
    },
    "actions": [{"type": "do-nothing"}],
}


class Embedded:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.env = {
            **os.environ,
            "TRIPWIRE_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.port}",
            "TRIPWIRE_DATA_DIR": str(root / "data"),
            "TRIPWIRE_WORKER_WEB_PORT": str(free_port()),
            "TRIPWIRE_TICK_INTERVAL": "1",
        }
        api_port = free_port()
        self.env["TRIPWIRE_API_PORT"] = str(api_port)
        self.env["TRIPWIRE_API_URL"] = f"http://127.0.0.1:{api_port}/api"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.log = root / "up-0.log"

    def start(self) -> None:
        self.starts += 1
        self.log = self.root / f"up-{self.starts}.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [str(TRIPWIRE), "up"], env=self.env, stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while "produce events to" not in self.log.read_text():
            assert time.monotonic() < deadline, self.log.read_text()
            assert self.process.poll() is None, self.log.read_text()
            time.sleep(0.2)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(60)

    def cli(self, *args: str) -> str:
        return subprocess.run(
            [str(TRIPWIRE), *args], env=self.env, capture_output=True, check=True, text=True
        ).stdout

    def wait_evaluated(self, automation_id: str, timeout: float = 60) -> None:
        """Wait until the worker evaluates the automation's current version."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            report = orjson.loads(self.cli("explain", automation_id, "--json"))
            if report["workers"]["current"]:
                return
            time.sleep(0.2)
        msg = f"the worker did not load {automation_id}"
        raise AssertionError(msg)

    def cluster(self) -> Cluster:
        # The default topic names of the embedded default, with this broker.
        world = Cluster(f"127.0.0.1:{self.port}", self.root)
        world.prefix = "tripwire"
        return world


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Embedded]:
    up = Embedded(tmp_path)
    try:
        yield up
    finally:
        if up.process is not None and up.process.poll() is None:
            up.process.kill()
            up.process.wait(30)


def test_up_runs_the_service_and_a_restart_keeps_the_automations(
    embedded: Embedded, tmp_path: Path
) -> None:
    embedded.start()
    log = embedded.log.read_text()
    assert f"broker (Tansu, in memory) on 127.0.0.1:{embedded.port}" in log
    path = tmp_path / "automation.json"
    path.write_bytes(orjson.dumps(AUTOMATION))
    applied = embedded.cli("automations", "apply", str(path))
    automation_id = applied.split()[1]
    assert automation_id in embedded.cli("automations", "ls")
    embedded.wait_evaluated(automation_id)

    world = embedded.cluster()
    world.produce_events([flow_run_event("r1", "Failed", datetime.now(UTC), number=1)])
    firings = world.firings(lambda recs: len(recs) >= 1, timeout=60)
    assert [f["automation_id"] for f in firings] == [automation_id]
    assert embedded.stop() == 0
    assert "stopped" in embedded.log.read_text()

    # The broker kept everything in memory: a restart starts empty but re-publishes
    # the automations saved in the data directory, and the worker starts fresh.
    embedded.start()
    assert "re-published 1 saved automations" in embedded.log.read_text()
    assert automation_id in embedded.cli("automations", "ls")
    embedded.wait_evaluated(automation_id)
    world.produce_events([flow_run_event("r2", "Failed", datetime.now(UTC), number=2)])
    firings = world.firings(lambda recs: len(recs) >= 1, timeout=60)
    assert [f["triggering_event"]["id"] for f in firings] == [str(uuid.UUID(int=2))]
    assert embedded.stop() == 0
