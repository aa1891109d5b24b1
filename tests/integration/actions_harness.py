"""Helpers of the action worker tests: firing records, `tripwire actions` processes."""

from __future__ import annotations

import asyncio
import subprocess
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from service.messaging.broker import free_port
from tests.integration.harness import TRIPWIRE, Cluster, Worker, spawn


def firing(
    actions: list[dict[str, Any]],
    *,
    state: str = "Triggered",
    actions_on_trigger: list[dict[str, Any]] | None = None,
    actions_on_resolve: list[dict[str, Any]] | None = None,
    event: dict[str, Any] | None = None,
    bucket: dict[str, str] | None = None,
    automation_id: str | None = None,
    name: str = "webhook-test",
) -> dict[str, Any]:
    """A firing record as the stream worker writes it (docs/firings.md)."""
    automation_id = automation_id or str(uuid.uuid4())
    firing_id = str(uuid.uuid4())
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    state_event = {
        "id": str(uuid.uuid4()),
        "occurred": now,
        "event": f"prefect.automation.{state.lower()}",
        "resource": {
            "prefect.resource.id": f"prefect.automation.{automation_id}",
            "prefect.resource.name": name,
        },
        "related": [],
        "payload": {"triggering_labels": bucket or {}},
    }
    return {
        "schema_version": 1,
        "id": firing_id,
        "automation_id": automation_id,
        "automation_name": name,
        "trigger_id": str(uuid.uuid4()),
        "state": state,
        "bucket": bucket or {},
        "triggering_event": event,
        "triggering_value": None,
        "window": None,
        "fired_at": now,
        "child_firings": [],
        "state_event": state_event,
        "actions": actions,
        "actions_on_trigger": actions_on_trigger or [],
        "actions_on_resolve": actions_on_resolve or [],
    }


def event(
    name: str, resource: dict[str, str], related: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": datetime.now(UTC).isoformat(),
        "event": name,
        "resource": resource,
        "related": related or [],
        "payload": {"answer": 42},
    }


class Actions:
    """`tripwire actions` processes of one cluster, sharing one consumer group."""

    def __init__(self, cluster: Cluster, group: str = "actions", **settings: str) -> None:
        self.cluster = cluster
        self.group = group
        self.settings = settings
        self.dlq = f"{cluster.prefix}.actions.dlq"

    def env(self, name: str, port: int) -> dict[str, str]:
        return {
            **self.cluster.env(name),
            "TRIPWIRE_TOPIC_ACTIONS_DLQ": self.dlq,
            "TRIPWIRE_ACTIONS_GROUP": f"{self.cluster.prefix}-{self.group}",
            "TRIPWIRE_ACTIONS_WEB_PORT": str(port),
            **{f"TRIPWIRE_{k.upper()}": v for k, v in self.settings.items()},
        }

    def start(self, name: str = "actions") -> tuple[Worker, str]:
        """Start one worker; return it and its web address once /readyz answers 200."""
        port = free_port()
        log = self.cluster.root / f"{name}.log"
        log_file = log.open("ab")
        process = spawn(
            [str(TRIPWIRE), "actions"],
            env=self.env(name, port),
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        worker = Worker(name, process, log, log_file)
        self.cluster.workers.append(worker)
        web = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, worker.log_text()
            try:
                if httpx.get(f"{web}/readyz", timeout=1).status_code == 200:
                    return worker, web
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        msg = f"action worker not ready:\n{worker.log_text()}"
        raise AssertionError(msg)

    def produce(self, *records: dict[str, Any], partition: int | None = None) -> None:
        topic = self.cluster.settings.topic_firings
        if partition is None:
            self.cluster.produce(((r["id"].encode(), orjson.dumps(r)) for r in records), topic)
        else:
            values = [(r["id"].encode(), orjson.dumps(r)) for r in records]
            asyncio.run(_produce_to(self.cluster.bootstrap, topic, partition, values))

    def dead_letters(self, count: int, timeout: float = 90) -> list[Any]:
        return self.cluster.read(self.dlq, lambda recs: len(recs) >= count, timeout)


async def _produce_to(
    bootstrap: str, topic: str, partition: int, records: list[tuple[bytes, bytes]]
) -> None:
    # One partition, one order: a redelivery and a later marker stay in sequence.
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait(topic, value, key=key, partition=partition)
    finally:
        await producer.stop()


def metric(web: str, name: str, action_type: str) -> float:
    """One labelled counter of an action worker's /metrics."""
    text = httpx.get(f"{web}/metrics", timeout=5).text
    for line in text.splitlines():
        if line.startswith(f'{name}_total{{type="{action_type}"}}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0
