"""`tripwire up`: the embedded default, everything on this machine in one command."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from types import FrameType

import orjson

from service.config import Settings
from service.errors import ConfigError
from service.messaging.automations import publish_automations
from service.messaging.broker import EmbeddedBroker, wait_ready
from service.messaging.topics import ensure_topics
from service.models.automations import parse_automations
from service.readiness import wait_until_ready

__all__ = ["run_up", "stop_processes"]


def _announce(message: str) -> None:
    print(f"tripwire up: {message}", flush=True)


def run_up(settings: Settings) -> int:
    """Start the broker, re-publish saved automations, start the worker; stop on Ctrl-C."""
    host, _, port = settings.kafka_bootstrap.partition(",")[0].rpartition(":")
    if not port.isdigit():
        msg = f"TRIPWIRE_KAFKA_BOOTSTRAP must be host:port, not {settings.kafka_bootstrap!r}"
        raise ConfigError(msg)
    data_dir = settings.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    broker = EmbeddedBroker(host or "127.0.0.1", int(port), data_dir / "broker.log")
    broker.start()
    processes: list[subprocess.Popen[bytes]] = []
    try:
        asyncio.run(_prepare(settings))
        _announce(f"Kafka-protocol broker (Tansu, in memory) on {broker.bootstrap}")
        env = dict(os.environ, TRIPWIRE_KAFKA_BOOTSTRAP=broker.bootstrap)
        host = settings.worker_web_host
        worker = _spawn("worker", env, processes)
        _announce(f"stream worker (pid {worker.pid}), {_web(host, settings.worker_web_port)}")
        # The action worker turns firings into effects (docs/actions.md).
        actions = _spawn("actions", env, processes)
        prefect = settings.prefect_api_url or "none: set TRIPWIRE_PREFECT_API_URL"
        _announce(
            f"action worker (pid {actions.pid}), {_web(host, settings.actions_web_port)}; "
            f"dead letters to '{settings.topic_actions_dlq}'; Prefect API: {prefect}"
        )
        # The API's explain asks the one worker `up` runs, wherever it listens.
        worker_url = f"http://{host}:{settings.worker_web_port}"
        api = _spawn("api", dict(env, TRIPWIRE_WORKER_URLS=worker_url), processes)
        # Announce the API only once it answers, so the next command in a script works.
        ready_url = f"http://{settings.api_host}:{settings.api_port}/readyz"
        if not wait_until_ready(ready_url, api):
            msg = f"the automations API did not become ready at {ready_url}"
            raise ConfigError(msg)
        _announce(
            f"automations API (pid {api.pid}) on http://{settings.api_host}:{settings.api_port}"
            "/api (docs: /api/docs; PREFECT_API_URL can point here)"
        )
        _announce(
            f"produce events to '{settings.topic_events}', read firings from "
            f"'{settings.topic_firings}'; Ctrl-C stops everything"
        )
        return _wait(processes)
    finally:
        stop_processes(processes)
        broker.stop()
        _announce("stopped")


def stop_processes(processes: list[subprocess.Popen[bytes]], seconds: float = 30) -> None:
    """SIGTERM every process still running, then kill those that outlive `seconds`."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()


def _spawn(
    command: str, env: dict[str, str], processes: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(  # noqa: S603  # our own entry point, fixed commands
        [sys.executable, "-m", "service.cli", command], env=env
    )
    processes.append(process)
    return process


def _web(host: str, port: int) -> str:
    return f"http://{host}:{port}" if port else "no web server"


async def _prepare(settings: Settings) -> None:
    await wait_ready(settings.kafka_bootstrap)
    await ensure_topics(settings)
    # The embedded broker starts empty every time: table state from an earlier broker
    # life would not match its changelogs, so it is discarded, and the automations
    # saved in the data directory are published again.
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    mirror = settings.data_dir / "automations.json"
    if mirror.is_file():
        automations = parse_automations(orjson.loads(mirror.read_bytes()))
        await publish_automations(settings, automations)
        _announce(f"re-published {len(automations)} saved automations from {mirror}")


def _wait(processes: list[subprocess.Popen[bytes]]) -> int:
    stopping = False

    def _stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, _stop)
    signal.signal(signal.SIGTERM, _stop)
    while not stopping:
        for process in processes:
            if process.poll() is not None:
                _announce(f"process {process.pid} exited with {process.returncode}")
                return process.returncode or 1
        time.sleep(0.2)
    return 0
