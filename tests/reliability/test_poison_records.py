"""Records at and past every size limit in the chain never cost a valid event.

The chain: the worker's event limit (TRIPWIRE_MAX_EVENT_BYTES, 100,000 here), its
producer's request limit (the larger of that plus 64 KiB and 1 MiB), and the broker's
(Tansu enforces none: it took 150 MB records in a probe; Apache Kafka's default is about
1 MB, and its refusal reaches the producer as the same MessageSizeTooLargeError). A
record the worker cannot use goes to the dead-letter topic whole when the copy fits the
producer, else cut to 64 KiB with its original size; the valid events around it all
fire; the committed offsets reach the log's end. And while the dead-letter topic cannot
be written at all, nothing past the record is committed and the worker says so; once it
can be written, the worker dead-letters the record and evaluates every event after it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from aiokafka.record.default_records import DefaultRecordBatchBuilder

from service.messaging.records import DEAD_LETTER_CUT_BYTES, dead_letter_headers
from service.models.automations import parse_automations
from tests.integration.api_harness import wait_worker_ready
from tests.integration.fault_proxy import FaultProxy, proxied_cluster
from tests.integration.harness import (
    Cluster,
    Samples,
    Worker,
    failures_per_run,
    scrape,
)

KEY = b"poison"  # one key: one partition, one order
PRODUCER_LIMIT = 1_048_576  # the worker's, for a 100,000-byte event limit

AUTOMATION = failures_per_run("every-failure", threshold=1, within=0)


def _failed(n: int, size: int | None = None) -> bytes:
    """A valid Failed event of flow run `n`, padded to exactly `size` bytes if given."""
    event: dict[str, Any] = {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"poison-{n}")),
        "occurred": datetime.now(UTC).isoformat(),
        "event": "prefect.flow-run.Failed",
        "resource": {"prefect.resource.id": f"prefect.flow-run.{n}"},
        "payload": {"pad": ""},
    }
    raw = orjson.dumps(event)
    if size is not None:
        event["payload"]["pad"] = "x" * (size - len(raw))
        raw = orjson.dumps(event)
        assert len(raw) == size
    return raw


def _oversized(size: int) -> bytes:
    raw = b'{"pad": "' + b"x" * (size - 11) + b'"}'
    assert len(raw) == size
    return raw


def _copy_size(value: bytes, reason: str, topic: str, partition: int, offset: int) -> int:
    headers = dead_letter_headers(reason, topic, partition, offset)
    return int(DefaultRecordBatchBuilder.estimate_size_in_bytes(KEY, value, headers))


def _metrics(worker: Worker) -> Samples:
    return scrape(worker.web_port)


def _lag(worker: Worker, topic: str) -> float:
    return sum(
        value
        for (name, labels), value in _metrics(worker).items()
        if name == "tripwire_consumer_lag" and ("topic", topic) in labels
    )


def test_records_past_every_size_limit_are_dead_lettered_and_valid_events_around_them_fire(
    cluster: Cluster,
) -> None:
    limit = cluster.max_event_bytes
    sizes = {
        "under the event limit": limit - 1,
        "at the event limit": limit,
        "one past the event limit": limit + 1,
        "just under the producer limit": PRODUCER_LIMIT - 1_000,
        "at the producer limit": PRODUCER_LIMIT,
        "past the producer limit": PRODUCER_LIMIT + 1,
        "twice Kafka's default broker limit": 2_000_000,
        "well past every limit": 5_000_000,
    }
    records: list[bytes] = []
    valid: list[int] = []
    bad: list[bytes] = []
    n = 0
    for size in sizes.values():
        # A valid event before and after each big record, in the same batch and partition.
        for _ in range(3):
            records.append(_failed(n))
            valid.append(n)
            n += 1
        if size <= limit:
            records.append(_failed(n, size))
            valid.append(n)
            n += 1
        else:
            records.append(_oversized(size))
            bad.append(records[-1])
    for _ in range(3):
        records.append(_failed(n))
        valid.append(n)
        n += 1

    cluster.publish(parse_automations([AUTOMATION]))
    worker = cluster.start_worker("w1")
    wait_worker_ready(worker)
    # A key past the producer's limit: the copy must cut the key, not only the value.
    huge_key = b"k" * 2_000_000
    cluster.produce([*((KEY, raw) for raw in records), (huge_key, b"not json")])

    firings = cluster.firings(lambda recs: len({r["id"] for r in recs}) >= len(valid), 120, 2)
    fired = {f["triggering_event"]["resource"]["prefect.resource.id"] for f in firings}
    assert fired == {f"prefect.flow-run.{i}" for i in valid}

    topic = cluster.settings.topic_events_dlq
    dead = cluster.read(topic, lambda recs: len(recs) >= len(bad) + 1, 60, 2)
    (cut_key,) = [r for r in dead if r.key != KEY]
    assert cut_key.key == huge_key[:1024] and cut_key.value == b"not json"
    assert dict(cut_key.headers)["tripwire.original-key-bytes"] == b"2000000"
    dead = [r for r in dead if r.key == KEY]
    assert len(dead) == len(bad)
    cut = 0
    for record, original in zip(
        sorted(dead, key=lambda r: int(dict(r.headers)["tripwire.offset"])), bad, strict=True
    ):
        headers = dict(record.headers)
        reason = headers["tripwire.reason"].decode()
        assert reason == (
            f"invalid event: record of {len(original)} bytes is over the {limit}-byte limit"
        )
        partition, offset = int(headers["tripwire.partition"]), int(headers["tripwire.offset"])
        assert headers["tripwire.topic"].decode() == cluster.settings.topic_events
        whole = _copy_size(original, reason, cluster.settings.topic_events, partition, offset)
        if "tripwire.truncated" in headers:
            # Cut only when the whole copy could not be sent.
            assert whole > PRODUCER_LIMIT, whole
            assert record.value == original[:DEAD_LETTER_CUT_BYTES]
            assert int(headers["tripwire.original-bytes"]) == len(original)
            cut += 1
        else:
            assert whole <= PRODUCER_LIMIT, whole
            assert record.value == original
    assert cut == 4, cut  # at, past the producer limit, and the two far past it

    # The metric counts what the topic got; nothing failed; every offset is committed.
    deadline = time.monotonic() + 30
    while _lag(worker, cluster.settings.topic_events) and time.monotonic() < deadline:
        time.sleep(0.5)
    metrics = _metrics(worker)
    assert metrics[("tripwire_events_dead_lettered_total", (("reason", "too_large"),))] == len(bad)
    assert metrics[("tripwire_events_dead_lettered_total", (("reason", "not_json"),))] == 1
    assert not any(name == "tripwire_batch_failures_total" for name, _ in metrics)
    assert _lag(worker, cluster.settings.topic_events) == 0
    assert worker.process.poll() is None


def _readyz(worker: Worker) -> dict[str, Any]:
    state: dict[str, Any] = httpx.get(
        f"http://127.0.0.1:{worker.web_port}/readyz", timeout=5
    ).json()
    return state


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[Cluster, FaultProxy]]:
    """A broker of its own, every client's traffic through a proxy that can refuse writes."""
    with proxied_cluster(tmp_path) as world:
        yield world


