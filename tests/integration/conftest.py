"""Fixtures: one real Tansu broker per test session; one isolated cluster per test."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.messaging.broker import free_port, tansu_command, wait_ready
from tests.integration.harness import Cluster, kill_group, spawn


@dataclass
class Broker:
    """The session's Tansu process and where it listens."""

    process: subprocess.Popen[bytes]
    bootstrap: str


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Broker]:
    log_path = tmp_path_factory.mktemp("broker") / "tansu.log"
    port = free_port()
    # Not EmbeddedBroker: this one dies with pytest even when pytest is SIGKILLed.
    with log_path.open("ab") as log:
        process = spawn(tansu_command("127.0.0.1", port), stdout=log, stderr=subprocess.STDOUT)
    embedded = Broker(process, f"127.0.0.1:{port}")
    try:
        asyncio.run(wait_ready(embedded.bootstrap))
        yield embedded
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            kill_group(process)


@pytest.fixture
def cluster(broker: Broker, tmp_path: Path) -> Iterator[Cluster]:
    world = Cluster(broker.bootstrap, tmp_path)
    world.create_topics()
    try:
        yield world
    finally:
        world.stop_all()


PREFECT_BIN = Path(__file__).resolve().parents[2] / ".venv-prefect" / "bin"


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Prefect 3.9.1 server on SQLite, once per session (it takes seconds to start)."""
    home = tmp_path_factory.mktemp("prefect")
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{home}/prefect.db",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_UI_ENABLED": "false",
    }
    log = (home / "server.log").open("ab")
    process = spawn(
        [
            str(PREFECT_BIN / "prefect"),
            "server",
            "start",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert process.poll() is None, (home / "server.log").read_text()
            try:
                if httpx.get(f"{api}/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the Prefect server did not start"
            time.sleep(0.2)
        yield api
    finally:
        # Its own process group: the server and anything it started, by its id.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        log.close()
