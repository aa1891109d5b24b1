"""A real broker, real worker processes and Kafka clients for integration tests."""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import httpx
import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from service.config import Settings
from service.embedded import die_with_parent
from service.messaging.automations import publish_automations
from service.messaging.broker import free_port
from service.messaging.compat import fetch_highwaters
from service.messaging.topics import ensure_topics
from service.models.automations import Automation

TRIPWIRE = Path(sys.executable).with_name("tripwire")

# Every process a test starts, for the last resort at interpreter exit.
_STARTED: list[subprocess.Popen[bytes]] = []


def spawn(command: list[str], **options: Any) -> subprocess.Popen[bytes]:
    """Popen that cannot outlive the test run: killed when pytest ends, however it ends.

    Its own process group (a test's Ctrl-C reaches pytest alone, and `kill_group`
    reaches the processes it started); SIGKILL when pytest dies, even by SIGKILL
    (Linux's parent-death signal); and killed at interpreter exit elsewhere.
    """
    process: subprocess.Popen[bytes] = subprocess.Popen(  # test commands
        command,
        start_new_session=True,
        # preexec_fn is unsafe only next to threads that hold locks; tests start none then.
        preexec_fn=die_with_parent(signal.SIGKILL),
        **options,
    )
    _STARTED.append(process)
    return process


