"""Open buckets: what they cost to keep, and what a tick costs when none of them is due.

    .venv/bin/python bench/bench_state.py [--buckets 1000000] [--sample 100000]
                                          [--write-docs] [--quick]

* Tick with N open proactive buckets, none due: 1,000 proactive "stuck run"
  automations (after `prefect.flow-run.Running`, expect a terminal state, for_each
  run, within 1 h) over `Engine`; N buckets spread evenly over their triggers, each
  ending 10-60 minutes after the tick (so none is due and none expires), then
  `Engine.tick(wall)` (lost followers, then `service/core/steps.py:tick_store`, the
  worker's tick of one store: proactive evaluation, metric triggers, held-event sweep,
  expired-bucket sweep) timed over `--ticks` ticks, median. The same with 0 buckets is
  the baseline measured in the same run. The memory store replay runs on, and the
  worker's `DocumentStore` (`service/state/documents.py`). The buckets' `last_event`s
  are 1,000 shared records, so that 1,000,000 buckets fit the machine; that does not
  change the tick path.
* Memory per open bucket: `--sample` buckets, each with its own `last_event` (a
  realistic `prefect.flow-run.Running` event, distinct ids), put into a fresh memory
  store; growth of this process's resident set (VmRSS) per bucket.
* The worker's table with N such buckets: `DocumentStore`s of 10,000 buckets each are
  flushed into one RocksDB opened with Faust's own options (as the worker's `buckets`
  table is), one put per document as `topologies/tables.py` writes them; the write
  rate, the size on disk after a full manual compaction, and the rate at which a new
  store loads `--sample` documents back (what a restart or a handover does).
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from faust.stores.rocksdb import RocksDBOptions
from report import command, loadavg, machine_lines, write_section

from service.core.engine import Engine, replay_state_event_id
from service.core.records import EventRecord
from service.core.store import Bucket, StateStore
from service.core.times import SECOND
from service.models.automations import parse_automations
from service.progress import Progress
from service.state.documents import DocumentStore
from service.state.memory import MemoryStateStore

ROOT = Path(__file__).resolve().parent.parent
SECTION = "bench-state"
TARGET_TICK_MS = 10.0
TRIGGERS = 1000
NS = uuid.uuid5(uuid.NAMESPACE_URL, "https://tripwire.invalid/bench-state")
NOW = 1_767_225_600 * SECOND  # 2026-01-01T00:00:00Z
# Buckets per DocumentStore flushed into the table at once (a batch's worth, or more).
CHUNK = 10_000
TERMINAL = [f"prefect.flow-run.{s}" for s in ("Completed", "Failed", "Crashed", "Cancelled")]


def automations(count: int) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid5(NS, f"automation/{i}")),
            "name": f"stuck-run-{i}",
            "enabled": True,
            "trigger": {
                "type": "event",
                "id": str(uuid.uuid5(NS, f"trigger/{i}")),
                "match": {"prefect.resource.id": "prefect.flow-run.*"},
                "match_related": {
                    "prefect.resource.role": "deployment",
                    "prefect.resource.id": f"prefect.deployment.{uuid.uuid5(NS, f'dep/{i}')}",
                },
                "after": ["prefect.flow-run.Running"],
                "expect": TERMINAL,
                "for_each": ["prefect.resource.id"],
                "posture": "Proactive",
                "threshold": 1,
                "within": 3600,
            },
            "actions": [{"type": "do-nothing"}],
        }
        for i in range(count)
    ]


def running_event(number: int, occurred: int) -> EventRecord:
    """A realistic Running event of flow run `number` (ids distinct per number)."""
    run = str(uuid.uuid5(NS, f"run/{number}"))
    stamp = datetime.fromtimestamp(occurred / SECOND, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    data = {
        "id": str(uuid.uuid5(NS, f"event/{number}")),
        "occurred": stamp,
        "received": stamp,
        "event": "prefect.flow-run.Running",
        "resource": {
            "prefect.resource.id": f"prefect.flow-run.{run}",
            "prefect.resource.name": f"brave-otter-{number}",
            "prefect.run-count": "1",
            "prefect.state-message": "",
            "prefect.state-name": "Running",
            "prefect.state-timestamp": stamp,
            "prefect.state-type": "RUNNING",
        },
        "related": [
            {
                "prefect.resource.id": f"prefect.flow.{uuid.uuid5(NS, f'flow/{number % 97}')}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "sync-orders-3",
            },
            {
                "prefect.resource.id": f"prefect.deployment.{uuid.uuid5(NS, f'dep/{number % 1000}')}",
                "prefect.resource.role": "deployment",
                "prefect.resource.name": "sync-orders-3-prod",
            },
            {
                "prefect.resource.id": f"prefect.work-pool.{uuid.uuid5(NS, 'pool')}",
                "prefect.resource.role": "work-pool",
                "prefect.resource.name": "prod-kubernetes-pool-0",
                "prefect.work-pool.type": "kubernetes",
            },
            {"prefect.resource.id": "prefect.tag.prod", "prefect.resource.role": "tag"},
        ],
        "payload": {
            "intended": {"from": "PENDING", "to": "RUNNING"},
            "initial_state": {"type": "PENDING", "name": "Pending"},
            "validated_state": {"type": "RUNNING", "name": "Running"},
        },
    }
    return EventRecord.from_json(data, occurred, occurred)


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def fill(
    store: StateStore,
    trigger_ids: list[str],
    count: int,
    *,
    shared: list[EventRecord] | None,
    label: str,
    show: bool,
) -> None:
    """`count` open buckets, round-robin over the triggers, ending 10-60 min after NOW."""
    with Progress(count, f"buckets ({label})", enabled=show) as bar:
        for number in range(count):
            trigger_id = trigger_ids[number % len(trigger_ids)]
            end = NOW + (600 + number % 3000) * SECOND
            start = end - 3600 * SECOND
            last = shared[number % len(shared)] if shared else running_event(number, start)
            key = (f"prefect.flow-run.{uuid.uuid5(NS, f'run/{number}')}",)
            store.put_bucket(trigger_id, key, Bucket(start, end, 0, last))
            if number % 1000 == 999:
                bar.advance(1000)
        bar.advance(count - bar.done)


def time_ticks(engine: Engine, ticks: int) -> float:
    """Median ms of `ticks` ticks at NOW, NOW + 1 s, ... (none due)."""
    samples = []
    for number in range(ticks):
        gc.collect()
        began = time.perf_counter()
        fired = engine.tick(NOW + number * SECOND)
        samples.append((time.perf_counter() - began) * 1e3)
        if fired:
            msg = f"a tick fired {len(fired)} firings; no bucket should be due"
            raise SystemExit(msg)
    return statistics.median(samples)


@dataclass(slots=True)
class Figures:
    buckets: int
    sample: int
    tick_ms: dict[str, tuple[float, float]]  # store -> (0 buckets, N buckets)
    memory_per_bucket: float
    table_rss: int
    table_disk: int
    table_fill_s: float
    load_per_s: float
    encoded: int
    memory_shared_rss: int


def disk_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def tick_figures(
    store: StateStore, parsed: Any, buckets: int, ticks: int, shared: list[EventRecord], show: bool
) -> tuple[float, float, int]:
    """(ms/tick with 0 buckets, with `buckets`, RSS growth of filling them)."""
    engine = Engine(parsed, store, state_event_id=replay_state_event_id)
    ids = [t.id for t in engine.registry.proactive]
    base = time_ticks(engine, ticks)
    gc.collect()
    before = rss_bytes()
    fill(store, ids, buckets, shared=shared, label=type(store).__name__, show=show)
    gc.collect()
    grown = rss_bytes() - before
    return base, time_ticks(engine, ticks), grown


def measure(buckets: int, sample: int, ticks: int, out: Path, show: bool) -> Figures:
    documents = automations(TRIGGERS)
    parsed = parse_automations(documents)
    shared = [running_event(n, NOW - 3000 * SECOND) for n in range(1000)]
    ids = [t.id for t in Engine(parsed, MemoryStateStore()).registry.proactive]
    tick_ms: dict[str, tuple[float, float]] = {}

    # The memory store replay runs on, then the worker's DocumentStore: baseline, N buckets.
    base, full, shared_rss = tick_figures(MemoryStateStore(), parsed, buckets, ticks, shared, show)
    tick_ms["memory"] = (base, full)
    say(f"memory store: tick {base:.3f} ms with 0 buckets, {full:.3f} ms with {buckets:,}")
    gc.collect()
    base, full, _ = tick_figures(DocumentStore(), parsed, buckets, ticks, shared, show)
    tick_ms["documents"] = (base, full)
    say(f"DocumentStore: tick {base:.3f} ms with 0 buckets, {full:.3f} ms with {buckets:,}")
    gc.collect()

    # Memory per bucket, distinct last events.
    store = MemoryStateStore()
    gc.collect()
    before = rss_bytes()
    fill(store, ids, sample, shared=None, label="memory per bucket", show=show)
    gc.collect()
    per_bucket = (rss_bytes() - before) / sample
    say(f"memory store: {per_bucket:,.0f} bytes of RSS per open bucket ({sample:,} buckets)")
    del store
    gc.collect()

    # The worker's table: N buckets with distinct last events, saved as documents.
    path = out / "table"
    if path.exists():
        shutil.rmtree(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    db = RocksDBOptions().open(path)
    try:
        gc.collect()
        before = rss_bytes()
        began = time.perf_counter()
        with Progress(buckets, "buckets (table)", enabled=show) as bar:
            for first in range(0, buckets, CHUNK):
                chunk = DocumentStore()
                count = min(CHUNK, buckets - first)
                for number in range(first, first + count):
                    trigger_id = ids[number % len(ids)]
                    end = NOW + (600 + number % 3000) * SECOND
                    last = running_event(number, end - 3600 * SECOND)
                    key = (f"prefect.flow-run.{uuid.uuid5(NS, f'run/{number}')}",)
                    chunk.put_bucket(trigger_id, key, Bucket(end - 3600 * SECOND, end, 0, last))
                for doc_key, value in chunk.flush():
                    db.put(doc_key, value)
                bar.advance(count)
        fill_s = time.perf_counter() - began
        rss = rss_bytes() - before
        began = time.perf_counter()
        loaded = DocumentStore().load(islice(db.items(), sample))
        load_per_s = loaded / (time.perf_counter() - began)
        say(f"table: {buckets / fill_s:,.0f} buckets/s written, {load_per_s:,.0f} loaded/s")
        db.compact_range(None, None)  # a full compaction, for the size
        db.flush()
    finally:
        db.close()
    disk = disk_size(path)
    say(f"table: {disk / buckets:,.0f} bytes on disk per bucket, RSS +{rss / 2**20:,.0f} MiB")
    shutil.rmtree(path, ignore_errors=True)
    one = DocumentStore()
    one.put_bucket(ids[0], ("prefect.flow-run.x",), Bucket(NOW, NOW, 0, running_event(0, NOW)))
    encoded = sum(len(key) + len(value or b"") for key, value in one.flush())
    return Figures(
        buckets, sample, tick_ms, per_bucket, rss, disk, fill_s, load_per_s, encoded, shared_rss
    )


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def report(f: Figures, ticks: int) -> list[str]:
    mib = 2**20
    lines = [
        f"{TRIGGERS:,} proactive stuck-run triggers (after Running, expect a terminal state, "
        f"for_each run, within 1 h); {f.buckets:,} open buckets spread over them, none due; "
        f"median of {ticks} ticks.",
        "",
        f"| store | ms/tick, 0 open buckets | ms/tick, {f.buckets:,} open buckets | ratio |",
        "|---|---:|---:|---:|",
    ]
    for name, (base, full) in f.tick_ms.items():
        label = {
            "memory": "memory (`MemoryStateStore`, replay)",
            "documents": "documents (`DocumentStore`, the worker)",
        }[name]
        lines.append(f"| {label} | {base:.3f} | {full:.3f} | {full / base:.2f}x |")
    lines.append("")
    for name, (_, full) in f.tick_ms.items():
        ok = "met" if full <= TARGET_TICK_MS else "MISSED"
        lines.append(
            f"- Target: a tick with {f.buckets:,} open proactive buckets, none due, <= "
            f"{TARGET_TICK_MS:g} ms ({name}): **{ok}**, measured {full:.3f} ms."
        )
    lines += [
        "",
        "| what | per open bucket | total |",
        "|---|---:|---:|",
        f"| memory store, RSS growth ({f.sample:,} buckets, each with its own `last_event`) "
        f"| {f.memory_per_bucket:,.0f} B | {f.memory_per_bucket * f.buckets / mib:,.0f} MiB "
        f"for {f.buckets:,} (extrapolated) |",
        f"| memory store, RSS growth ({f.buckets:,} buckets sharing 1,000 `last_event`s: the "
        f"bucket, its key and the store's indexes without the event) "
        f"| {f.memory_shared_rss / f.buckets:,.0f} B | {f.memory_shared_rss / mib:,.0f} MiB |",
        f"| the worker's table (RocksDB, Faust's options), on disk after a full compaction "
        f"| {f.table_disk / f.buckets:,.0f} B | {f.table_disk / mib:,.0f} MiB for {f.buckets:,} |",
        f"| the worker's table, RSS growth while writing them | {f.table_rss / f.buckets:,.0f} B "
        f"| {f.table_rss / mib:,.0f} MiB |",
        "",
        f"Saving {f.buckets:,} buckets as documents ({CHUNK:,} per `DocumentStore.flush`, "
        f"one RocksDB put each) took {f.table_fill_s:.1f} s "
        f"({f.buckets / f.table_fill_s:,.0f} buckets/s, including building each event); a "
        f"new store loads them back at {f.load_per_s:,.0f} documents/s ({f.sample:,} "
        f"loaded). A bucket document keeps its `last_event` (the Running event): one is "
        f"{f.encoded:,} bytes of JSON with its key before compression, most of it that event.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--buckets", type=int, default=None, help="default 1000000")
    parser.add_argument("--sample", type=int, default=None, help="default 100000")
    parser.add_argument("--ticks", type=int, default=None, help="default 21")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "state")
    parser.add_argument("--quick", action="store_true", help="20,000 buckets")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    buckets = args.buckets or (20_000 if args.quick else 1_000_000)
    sample = args.sample or (5_000 if args.quick else 100_000)
    ticks = args.ticks or (5 if args.quick else 21)
    figures = measure(buckets, sample, ticks, args.out, sys.stderr.isatty())
    text = "\n".join(report(figures, ticks))
    print(text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "buckets": figures.buckets,
                    "tick_ms": figures.tick_ms,
                    "memory_per_bucket": figures.memory_per_bucket,
                    "table_disk": figures.table_disk,
                    "table_rss": figures.table_rss,
                    "load_per_s": figures.load_per_s,
                }
            )
        )
    if args.write_docs:
        head = [
            *machine_lines("one core used"),
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, load average at "
            f"the end {loadavg()} (the machine was shared with other work)",
            f"- Command: `{command()}`",
            "",
        ]
        write_section(SECTION, "\n".join([*head, text]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
