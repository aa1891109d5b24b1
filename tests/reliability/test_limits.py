"""Resource limits through the real processes: each is a setting, and hitting it is a clear
refusal (a dead letter with its reason, a 422 naming the setting), never a crash."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
import pytest

from service.models.automations import parse_automations
from tests.integration.api_harness import start_api, wait_worker_ready
from tests.integration.harness import Cluster, failures_per_run, flow_run_event

LIMIT = 2_000


def _sized(size: int, number: int, now: datetime) -> bytes:
    """A valid flow-run event of exactly `size` bytes (its payload padded)."""
    event: dict[str, Any] = flow_run_event(f"run-{number}", "Failed", now, number=number)
    event["payload"] = {"pad": ""}
    bare = len(orjson.dumps(event))
    event["payload"]["pad"] = "x" * (size - bare)
    raw = orjson.dumps(event)
    assert len(raw) == size
    return raw


def _metric(port: int, name: str) -> float:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    lines = [line for line in text.splitlines() if line.startswith(name)]
    return float(lines[0].rsplit(" ", 1)[1]) if lines else 0.0


def test_events_over_the_size_limit_are_dead_lettered_and_the_rest_fire(cluster: Cluster) -> None:
    cluster.max_event_bytes = LIMIT  # TRIPWIRE_MAX_EVENT_BYTES of the worker
    cluster.publish(parse_automations([failures_per_run("every-failure", threshold=1, within=0)]))
    worker = cluster.start_worker("w1")
    wait_worker_ready(worker)
    now = datetime.now(UTC)
    sizes = [LIMIT - 1, LIMIT, LIMIT + 1, 900_000, 500, LIMIT + 1_000]
    records = [_sized(size, n + 1, now) for n, size in enumerate(sizes)]
    cluster.produce((b"k", raw) for raw in records)

    fits = [raw for raw in records if len(raw) <= LIMIT]
    over = [raw for raw in records if len(raw) > LIMIT]
    firings = cluster.firings(lambda recs: len(recs) >= len(fits), timeout=60, settle=2)
    assert sorted(f["triggering_event"]["id"] for f in firings) == sorted(
        orjson.loads(raw)["id"] for raw in fits
    )
    dead = cluster.read(cluster.settings.topic_events_dlq, lambda recs: len(recs) >= len(over))
    assert [r.value for r in dead] == over
    for record in dead:
        reason = dict(record.headers)["tripwire.reason"].decode()
        assert reason == (
            f"invalid event: record of {len(record.value)} bytes is over the {LIMIT}-byte limit"
        )
    assert _metric(worker.web_port, 'tripwire_events_dead_lettered_total{reason="too_large"}') == 3
    assert worker.process.poll() is None


def test_the_api_refuses_automations_past_its_limit_naming_the_setting(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIPWIRE_MAX_AUTOMATIONS", "3")
    api = start_api(cluster)
    body = {
        "name": "a",
        "trigger": {"type": "event", "posture": "Reactive", "expect": ["x"], "threshold": 1},
        "actions": [{"type": "do-nothing"}],
    }
    with api.client() as http:
        made = [http.post("/automations/", json={**body, "name": f"a{i}"}) for i in range(3)]
        assert [r.status_code for r in made] == [201, 201, 201]
        refused = [
            http.post("/automations/", json={**body, "name": "one-too-many"}),
            # A new client-chosen id is a new automation too.
            http.post("/automations/", json={**body, "name": "new-id", "id": str(uuid.uuid4())}),
        ]
        for answer in refused:
            assert answer.status_code == 422, answer.text
            (error,) = answer.json()["exception_detail"]
            assert "TRIPWIRE_MAX_AUTOMATIONS" in error["msg"]
            assert error["type"] == "value_error.limit"
        assert http.post("/automations/count").json() == 3
        # Re-posting a stored id revises it: allowed at the limit.
        first = made[0].json()
        again = http.post("/automations/", json={**body, "name": "renamed", "id": first["id"]})
        assert again.status_code == 201, again.text
        assert http.delete(f"/automations/{made[1].json()['id']}").status_code == 204
        assert http.post("/automations/", json={**body, "name": "fits"}).status_code == 201
        assert http.post("/automations/count").json() == 3


def test_a_trigger_at_its_bucket_limit_skips_new_keys_and_keeps_its_buckets(
    cluster: Cluster,
) -> None:
    # The limit is per partition: topics of one partition hold every bucket in one place.
    cluster.partitions = 1
    cluster.prefix += "p1"
    cluster.create_topics()
    cluster.publish(
        parse_automations([failures_per_run("second-failure-per-run", threshold=2, within=3600)])
    )
    worker = cluster.start_worker("w1", {"TRIPWIRE_MAX_BUCKETS_PER_TRIGGER": "3"})
    wait_worker_ready(worker)
    now = datetime.now(UTC)
    runs = ["r1", "r2", "r3", "r4", "r5"]
    first = [flow_run_event(run, "Failed", now, number=n + 1) for n, run in enumerate(runs)]
    # r1 has a bucket and fires on its second failure; r5 was refused a bucket, so its
    # second failure is refused again and never fires.
    second = [
        flow_run_event("r5", "Failed", now, number=105),
        flow_run_event("r1", "Failed", now, number=101),
    ]
    cluster.produce_events(first + second, key=b"one-order")
    firings = cluster.firings(lambda recs: len(recs) >= 1, timeout=60, settle=3)
    assert [f["bucket"]["prefect.resource.id"] for f in firings] == ["prefect.flow-run.r1"]
    assert _metric(worker.web_port, "tripwire_state_limit_rejections_total") == 3
    assert "TRIPWIRE_MAX_BUCKETS_PER_TRIGGER" in worker.log_text()
    assert worker.process.poll() is None


# -- request bodies of the API (issue 19) ----------------------------------------------
BODY_LIMIT = 524_288  # TRIPWIRE_API_MAX_BODY_BYTES's default
JSON = {"Content-Type": "application/json"}


def _automation_of(size: int, name: str) -> bytes:
    """A valid automation of exactly `size` bytes of JSON (its description padded)."""
    body: dict[str, Any] = {
        "name": name,
        "description": "",
        "trigger": {"type": "event", "posture": "Reactive", "expect": ["x"], "threshold": 1},
        "actions": [{"type": "do-nothing"}],
    }
    bare = len(orjson.dumps(body))
    body["description"] = "d" * (size - bare)
    raw = orjson.dumps(body)
    assert len(raw) == size
    return raw


def _chunks(raw: bytes, size: int = 65_536) -> Iterator[bytes]:
    # A generator body goes out chunked, without a Content-Length.
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


def test_api_bodies_over_the_limit_get_a_413_at_under_and_past_every_limit(
    cluster: Cluster,
) -> None:
    api = start_api(cluster)
    with api.client() as http:
        before = http.post("/automations/count").json()
        stored = []
        for size in (BODY_LIMIT - 1, BODY_LIMIT):
            answer = http.post(
                "/automations/", content=_automation_of(size, f"s{size}"), headers=JSON
            )
            assert answer.status_code == 201, answer.text[:300]
            stored.append(answer.json()["id"])
        answer = http.post(
            "/automations/", content=_chunks(_automation_of(BODY_LIMIT, "c")), headers=JSON
        )
        assert answer.status_code == 201, answer.text[:300]
        stored.append(answer.json()["id"])
        # Over the limit; 1.5 MB and 10 MB are also past the producer's 1 MiB default (and
        # Prefect's 1.5 MB event limit), which gave a 500 before the limit existed.
        for size in (BODY_LIMIT + 1, 1_500_000, 10_000_000):
            answer = http.post("/automations/", content=_automation_of(size, "big"), headers=JSON)
            assert answer.status_code == 413, (size, answer.text[:300])
            message = answer.json()["exception_message"]
            assert f"a body of {size} bytes" in message
            assert "TRIPWIRE_API_MAX_BODY_BYTES" in message
        chunked = http.post(
            "/automations/", content=_chunks(_automation_of(1_500_000, "c")), headers=JSON
        )
        assert chunked.status_code == 413, chunked.text[:300]
        assert "more than 524288 bytes" in chunked.json()["exception_message"]
        # Every route with a body holds the same limit.
        for method, path in (("PUT", f"/automations/{stored[0]}"), ("POST", "/automations/filter")):
            answer = http.request(method, path, content=b" " * (BODY_LIMIT + 1), headers=JSON)
            assert answer.status_code == 413, (path, answer.text[:300])
        assert http.post("/automations/count").json() == before + len(stored)
        for automation_id in stored:
            assert http.get(f"/automations/{automation_id}").status_code == 200
    metrics = httpx.get(f"{api.url.removesuffix('/api')}/metrics", timeout=5).text
    assert 'tripwire_api_requests_total{route="body_refused",status="413"} 6.0' in metrics
    assert api.process.process.poll() is None


def test_an_automation_under_the_body_limit_but_over_the_record_limit_gets_a_413(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A small body limit makes the stored form's growth (an id and every default per
    # trigger) cross the producer's limit of twice the body limit: 8,192 bytes here.
    monkeypatch.setenv("TRIPWIRE_API_MAX_BODY_BYTES", "4096")
    api = start_api(cluster)
    children = [{"posture": "Reactive", "expect": ["x"]}] * 100
    body = {
        "name": "wide",
        "trigger": {"type": "compound", "require": "any", "within": None, "triggers": children},
        "actions": [],
    }
    raw = orjson.dumps(body)
    assert len(raw) <= 4096
    with api.client() as http:
        answer = http.post("/automations/", content=raw, headers=JSON)
        assert answer.status_code == 413, answer.text[:300]
        message = answer.json()["exception_message"]
        assert "over the 8192-byte record limit of the API's producer" in message
        assert "split it" in message
        assert http.post("/automations/count").json() == 0
        # The API is unharmed: a small automation still goes in.
        assert (
            http.post(
                "/automations/", content=_automation_of(1_000, "ok"), headers=JSON
            ).status_code
            == 201
        )


def test_a_raised_body_limit_raises_the_producers_record_limit_with_it(
    cluster: Cluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 3 MB bodies, 6 MB records: the embedded broker stores a 2.5 MB automation (Tansu
    # set no record limit up to 100 MB when measured); Apache Kafka would answer with
    # MESSAGE_TOO_LARGE unless the topic's max.message.bytes is raised, which the API
    # turns into a 413 naming that setting (docs/api.md).
    monkeypatch.setenv("TRIPWIRE_API_MAX_BODY_BYTES", "3000000")
    api = start_api(cluster)
    with api.client() as http:
        answer = http.post("/automations/", content=_automation_of(2_500_000, "huge"), headers=JSON)
        assert answer.status_code == 201, answer.text[:300]
        assert (
            len(http.get(f"/automations/{answer.json()['id']}").json()["description"]) > 2_400_000
        )