def kill_group(process: subprocess.Popen[bytes], timeout: float = 30) -> None:
    """SIGKILL the process and everything in its process group; reap it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        # Not a group leader (started without `spawn`), or gone: the process alone.
        with contextlib.suppress(ProcessLookupError):
            process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)


@atexit.register
def _kill_leftovers() -> None:
    for process in _STARTED:
        if process.returncode is None:
            kill_group(process, 5)


@dataclass
class Worker:
    """One `tripwire worker` process."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    log_file: IO[bytes]
    web_port: int = 0

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout)
        finally:
            self.log_file.close()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class Cluster:
    """One test's isolated world on the shared broker: its own topics and group."""

    bootstrap: str
    root: Path
    partitions: int = 4
    tick_interval: float = 1.0
    emit_state_events: bool = False
    max_event_bytes: int = 100_000
    prefix: str = field(default_factory=lambda: f"t{uuid.uuid4().hex[:10]}")
    workers: list[Worker] = field(default_factory=list)

    @property
    def settings(self) -> Settings:
        p = self.prefix
        return Settings(
            kafka_bootstrap=self.bootstrap,
            partitions=self.partitions,
            app_id=f"{p}-app",
            topic_events=f"{p}.events",
            topic_events_dlq=f"{p}.events.dlq",
            topic_matches=f"{p}.matches",
            topic_child_firings=f"{p}.child-firings",
            topic_firings=f"{p}.firings",
            topic_automations=f"{p}.automations",
            data_dir=self.root / "data",
            max_event_bytes=self.max_event_bytes,
        )

    def env(self, name: str) -> dict[str, str]:
        s = self.settings
        values = {
            "TRIPWIRE_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
            "TRIPWIRE_PARTITIONS": str(s.partitions),
            "TRIPWIRE_APP_ID": s.app_id,
            "TRIPWIRE_TOPIC_EVENTS": s.topic_events,
            "TRIPWIRE_TOPIC_EVENTS_DLQ": s.topic_events_dlq,
            "TRIPWIRE_TOPIC_MATCHES": s.topic_matches,
            "TRIPWIRE_TOPIC_CHILD_FIRINGS": s.topic_child_firings,
            "TRIPWIRE_TOPIC_FIRINGS": s.topic_firings,
            "TRIPWIRE_TOPIC_AUTOMATIONS": s.topic_automations,
            "TRIPWIRE_DATA_DIR": str(self.root / f"data-{name}"),
            "TRIPWIRE_STATE_DIR": str(self.root / f"state-{name}"),
            "TRIPWIRE_TICK_INTERVAL": str(self.tick_interval),
            "TRIPWIRE_MAX_EVENT_BYTES": str(self.max_event_bytes),
            "TRIPWIRE_WORKER_WEB_PORT": str(free_port()),
            "TRIPWIRE_EMIT_STATE_EVENTS": "true" if self.emit_state_events else "false",
            # Never a default port: `make run` may hold them while the tests run. A test
            # that needs the API or a web port sets its own; port 9 refuses.
            "TRIPWIRE_API_PORT": str(free_port()),
            "TRIPWIRE_API_URL": "http://127.0.0.1:9/api",
            "TRIPWIRE_WORKER_URLS": "http://127.0.0.1:9",
            "TRIPWIRE_ACTIONS_WEB_PORT": "0",
        }
        return {**os.environ, **values}

    def mirror(self, name: str) -> Path:
        return self.root / f"data-{name}" / "automations.json"

    def start_worker(self, name: str, extra_env: dict[str, str] | None = None) -> Worker:
        log = self.root / f"{name}.log"
        log_file = log.open("ab")
        env = {**self.env(name), **(extra_env or {})}
        process = spawn(
            [str(TRIPWIRE), "worker"], env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
        worker = Worker(name, process, log, log_file, int(env["TRIPWIRE_WORKER_WEB_PORT"]))
        self.workers.append(worker)
        return worker

    def stop_all(self) -> None:
        for worker in self.workers:
            # The group: the action worker's template renderers too.
            kill_group(worker.process)
            worker.log_file.close()

    # -- Kafka I/O ------------------------------------------------------------------
    def create_topics(self) -> None:
        asyncio.run(ensure_topics(self.settings))

    def publish(self, automations: Iterable[Automation], deleted: Iterable[str] = ()) -> None:
        asyncio.run(publish_automations(self.settings, list(automations), list(deleted)))

    def wait_loaded(self, name: str, ids: set[str], timeout: float = 60) -> None:
        """Wait until the worker's automations mirror holds exactly these ids."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                loaded = {a["id"] for a in json.loads(self.mirror(name).read_text())}
            except (OSError, ValueError):
                loaded = set()
            if loaded == ids:
                return
            time.sleep(0.1)
        msg = f"worker {name} did not load {sorted(ids)}"
        raise AssertionError(msg)

    def produce(
        self, records: Iterable[tuple[bytes | None, bytes]], topic: str | None = None
    ) -> None:
        asyncio.run(self._produce(list(records), topic or self.settings.topic_events))

    async def _produce(self, records: list[tuple[bytes | None, bytes]], topic: str) -> None:
        # Room for records past every limit of the worker's (the poison-record tests).
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap, linger_ms=5, max_request_size=64 * 1024 * 1024
        )
        await producer.start()
        try:
            futures = [await producer.send(topic, value, key=key) for key, value in records]
            for future in futures:
                await future
        finally:
            await producer.stop()

    def produce_events(self, events: Iterable[dict[str, Any]], key: bytes | None = None) -> None:
        """Produce events, keyed by resource id unless one key is given (one order)."""
        self.produce(
            (key or e["resource"]["prefect.resource.id"].encode(), orjson.dumps(e)) for e in events
        )

    def read(
        self,
        topic: str,
        done: Callable[[list[Any]], bool],
        timeout: float = 60,
        settle: float = 0.0,
        since: dict[int, int] | None = None,
    ) -> list[Any]:
        """Read a topic until `done(records)`, then `settle` s more.

        From the start, or from the per-partition offsets `since` (see `marks`): records
        of several partitions interleave in no fixed order, so "the records after the
        first n" of two reads need not be the same records.
        """
        return asyncio.run(self._read(topic, done, timeout, settle, since))

    def marks(self, topic: str) -> dict[int, int]:
        """The topic's end offset per partition now: `read(..., since=...)` starts there."""
        return asyncio.run(self._marks(topic))

    async def _marks(self, topic: str) -> dict[int, int]:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            # Not end_offsets(): Tansu under-reports it (broker notes, gap 1).
            ends = await fetch_highwaters(
                consumer, [TopicPartition(topic, p) for p in range(self.partitions)]
            )
        finally:
            await consumer.stop()
        return {tp.partition: offset for tp, offset in ends.items()}

    async def _read(
        self,
        topic: str,
        done: Callable[[list[Any]], bool],
        limit: float,
        settle: float,
        since: dict[int, int] | None,
    ) -> list[Any]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, auto_offset_reset="earliest"
        )
        await consumer.start()
        records: list[Any] = []
        try:
            tps = [TopicPartition(topic, p) for p in range(self.partitions)]
            consumer.assign(tps)
            if since is None:
                await consumer.seek_to_beginning(*tps)
            else:
                for tp in tps:
                    consumer.seek(tp, since[tp.partition])
            deadline = time.monotonic() + limit
            settled_at: float | None = None
            while time.monotonic() < deadline:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    records.extend(batch)
                if settled_at is None and done(records):
                    settled_at = time.monotonic() + settle
                if settled_at is not None and time.monotonic() >= settled_at:
                    break
        finally:
            await consumer.stop()
        return records

    def firings(
        self,
        done: Callable[[list[dict[str, Any]]], bool],
        timeout: float = 60,
        settle: float = 0.0,
        since: dict[int, int] | None = None,
    ) -> list[dict[str, Any]]:
        """Firing records, decoded, in the order read (past `since` if given)."""
        records = self.read(
            self.settings.topic_firings,
            lambda recs: done([orjson.loads(r.value) for r in recs]),
            timeout,
            settle,
            since,
        )
        return [orjson.loads(r.value) for r in records]