def test_a_dead_letter_topic_that_cannot_be_written_stalls_its_partition_uncommitted(
    proxied: tuple[Cluster, FaultProxy],
) -> None:
    cluster, proxy = proxied
    dlq = cluster.settings.topic_events_dlq
    cluster.publish(parse_automations([AUTOMATION]))
    worker = cluster.start_worker("w1", {"TRIPWIRE_PRODUCER_TIMEOUT": "2"})
    wait_worker_ready(worker)
    proxy.refuse = dlq.encode()
    before = [_failed(n) for n in range(3)]
    after = [_failed(n) for n in range(3, 6)]
    cluster.produce((KEY, raw) for raw in [*before, b"not json", *after])

    deadline = time.monotonic() + 60
    while not _readyz(worker)["checks"]["stalled"] and time.monotonic() < deadline:
        time.sleep(0.5)
    state = _readyz(worker)
    assert not state["ready"], state
    route = state["checks"]["stalled"]["route"]
    assert "could not be written to the dead-letter topic" in route, state
    events = cluster.settings.topic_events
    stalled = [
        dict(labels)
        for (name, labels), value in _metrics(worker).items()
        if name == "tripwire_stalled_partitions" and value == 1
    ]
    assert any(labels["topic"] == events for labels in stalled), stalled
    time.sleep(5)  # commit intervals pass: nothing may be committed past the bad record
    assert _lag(worker, events) >= 4
    assert "will be read again" in worker.log_text()
    assert proxy.refused > 0

    # Once the topic can be written, the same worker dead-letters the record, evaluates
    # every event after it, and is ready again.
    proxy.refuse = None
    firings = cluster.firings(lambda recs: len({r["id"] for r in recs}) >= 6, 90, 2)
    fired = {f["triggering_event"]["resource"]["prefect.resource.id"] for f in firings}
    assert fired == {f"prefect.flow-run.{n}" for n in range(6)}
    dead = cluster.read(dlq, lambda recs: len(recs) >= 1, 60, 1)
    # At least once: a copy the proxy held back while refusing may still reach the broker
    # beside the one sent after the rewind (seen once in a full run); every copy is of the
    # one bad record.
    assert {r.value for r in dead} == {b"not json"}
    assert len({dict(r.headers)["tripwire.offset"] for r in dead}) == 1
    deadline = time.monotonic() + 30
    while not _readyz(worker)["ready"] and time.monotonic() < deadline:
        time.sleep(0.5)
    assert _readyz(worker)["ready"], _readyz(worker)
    assert _lag(worker, events) == 0
