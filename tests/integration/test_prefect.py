"""Prefect actions and the bridge against a real Prefect 3.9.1 server (docs/actions.md)."""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from service.models.automations import parse_automation
from tests.integration.actions_harness import Actions, event, firing
from tests.integration.conftest import PREFECT_BIN
from tests.integration.harness import TRIPWIRE, Cluster, Worker, spawn, until
from tests.integration.http_target import Target, always, http_target


class Prefect:
    """A thin REST client for setting up and checking the Prefect server."""

    def __init__(self, api: str) -> None:
        self.api = api
        self.http = httpx.Client(base_url=api, timeout=30)

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        # A freshly started server on SQLite answers 503 while its database is busy.
        deadline = time.monotonic() + 60
        while True:
            response = self.http.request(method, path, json=body)
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert response.status_code < 300, response.text
        return response.json()

    def post(self, path: str, body: Any = None) -> Any:
        return self._call("POST", path, body if body is not None else {})

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def deployment(self, tag: str) -> str:
        flow = self.post("/flows/", {"name": f"target-{tag}"})
        return str(self.post("/deployments/", {"name": f"dep-{tag}", "flow_id": flow["id"]})["id"])

    def runs_of(self, deployment_id: str) -> list[dict[str, Any]]:
        runs: list[dict[str, Any]] = self.post(
            "/flow_runs/filter", {"deployments": {"id": {"any_": [deployment_id]}}}
        )
        return runs


@pytest.fixture
def prefect(prefect_server: str) -> Iterator[Prefect]:
    client = Prefect(prefect_server)
    try:
        yield client
    finally:
        client.http.close()


@pytest.fixture
def target() -> Iterator[Target]:
    with http_target() as server:
        yield server


def test_prefect_actions_change_the_prefect_server(
    cluster: Cluster, prefect: Prefect, target: Target
) -> None:
    tag = uuid.uuid4().hex[:8]
    source_deployment = prefect.deployment(f"src-{tag}")
    to_run = prefect.deployment(f"run-{tag}")
    flow_run = prefect.post(f"/deployments/{source_deployment}/create_flow_run", {})["id"]
    pool = prefect.post("/work_pools/", {"name": f"pool-{tag}", "type": "process"})
    queue = prefect.post(f"/work_pools/pool-{tag}/queues", {"name": f"queue-{tag}"})
    webhook_type = prefect.get("/block_types/slug/webhook")
    (schema, *_) = prefect.post(
        "/block_schemas/filter",
        {"block_schemas": {"block_type_id": {"any_": [webhook_type["id"]]}}},
    )
    target.on("/block-hook", always(200))
    block = prefect.post(
        "/block_documents/",
        {
            "name": f"hook-{tag}",
            "data": {"url": f"{target.url}/block-hook", "method": "PUT", "headers": {"X-A": "b"}},
            "block_schema_id": schema["id"],
            "block_type_id": webhook_type["id"],
        },
    )
    triggering = event(
        "prefect.flow-run.Failed",
        {"prefect.resource.id": f"prefect.flow-run.{flow_run}", "prefect.resource.name": "r"},
        [
            {
                "prefect.resource.id": f"prefect.deployment.{source_deployment}",
                "prefect.resource.role": "deployment",
            }
        ],
    )
    actions_json = [
        {
            "type": "run-deployment",
            "deployment_id": to_run,
            "parameters": {"who": "{{ event.resource.name }}", "n": "{{ event.payload.answer }}"},
        },
        {"type": "pause-deployment", "source": "inferred"},
        {"type": "pause-work-pool", "work_pool_id": pool["id"]},
        {"type": "pause-work-queue", "work_queue_id": queue["id"]},
        {
            "type": "change-flow-run-state",
            "state": "FAILED",
            "message": "by Tripwire",
            "force": True,
        },
        {
            "type": "call-webhook",
            "block_document_id": block["id"],
            "payload": "{{ flow_run.name }} of {{ deployment.name }}",
        },
    ]
    # What the API would accept: the same JSON validates as an automation's actions.
    parse_automation({"name": "x", "trigger": {"posture": "Reactive"}, "actions": actions_json})
    record = firing(
        actions_json,
        event=triggering,
        bucket={"prefect.resource.id": f"prefect.flow-run.{flow_run}"},
    )
    actions = Actions(cluster, prefect_api_url=prefect.api)
    worker, _ = actions.start()
    actions.produce(record)

    (run,) = until(lambda: prefect.runs_of(to_run), what="a flow run of the deployment")
    assert run["parameters"] == {"who": "r", "n": 42}
    assert run["idempotency_key"] == (
        f"automation {record['automation_id']}, action 0, invocation {record['id']}"
    )
    until(lambda: prefect.get(f"/deployments/{source_deployment}")["paused"], what="paused")
    until(lambda: prefect.get(f"/work_pools/pool-{tag}")["is_paused"], what="pool paused")
    until(lambda: prefect.get(f"/work_queues/{queue['id']}")["is_paused"], what="queue paused")
    state = until(
        lambda: (s := prefect.get(f"/flow_runs/{flow_run}")["state"])["type"] == "FAILED" and s
    )
    assert state["message"] == "by Tripwire"
    (hook,) = target.wait_for("/block-hook", 1)
    flow_run_name = prefect.get(f"/flow_runs/{flow_run}")["name"]
    assert (hook.method, hook.headers["X-A"]) == ("PUT", "b")
    assert hook.body.decode() == f"{flow_run_name} of dep-src-{tag}"
    assert worker.stop() == 0

    # Lose the completion table (another worker, a wiped disk): the firing comes back and
    # run-deployment's idempotency key still makes it one flow run.
    again = Actions(cluster, group="again", prefect_api_url=prefect.api)
    second, _ = again.start("actions-again")  # a new group and an empty table
    target.wait_for("/block-hook", 2)  # the redelivered firing ran again...
    assert second.stop() == 0
    assert len(prefect.runs_of(to_run)) == 1  # ...but Prefect made no second flow run


