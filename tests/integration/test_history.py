"""The API's history of firings and action outcomes: real broker, worker, API, actions, client."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import textwrap
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.actions_harness import Actions
from tests.integration.api_harness import Api, run_cli, start_api, wait_worker_ready
from tests.integration.harness import Cluster, failures_per_run, flow_run_event, until
from tests.integration.http_target import Target, always, http_target

PREFECT_PYTHON = Path(__file__).resolve().parents[2] / ".venv-prefect" / "bin" / "python"

# Prefect's own client pages through Tripwire's events with read_events / next_page.
READ_EVENTS = textwrap.dedent(
    """
    import json, sys
    from prefect.client.orchestration import get_client
    from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter

    resource, prefix = sys.argv[1], sys.argv[2]
    spec = EventFilter(
        resource=EventResourceFilter(id=[resource]),
        event=EventNameFilter(prefix=[prefix]),
    )
    with get_client(sync_client=True) as client:
        page = client.read_events(filter=spec, limit=4)
        pages, total, events = 1, page.total, list(page.events)
        while (page := page.get_next_page_sync(client)) is not None:
            pages += 1
            events.extend(page.events)
    print(json.dumps({
        "pages": pages,
        "total": total,
        "events": [
            {"id": str(e.id), "event": e.event, "resource": e.resource.id,
             "payload": e.payload, "occurred": e.occurred.isoformat()}
            for e in events
        ],
    }))
    """
)


@pytest.fixture
def target() -> Iterator[Target]:
    with http_target() as server:
        yield server


def events_of(api: Api, automation_id: str, **spec: Any) -> list[dict[str, Any]]:
    """Every kept event of one automation through POST /events/filter, newest first."""
    body = {"resource": {"id": [f"prefect.automation.{automation_id}"]}, **spec}
    out: list[dict[str, Any]] = []
    with api.client() as http:
        page = http.post("/events/filter", json={"filter": body, "limit": 50}).json()
        out.extend(page["events"])
        while page["next_page"]:
            page = http.get(page["next_page"]).json()
            out.extend(page["events"])
    return out


def test_firings_and_action_outcomes_are_kept_served_to_prefects_client_and_rebuilt(
    cluster: Cluster, target: Target, tmp_path: Path
) -> None:
    target.on("/ok", always(200))
    target.on("/refused", always(404))
    worker = cluster.start_worker("w1")
    api = start_api(cluster, worker_urls=f"http://127.0.0.1:{worker.web_port}")
    wait_worker_ready(worker)
    Actions(cluster).start()
    name = f"history-{uuid.uuid4().hex[:8]}"
    automation = {
        **failures_per_run(name, threshold=1, within=0),
        "actions": [
            {"type": "call-webhook", "url": f"{target.url}/ok", "payload": "{{ event.id }}"},
            {"type": "call-webhook", "url": f"{target.url}/refused"},
        ],
    }
    with api.client() as http:
        created = http.post("/automations/", json=automation)
        assert created.status_code == 201, created.text
    automation_id = created.json()["id"]
    cluster.wait_loaded("w1", {automation_id})
    with api.client() as http:
        # A trigger on its own action outcomes would fire on every firing of its own.
        looping = {
            **automation,
            "name": f"{name}-loop",
            "trigger": {
                "posture": "Reactive",
                "expect": ["prefect.automation.action.failed"],
                "match": {"prefect.resource.id": "prefect.automation.*"},
                "threshold": 1,
                "within": 0,
            },
        }
        refused = http.post("/automations/", json=looping)
        assert refused.status_code == 422, refused.text
        assert "action.triggered/executed/failed" in refused.json()["exception_detail"][0]["msg"]
        watching = {
            **looping,
            "name": f"{name}-watcher",
            "trigger": {
                **looping["trigger"],
                "match": {"prefect.resource.id": f"prefect.automation.{automation_id}"},
            },
        }
        assert http.post("/automations/validate", json=watching).status_code == 200
    assert (
        "never" in run_cli(api, "automations", "ls").stdout.split(automation_id)[1].split("\n")[0]
    )

    now = datetime.now(UTC)
    failed = [flow_run_event(f"run-{n}", "Failed", now, number=10_000 + n) for n in range(3)]
    cluster.produce_events(failed)
    # 3 firings; per firing 2 actions, each `.triggered` and `.executed` or `.failed`.
    everything = until(
        lambda: (found := events_of(api, automation_id)) and len(found) >= 15 and found,
        what="15 events in the history",
    )
    assert len(everything) == 15
    assert len({e["id"] for e in everything}) == 15
    names = [e["event"] for e in everything]
    assert names.count("prefect.automation.triggered") == 3
    assert names.count("prefect.automation.action.triggered") == 6
    assert names.count("prefect.automation.action.executed") == 3
    assert names.count("prefect.automation.action.failed") == 3
    occurred = [e["occurred"] for e in everything]
    assert occurred == sorted(occurred, reverse=True), "newest first, Prefect's default"
    assert len(target.to("/ok")) == 3
    health = httpx.get(f"http://127.0.0.1:{api.port}/healthz", timeout=5).json()
    assert health["checks"]["history_following"] is True

    # Prefect 3.9.1's client reads the failures, four to a page, following next_page.
    assert PREFECT_PYTHON.exists(), "run `make prefect-env` (make test does)"
    script = tmp_path / "read_events.py"
    script.write_text(READ_EVENTS)
    read = subprocess.run(
        [
            str(PREFECT_PYTHON),
            str(script),
            f"prefect.automation.{automation_id}",
            "prefect.automation.action.",
        ],
        env={
            "PATH": os.environ.get("PATH", ""),
            "PREFECT_HOME": str(tmp_path / "prefect-home"),
            "PREFECT_API_URL": api.url,
            "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
        },
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert read.returncode == 0, read.stderr
    answer = json.loads(read.stdout)
    assert answer["total"] == 12
    assert answer["pages"] == 3
    action_events = [e for e in everything if e["event"].startswith("prefect.automation.action.")]
    assert [e["id"] for e in answer["events"]] == [e["id"] for e in action_events]
    reasons = {
        e["payload"]["reason"]
        for e in answer["events"]
        if e["event"] == "prefect.automation.action.failed"
    }
    assert reasons == {"Unexpected status from 'call-webhook' action: 404"}

    with api.client() as http:
        # Prefect's answers to a misspelt criterion, a page too large, a forged token.
        typo = http.post("/events/filter", json={"filter": {"resources": {"id": ["x"]}}})
        assert typo.status_code == 422
        assert typo.json()["exception_detail"][0]["loc"] == ["body", "filter", "resources"]
        assert http.post("/events/filter", json={"limit": 51}).status_code == 422
        forged = http.get("/events/filter/next", params={"page-token": "not a token"})
        assert forged.status_code == 403

    # The CLI: history, ls's last fired column, explain's recent firings.
    shown = run_cli(api, "automations", "history", name, "--since", "1h", "--json")
    assert shown.returncode == 0, shown.stderr
    firings = json.loads(shown.stdout)
    assert len(firings) == 3
    for firing in firings:
        outcomes = sorted(
            (a["payload"]["action_index"], a["event"].rsplit(".", 1)[1])
            for a in firing["actions"]
            if not a["event"].endswith(".triggered")
        )
        assert outcomes == [(0, "executed"), (1, "failed")]
    text = run_cli(api, "automations", "history", name).stdout
    assert text.count("  Triggered  on prefect.flow-run.Failed") == 3
    assert text.count("action 1 call-webhook: failed: Unexpected status") == 3
    newest = max(e["occurred"] for e in everything if e["event"] == "prefect.automation.triggered")
    last_column = datetime.fromisoformat(newest).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (
        f"{automation_id}  enabled   {last_column}  {name}"
        in run_cli(api, "automations", "ls").stdout
    )
    explained = run_cli(api, "explain", name).stdout
    assert "last 3 firings" in explained
    assert explained.count("action 0 call-webhook: executed") == 3

    # Restarted on its data: the same history (resumed from the offsets it stored).
    # uvicorn re-raises the SIGTERM it handled, once it has shut down cleanly.
    assert api.process.stop() in (0, -signal.SIGTERM)
    kept = start_api(cluster, worker_urls="")
    assert events_of(kept, automation_id) == everything
    partitions = 2 * cluster.partitions
    assert f"history: {partitions} of {partitions} partitions resume" in kept.process.log_text()
    # A fresh data directory rebuilds the same history from the topics.
    fresh = start_api(cluster, "api-fresh")
    assert f"history: 0 of {partitions} partitions resume" in fresh.process.log_text()
    rebuilt = until(
        lambda: (found := events_of(fresh, automation_id)) and len(found) >= 15 and found,
        what="the rebuilt history",
    )
    assert rebuilt == everything
    # At most 5 per automation: the 5 newest of the same history.
    small = start_api(cluster, "api-small", extra_env={"TRIPWIRE_HISTORY_MAX_PER_AUTOMATION": "5"})

    # Fed in batches, it may hold other events on the way; read to the end, the five newest.
    until(lambda: events_of(small, automation_id) == everything[:5], what="the newest 5 events")
    assert len(events_of(small, automation_id, order="ASC")) == 5
