"""A running worker's /metrics move with the traffic it got; /healthz, /readyz; JSON logs."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from service.models.automations import parse_automations
from tests.integration.api_harness import start_api
from tests.integration.harness import Cluster, Samples, Worker, flow_run_event, scrape

EVERY_FAILURE = {
    "name": "every-failure",
    "trigger": {
        "type": "event",
        "posture": "Reactive",
        "expect": ["prefect.flow-run.Failed"],
        "for_each": ["prefect.resource.id"],
        "threshold": 1,
        "within": 0,
    },
    "actions": [{"type": "do-nothing"}],
}


def _get(worker: Worker, path: str) -> httpx.Response:
    return httpx.get(f"http://127.0.0.1:{worker.web_port}{path}", timeout=5)


def _scrape(worker: Worker) -> Samples:
    return scrape(worker.web_port)


def _value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _until(condition: Callable[[], Any], limit: float = 60) -> Any:
    deadline = time.monotonic() + limit
    while True:
        try:
            result = condition()
        except httpx.HTTPError:
            result = None
        if result:
            return result
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.2)


def test_health_readiness_and_counters_follow_the_traffic(cluster: Cluster) -> None:
    automation = parse_automations([EVERY_FAILURE])[0]
    cluster.publish([automation])
    worker = cluster.start_worker("w1", {"TRIPWIRE_LOG_FORMAT": "json"})

    assert _until(lambda: _get(worker, "/healthz").status_code == 200)
    ready = _until(lambda: (r := _get(worker, "/readyz")).status_code == 200 and r.json())
    # The shape every process answers (test_embedded.py checks the API and action worker).
    assert ready == {
        "status": "ok",
        "ready": True,
        "checks": {
            "automations_loaded": True,
            "tables_recovered": True,
            "rebalancing": False,
            "stalled": {},
        },
    }
    assert _get(worker, "/healthz").json() == ready
    # Ready means loaded: the worker's mirror already holds the automation.
    mirror = orjson.loads(cluster.mirror("w1").read_bytes())
    assert [a["id"] for a in mirror] == [str(automation.id)]

    before = _scrape(worker)
    now = datetime.now(UTC)
    good = [flow_run_event(f"run-{i}", "Failed", now, number=i) for i in range(1, 6)]
    unmatched = flow_run_event("run-ok", "Completed", now, number=99)
    bad: list[tuple[bytes | None, bytes]] = [
        (b"k", b"{not json"),
        (b"k", b"\xff\xfe"),
        (b"k", b'["a", "list"]'),
        (b"k", orjson.dumps({**good[0], "id": "not-a-uuid", "resource": {"no": "id"}})),
        (b"k", b"x" * (cluster.settings.max_event_bytes + 1)),
    ]
    cluster.produce(
        [(b"k", orjson.dumps(e)) for e in good] + [(b"k", orjson.dumps(unmatched))] + bad
    )
    cluster.firings(lambda recs: len(recs) >= len(good), timeout=60)
    cluster.read(cluster.settings.topic_events_dlq, lambda recs: len(recs) >= len(bad))

    consumed = len(good) + 1 + len(bad)

    def counted() -> Samples | None:
        after = _scrape(worker)
        done = (
            _value(after, "tripwire_events_consumed_total")
            - _value(before, "tripwire_events_consumed_total")
            >= consumed
        )
        return after if done else None

    after = _until(counted)

    def delta(name: str, **labels: str) -> float:
        return _value(after, name, **labels) - _value(before, name, **labels)

    assert delta("tripwire_events_consumed_total") == consumed
    assert delta("tripwire_matches_total") == len(good)
    assert delta("tripwire_firings_total", state="Triggered") == len(good)
    dead = {
        reason: delta("tripwire_events_dead_lettered_total", reason=reason)
        for reason in ("not_json", "not_object", "invalid_event", "too_large")
    }
    assert dead == {"not_json": 2, "not_object": 1, "invalid_event": 1, "too_large": 1}
    assert delta("tripwire_batch_size_sum", agent="route") == consumed
    assert delta("tripwire_evaluation_seconds_count", agent="route") >= 1
    assert delta("tripwire_batch_size_sum", agent="evaluate") >= 1

    # Lag and ticks come from timers: every events partition this lone worker holds is
    # reported, and caught up.
    events_topic = cluster.settings.topic_events

    def lag_of_events() -> dict[str, float] | None:
        samples = _scrape(worker)
        lag = {
            dict(labels)["partition"]: value
            for (name, labels), value in samples.items()
            if name == "tripwire_consumer_lag" and dict(labels)["topic"] == events_topic
        }
        ticked = _value(samples, "tripwire_tick_seconds_count") > 0
        return lag if ticked and len(lag) == cluster.partitions and not any(lag.values()) else None

    assert _until(lag_of_events) == {str(p): 0.0 for p in range(cluster.partitions)}

    # Every line the worker wrote is one JSON object; dead letters carry their context.
    lines = [orjson.loads(line) for line in worker.log_text().splitlines() if line.strip()]
    assert lines
    assert all({"ts", "level", "logger", "process", "message"} <= set(line) for line in lines)
    assert {line["process"] for line in lines} == {"worker"}
    dead_lines = [line for line in lines if line["message"].startswith("dead-letter")]
    assert sorted(line["reason"] for line in dead_lines) == sorted(
        ["not_json", "not_json", "not_object", "invalid_event", "too_large"]
    )
    assert {line["topic"] for line in dead_lines} == {events_topic}


# Every page Faust 0.15.3 can serve by itself (faust/web/apps/: router, tables, stats and
# its assignment page, graph, performance, the production index) and a made-up one.
FAUST_PAGES = [
    "/",
    "/router/",
    "/router/topics",
    "/router/buckets/",
    "/table/",
    "/table/buckets/",
    "/table/buckets/some-key/",
    "/assignment/",
    "/graph/",
    "/performance/",
    "/stats/",
    "/signal/",
    "/no-such-page",
]


def test_the_worker_serves_only_its_pages_and_explain_needs_the_token(cluster: Cluster) -> None:
    token = uuid.uuid4().hex
    automation = parse_automations([EVERY_FAILURE])[0]
    cluster.publish([automation])
    worker = cluster.start_worker("w1", {"TRIPWIRE_API_TOKEN": token})
    assert _until(lambda: _get(worker, "/readyz").status_code == 200)
    base = f"http://127.0.0.1:{worker.web_port}"
    for page in ("/healthz", "/readyz", "/metrics"):
        assert _get(worker, page).status_code == 200, page
    for page in FAUST_PAGES:
        for method in ("GET", "POST"):
            answer = httpx.request(method, f"{base}{page}", timeout=5)
            assert answer.status_code == 404, (method, page, answer.text[:200])
    explain = f"{base}/explain/{automation.id}/"
    denied = httpx.get(explain, timeout=5)
    assert denied.status_code == 401
    assert "TRIPWIRE_API_TOKEN" in denied.text
    wrong = httpx.get(explain, headers={"Authorization": f"Bearer not-{token}"}, timeout=5)
    assert wrong.status_code == 401
    allowed = httpx.get(explain, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert allowed.status_code == 200
    assert allowed.json()["loaded"] is True

    # The API sends its token to the workers, so explain through it works end to end.
    api = start_api(cluster, worker_urls=base, token=token)
    with api.client() as http:
        report = http.get(f"/automations/{automation.id}/explain").json()
    assert report["workers"]["unreachable"] == []
    assert report["workers"]["loaded_by"] == [base]