def changelog_topic(settings: Settings, table: str = "buckets") -> str:
    """The Faust changelog topic of one of the worker's tables."""
    return f"{settings.app_id}-{table}-changelog"


def flow_run_event(
    run: str, state: str, occurred: datetime, *, number: int, deployment: str = "d1"
) -> dict[str, Any]:
    """A Prefect flow-run state event with the usual related resources."""
    return {
        "id": str(uuid.UUID(int=number)),
        "occurred": occurred.isoformat(),
        "event": f"prefect.flow-run.{state}",
        "resource": {
            "prefect.resource.id": f"prefect.flow-run.{run}",
            "prefect.resource.name": run,
            "prefect.state-name": state,
        },
        "related": [
            {
                "prefect.resource.id": f"prefect.deployment.{deployment}",
                "prefect.resource.role": "deployment",
            },
        ],
        "payload": {},
    }


def failures_per_run(name: str, threshold: int, within: int) -> dict[str, Any]:
    """An automation (Prefect JSON) that fires on `threshold` Failed events of one flow run."""
    return {
        "name": name,
        "trigger": {
            "type": "event",
            "posture": "Reactive",
            "expect": ["prefect.flow-run.Failed"],
            "match": {"prefect.resource.id": "prefect.flow-run.*"},
            "for_each": ["prefect.resource.id"],
            "threshold": threshold,
            "within": within,
        },
        "actions": [{"type": "do-nothing"}],
    }


def stuck_runs(name: str, within: int) -> dict[str, Any]:
    """An automation (Prefect JSON) that fires for a run not Completed `within` s of Running."""
    return {
        "name": name,
        "trigger": {
            "type": "event",
            "posture": "Proactive",
            "after": ["prefect.flow-run.Running"],
            "expect": ["prefect.flow-run.Completed"],
            "for_each": ["prefect.resource.id"],
            "threshold": 1,
            "within": within,
        },
        "actions": [{"type": "do-nothing"}],
    }


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(web_port: int) -> Samples:
    """A process's /metrics samples: (name, sorted labels) -> value."""
    response = httpx.get(f"http://127.0.0.1:{web_port}/metrics", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def until(check: Callable[[], Any], timeout: float = 90, what: str = "") -> Any:
    """Poll `check` every 0.2 s until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    msg = f"timed out waiting for {what or check}"
    raise AssertionError(msg)
