"""`tripwire up` (what `make run` runs): the service, restart, and supervision by signals."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from service.embedded import port_in_use
from service.messaging.broker import free_port
from tests.integration.harness import TRIPWIRE, Cluster, flow_run_event, kill_group, spawn

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

# Generous: a loaded 2-core machine; nothing here measures speed.
READY_SECONDS = 120
GONE_SECONDS = 60


def descendants(pid: int) -> set[int]:
    """Every process below `pid` now (Linux /proc)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = (task / "children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                if child not in found:
                    found.add(child)
                    todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """The pids still running (a zombie has ended; only its parent has not reaped it)."""
    running = set()
    for pid in pids:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat.rsplit(")", 1)[1].split()[0] != "Z":
            running.add(pid)
    return running


def wait_gone(pids: set[int]) -> set[int]:
    deadline = time.monotonic() + GONE_SECONDS
    while (left := alive(pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return left


class Embedded:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        # Every port `up` would take, free ones: `make run` may hold the defaults.
        self.api_port = free_port()
        self.worker_port = free_port()
        self.actions_port = free_port()
        self.env = {
            **os.environ,
            "TRIPWIRE_KAFKA_BOOTSTRAP": f"127.0.0.1:{self.port}",
            "TRIPWIRE_DATA_DIR": str(root / "data"),
            "TRIPWIRE_WORKER_WEB_PORT": str(self.worker_port),
            "TRIPWIRE_ACTIONS_WEB_PORT": str(self.actions_port),
            "TRIPWIRE_API_PORT": str(self.api_port),
            "TRIPWIRE_API_URL": f"http://127.0.0.1:{self.api_port}/api",
            "TRIPWIRE_TICK_INTERVAL": "1",
        }
        for name in ("TRIPWIRE_LOG_LEVEL", "TRIPWIRE_LOG_FORMAT"):
            self.env.pop(name, None)
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.out = root / "up-0.out"
        self.err = root / "up-0.err"

    def launch(self, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        self.starts += 1
        self.out = self.root / f"up-{self.starts}.out"
        self.err = self.root / f"up-{self.starts}.err"
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.process = spawn(
                [str(TRIPWIRE), "up"], env={**self.env, **(env or {})}, stdout=out, stderr=err
            )
        return self.process

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def start(self) -> set[int]:
        """Start `up`, wait for its ready line; its processes then."""
        process = self.launch()
        deadline = time.monotonic() + READY_SECONDS
        while "tripwire up: ready in" not in self.out.read_text():
            assert time.monotonic() < deadline, self.output()
            assert process.poll() is None, self.output()
            time.sleep(0.2)
        return descendants(process.pid)

    def stop(self, sig: int = signal.SIGINT) -> int:
        assert self.process is not None
        self.process.send_signal(sig)
        return self.process.wait(GONE_SECONDS)

    def cli(self, *args: str) -> str:
        done = subprocess.run(
            [str(TRIPWIRE), *args], env=self.env, capture_output=True, check=True, text=True
        )
        # No HTTP client chatter in a command's output (httpx logs every request at INFO).
        assert "HTTP Request" not in done.stderr + done.stdout, done.stderr
        return done.stdout

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
        process = up.process
        if process is not None and process.poll() is None:
            # The orderly stop first, so its parts stop too; then anything left.
            process.terminate()
            try:
                process.wait(GONE_SECONDS)
            except subprocess.TimeoutExpired:
                kill_group(process)


def _scrape(url: str) -> set[str]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    names = {family.name for family in text_string_to_metric_families(text)}
    # The parser reads a counter's _created samples as a family of their own.
    return {name.removesuffix("_created") for name in names if name.startswith("tripwire_")}


def test_up_runs_the_service_and_a_restart_keeps_the_automations(
    embedded: Embedded, tmp_path: Path
) -> None:
    parts = embedded.start()
    assert len(parts) >= 4  # broker, worker, action worker, API
    out = embedded.out.read_text()
    assert f"broker (Tansu, in memory) on 127.0.0.1:{embedded.port}" in out
    # One line per part started, one ready line; the banner only once all are ready.
    lines = out.splitlines()
    assert sum("started, pid" in line for line in lines) == 3, out
    assert "Ctrl-C" in lines[-1], out
    assert sum("Ctrl-C" in line for line in lines) == 1, out
    # The quiet default: no start-up chatter from Faust, aiokafka, uvicorn or httpx.
    noise = embedded.err.read_text()
    for word in ("INFO", "ERROR", "Unable connect", "HTTP Request"):
        assert word not in noise, noise

    # Every process: the same health shape, and only its own metrics.
    bodies = {}
    for name, port in (
        ("worker", embedded.worker_port),
        ("actions", embedded.actions_port),
        ("api", embedded.api_port),
    ):
        for page in ("healthz", "readyz"):
            answer = httpx.get(f"http://127.0.0.1:{port}/{page}", timeout=5)
            assert answer.status_code == 200, (name, page, answer.text)
            body = answer.json()
            assert set(body) == {"status", "ready", "checks"}, body
            assert (body["status"], body["ready"]) == ("ok", True), body
            bodies[name] = body["checks"]
    assert set(bodies["worker"]) == {
        "automations_loaded",
        "tables_recovered",
        "rebalancing",
        "stalled",
    }
    assert bodies["actions"] == {"consumer_polled": True}
    assert bodies["api"]["automations_loaded"] is True
    worker = _scrape(f"http://127.0.0.1:{embedded.worker_port}")
    actions = _scrape(f"http://127.0.0.1:{embedded.actions_port}")
    api = _scrape(f"http://127.0.0.1:{embedded.api_port}")
    assert "tripwire_events_consumed" in worker
    assert all(not name.startswith("tripwire_action") for name in worker | api)
    assert all(not name.startswith("tripwire_api") for name in worker | actions)
    # The API's own metrics only (requests, the console's live feed, backtests).
    assert "tripwire_api_requests" in api
    assert all(name.startswith("tripwire_api_") for name in api), api
    assert not (worker & (actions | api))

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
    assert embedded.stop(signal.SIGINT) == 0
    assert "stopped" in embedded.out.read_text()
    assert wait_gone(parts) == set()

    # The broker kept everything in memory: a restart starts empty but re-publishes
    # the automations saved in the data directory, and the worker starts fresh.
    embedded.start()
    assert "re-published 1 saved automations" in embedded.out.read_text()
    assert automation_id in embedded.cli("automations", "ls")
    embedded.wait_evaluated(automation_id)
    world.produce_events([flow_run_event("r2", "Failed", datetime.now(UTC), number=2)])
    firings = world.firings(lambda recs: len(recs) >= 1, timeout=60)
    assert [f["triggering_event"]["id"] for f in firings] == [str(uuid.UUID(int=2))]
    assert embedded.stop(signal.SIGTERM) == 0


@pytest.mark.parametrize("sig", [signal.SIGHUP, signal.SIGTERM])
def test_a_stop_signal_stops_every_part_and_frees_the_ports(
    embedded: Embedded, sig: signal.Signals
) -> None:
    parts = embedded.start()
    assert embedded.stop(sig) == 0, embedded.output()
    assert wait_gone(parts) == set()
    for port in (embedded.port, embedded.api_port, embedded.worker_port, embedded.actions_port):
        assert not port_in_use("127.0.0.1", port), port


def test_a_part_that_dies_stops_the_rest_with_its_status_and_log(embedded: Embedded) -> None:
    parts = embedded.start()
    assert embedded.process is not None
    actions = [
        pid
        for pid in parts
        if Path(f"/proc/{pid}/cmdline").read_bytes().endswith(b"service.cli\0actions\0")
    ]
    assert len(actions) == 1, actions
    os.kill(actions[0], signal.SIGKILL)
    assert embedded.process.wait(GONE_SECONDS) == 128 + signal.SIGKILL
    err = embedded.err.read_text()
    assert f"the action worker (pid {actions[0]}) exited with signal 9" in err, err
    assert "Last lines of" in err
    assert wait_gone(parts) == set()


def test_up_killed_leaves_no_process_behind(embedded: Embedded) -> None:
    parts = embedded.start()
    assert embedded.process is not None
    embedded.process.kill()
    embedded.process.wait(GONE_SECONDS)
    # Each part's parent-death signal: nothing outlives `up`, the broker least of all.
    assert wait_gone(parts) == set()
    assert not port_in_use("127.0.0.1", embedded.port)


def test_a_busy_broker_port_is_an_error_naming_it(embedded: Embedded) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", embedded.port))
        holder.listen()
        process = embedded.launch()
        assert process.wait(GONE_SECONDS) == 2
    out = embedded.output()
    assert f"127.0.0.1:{embedded.port} (TRIPWIRE_KAFKA_BOOTSTRAP) is in use" in out, out
    assert "broker (Tansu" not in out
    assert "tripwire up: ready in" not in out


def test_a_broker_that_exits_before_it_answers_is_an_error(
    embedded: Embedded, tmp_path: Path
) -> None:
    # Such as a port taken between the check and the bind: the broker exits, and `up`
    # must say so rather than talk to whatever answers on the port.
    fake = tmp_path / "tansu"
    fake.write_text("#!/bin/sh\necho 'Error: Address already in use (os error 98)'\nexit 3\n")
    fake.chmod(0o755)
    process = embedded.launch({"CALF_TANSU_BIN": str(fake)})
    assert process.wait(GONE_SECONDS) == 3
    out = embedded.output()
    assert f"the broker on 127.0.0.1:{embedded.port} (pid" in out, out
    assert "exited with status 3" in out
    assert "Address already in use" in out
    assert "tripwire up: ready in" not in out