FLOW_SCRIPT = textwrap.dedent(
    """
    import sys
    from prefect import flow

    @flow(name=sys.argv[1])
    def bridged():
        return 1

    bridged()
    """
)


def _run_flow(api: str, home: Path, name: str) -> None:
    script = home / "flow.py"
    script.write_text(FLOW_SCRIPT)
    env = {
        **os.environ,
        "PREFECT_API_URL": api,
        "PREFECT_HOME": str(home),
        "PREFECT_LOGGING_LEVEL": "WARNING",
    }
    subprocess.run(
        [str(PREFECT_BIN / "python"), str(script), name], env=env, check=True, timeout=180
    )


def _start_bridge(cluster: Cluster, api: str, run: int) -> Worker:
    log = cluster.root / f"bridge-{run}.log"
    log_file = log.open("ab")
    env = {**cluster.env("bridge"), "TRIPWIRE_PREFECT_API_URL": api}
    process = spawn(
        [str(TRIPWIRE), "bridge", "prefect"], env=env, stdout=log_file, stderr=subprocess.STDOUT
    )
    bridge = Worker("bridge", process, log, log_file)
    cluster.workers.append(bridge)
    until(lambda: "following" in bridge.log_text(), timeout=60, what="the bridge to subscribe")
    return bridge


def _completed(records: list[Any], flow_name: str) -> list[dict[str, Any]]:
    out = []
    for record in records:
        value = orjson.loads(record.value)
        related = {r.get("prefect.resource.name") for r in value.get("related", [])}
        if value["event"] == "prefect.flow-run.Completed" and flow_name in related:
            assert record.key.decode() == value["resource"]["prefect.resource.id"]
            out.append(value)
    return out


def test_a_prefect_flow_run_fires_an_automation_that_runs_a_deployment(
    cluster: Cluster, prefect: Prefect, tmp_path: Path
) -> None:
    tag = uuid.uuid4().hex[:8]
    flow_name = f"bridged-{tag}"
    to_run = prefect.deployment(f"chain-{tag}")
    automation = parse_automation(
        {
            "name": f"chain-{tag}",
            "trigger": {
                "posture": "Reactive",
                "expect": ["prefect.flow-run.Completed"],
                "match_related": {
                    "prefect.resource.role": "flow",
                    "prefect.resource.name": flow_name,
                },
                "threshold": 1,
                "within": 0,
            },
            "actions": [{"type": "run-deployment", "deployment_id": to_run}],
        }
    )
    cluster.publish([automation])
    cluster.start_worker("w1")
    cluster.wait_loaded("w1", {str(automation.id)})
    actions = Actions(cluster, prefect_api_url=prefect.api)
    actions.start()
    bridge = _start_bridge(cluster, prefect.api, 1)
    home = tmp_path / "prefect-client"
    home.mkdir()

    _run_flow(prefect.api, home, flow_name)
    records = cluster.read(
        cluster.settings.topic_events, lambda recs: bool(_completed(recs, flow_name)), timeout=120
    )
    (completed,) = _completed(records, flow_name)
    (run,) = until(lambda: prefect.runs_of(to_run), timeout=120, what="the automation's run")
    assert run["idempotency_key"].startswith(f"automation {automation.id}, action 0, ")

    # The bridge is killed; a flow runs meanwhile; the restarted bridge asks the server
    # again from its saved position and the missed events arrive.
    bridge.stop(signal.SIGKILL)
    _run_flow(prefect.api, home, flow_name)
    _start_bridge(cluster, prefect.api, 2)
    records = cluster.read(
        cluster.settings.topic_events,
        lambda recs: len({e["id"] for e in _completed(recs, flow_name)}) >= 2,
        timeout=120,
    )
    ids = {e["id"] for e in _completed(records, flow_name)}
    assert completed["id"] in ids and len(ids) == 2
    until(lambda: len(prefect.runs_of(to_run)) == 2, timeout=120, what="the second run")
