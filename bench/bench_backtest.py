"""`tripwire backtest --from-topic` speed and memory on the embedded broker.

    .venv/bin/python bench/bench_backtest.py [--sizes 20000,100000,200000,400000] [--automations 1000]
                                             [--quick] [--write-docs] [--json PATH]

For each size, the same seeded workload as the core benchmark (bench/workload.py, seed
7, 1,000 automations in their own universe) is produced to a fresh events topic of 4
partitions on an embedded broker (Tansu), keyed by resource id, and `tripwire backtest
--automations FILE --from-topic --json` runs once as a child process, its stdout to
/dev/null. Timed: the whole command, from start to exit (start-up, the automations,
reading every partition, the merge, the engine, the firings). Reported: events/s, the
events' own time span over that wall time (how many times faster than real time), and
the child's peak RSS (its own `VmHWM`, see `_PeakRss`), whose sizes show whether memory grows with the
number of events read. Target: >= 100x real time at 1,000 automations.

`--quick` (sizes 2,000 and 5,000, 100 automations) checks the harness; it writes no docs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import command, loadavg, machine_lines, write_section
from workload import Universe, default_deployments, generate_automations, generate_events

from service.config import Settings
from service.messaging.broker import EmbeddedBroker, free_port, wait_ready
from service.messaging.topics import ensure_topics

ROOT = Path(__file__).resolve().parent.parent
TRIPWIRE = Path(sys.executable).with_name("tripwire")
SEED = 7
PARTITIONS = 4
TARGET_REAL_TIME = 100.0


async def _produce(bootstrap: str, topic: str, events: list[dict[str, Any]]) -> None:
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all")
    await producer.start()
    try:
        pending = []
        for event in events:
            key = str(event["resource"]["prefect.resource.id"]).encode()
            pending.append(await producer.send(topic, orjson.dumps(event), key=key))
            if len(pending) >= 5000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


def _settings(bootstrap: str, prefix: str, data: Path) -> Settings:
    return Settings(
        kafka_bootstrap=bootstrap,
        partitions=PARTITIONS,
        topic_events=f"{prefix}.events",
        topic_events_dlq=f"{prefix}.events.dlq",
        topic_matches=f"{prefix}.matches",
        topic_child_firings=f"{prefix}.child-firings",
        topic_firings=f"{prefix}.firings",
        topic_automations=f"{prefix}.automations",
        data_dir=data,
    )


class _PeakRss(threading.Thread):
    """The child's own peak RSS: its `VmHWM`, read from /proc until its output ends.

    Not `ru_maxrss` from `wait4`: Linux folds the spawning process's high-water RSS into
    the child's at `exec` (the child starts as a copy, or a vfork, of this process), so
    it reported this harness's memory, which holds every event it produced and so grew
    with the size. `VmHWM` is the high water of the child's own address space, which
    starts empty at `exec`.
    """

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.path = Path(f"/proc/{pid}/status")
        self.stop = threading.Event()
        self.peak_kib = 0
        self.samples: list[int] = []  # VmRSS, KiB, every 50 ms

    def run(self) -> None:
        while True:
            try:
                status = self.path.read_text()
            except OSError:
                return  # gone
            for line in status.splitlines():
                if line.startswith("VmHWM:"):
                    self.peak_kib = max(self.peak_kib, int(line.split()[1]))
                elif line.startswith("VmRSS:"):
                    self.samples.append(int(line.split()[1]))
            if self.stop.wait(0.05):
                return

    def steady_kib(self) -> float:
        """The median RSS over the run's second half: the level, without its spikes."""
        half = self.samples[len(self.samples) // 2 :]
        return float(statistics.median(half)) if half else 0.0


def _span_seconds(events: list[dict[str, Any]]) -> float:
    times = [datetime.fromisoformat(e["occurred"].replace("Z", "+00:00")) for e in events]
    return (max(times) - min(times)).total_seconds()


def bench_size(
    bootstrap: str, size: int, automations_file: Path, universe: Universe, work: Path
) -> dict[str, Any]:
    events = generate_events(universe, size)
    settings = _settings(bootstrap, f"bt{size}", work / f"data-{size}")
    asyncio.run(ensure_topics(settings))
    asyncio.run(_produce(bootstrap, settings.topic_events, events))
    env = {
        **os.environ,
        "TRIPWIRE_KAFKA_BOOTSTRAP": bootstrap,
        "TRIPWIRE_TOPIC_EVENTS": settings.topic_events,
        "TRIPWIRE_TICK_INTERVAL": "5",
    }
    argv = [str(TRIPWIRE), "backtest", "--automations", str(automations_file)]
    argv += ["--from-topic", "--json"]
    stderr = work / f"backtest-{size}.err"
    started = time.perf_counter()
    with stderr.open("wb") as err:
        child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=err)
        watch = _PeakRss(child.pid)
        watch.start()
        assert child.stdout is not None
        firings = sum(1 for _ in child.stdout)
        watch.stop.set()
        watch.join()
        _, status, _ = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        msg = f"backtest of {size} events failed: {stderr.read_text()}"
        raise SystemExit(msg)
    span = _span_seconds(events)
    return {
        "events": size,
        "span_s": span,
        "seconds": seconds,
        "events_per_s": size / seconds,
        "real_time": span / seconds,
        "peak_rss_mib": watch.peak_kib / 1024,
        "steady_rss_mib": watch.steady_kib() / 1024,
        "firings": firings,
        "summary": stderr.read_text().strip().splitlines(),
    }


def _flatness(rows: list[dict[str, Any]]) -> str:
    """How far peak RSS moves from 100,000 events on, when its 30-minute state is full."""
    full = [r for r in rows if r["events"] >= 100_000]
    if len(full) < 2:
        return ""
    peaks = [r["peak_rss_mib"] for r in full]
    levels = [r["steady_rss_mib"] for r in full]
    spread, level_spread = max(peaks) - min(peaks), max(levels) - min(levels)
    return (
        f"From {full[0]['events']:,} to {full[-1]['events']:,} events "
        f"({full[-1]['events'] / full[0]['events']:.0f}x as many) the peak moves by "
        f"{spread:.0f} MiB ({spread / min(peaks):.0%}) and the level by {level_spread:.0f} MiB "
        f"({level_spread / min(levels):.0%}); from run to run the peak of one size varies "
        "by about 10 MiB (transient spikes: sampled, `VmRSS` is back at its level within "
        "seconds)."
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default="20000,100000,200000,400000", help="event counts, comma-separated"
    )
    parser.add_argument("--automations", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="2,000 and 5,000 events; no docs")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    args = parser.parse_args(argv)
    if args.quick and args.write_docs:
        parser.error("--quick figures do not go into the docs")
    sizes = [2000, 5000] if args.quick else [int(s) for s in args.sizes.split(",")]
    count = 100 if args.quick else args.automations
    universe = Universe.build(SEED, default_deployments(count))
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        work = Path(tmp)
        automations_file = work / "automations.json"
        automations_file.write_bytes(orjson.dumps(generate_automations(universe, count)))
        broker = EmbeddedBroker("127.0.0.1", free_port(), work / "tansu.log")
        broker.start()
        try:
            asyncio.run(wait_ready(broker.bootstrap))
            for size in sizes:
                row = bench_size(broker.bootstrap, size, automations_file, universe, work)
                print(
                    f"{size:,} events ({row['span_s']:,.0f} s of event time): "
                    f"{row['seconds']:.1f} s, {row['events_per_s']:,.0f} events/s, "
                    f"{row['real_time']:,.0f}x real time, peak RSS {row['peak_rss_mib']:.0f} MiB "
                    f"(second-half median {row['steady_rss_mib']:.0f} MiB), "
                    f"{row['firings']:,} firings",
                    flush=True,
                )
                rows.append(row)
        finally:
            broker.stop()
    if args.json:
        args.json.write_bytes(orjson.dumps({"automations": count, "rows": rows}))
    slowest = min(row["real_time"] for row in rows)
    verdict = "met" if slowest >= TARGET_REAL_TIME else "MISSED"
    if args.write_docs:
        lines = [
            "## Backtest over the events topic (`bench/bench_backtest.py`)",
            "",
            *machine_lines(),
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, load average at "
            f"the end {loadavg()} (other work on the machine adds noise)",
            f"- Command: `{command()}` (`make bench-backtest`)",
            "",
            f"Workload: `bench/workload.py --seed {SEED}`, {count:,} automations in their own "
            f"universe ({default_deployments(count):,} deployments), produced to a topic of "
            f"{PARTITIONS} partitions on the embedded broker keyed by resource id. One run of "
            "`tripwire backtest --automations FILE --from-topic --json` per size, timed from "
            "start to exit as a child process (start-up and loading the automations "
            "included); peak RSS is the child's own high-water mark (`VmHWM`, read from "
            "/proc while it runs), and the RSS level the median of its `VmRSS` every 50 ms "
            "over the run's second half (the level without the transient spikes).",
            "",
            "| events | event time | wall time | events/s | x real time | peak RSS "
            "| RSS level | firings |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            *(
                f"| {r['events']:,} | {r['span_s']:,.0f} s | {r['seconds']:.1f} s | "
                f"{r['events_per_s']:,.0f} | {r['real_time']:,.0f}x | "
                f"{r['peak_rss_mib']:.0f} MiB | {r['steady_rss_mib']:.0f} MiB | {r['firings']:,} |"
                for r in rows
            ),
            "",
            f"- Target >= {TARGET_REAL_TIME:.0f}x real time at {count:,} automations: "
            f"**{verdict}**, slowest {slowest:,.0f}x.",
            "- Memory: peak RSS "
            + ", ".join(f"{r['peak_rss_mib']:.0f} MiB at {r['events']:,} events" for r in rows)
            + f". {_flatness(rows)} Below 100,000 events it rises while the engine's "
            "time-bounded state fills (the 30-minute windows of seen ids and held events: "
            "20,000 events span only 10 minutes of event time). Earlier figures (123, 266, 485 MiB) grew with the size because they were "
            "the child's `ru_maxrss`, into which Linux folds the spawning harness's own "
            "high water at `exec`, and the harness held every event it produced; what "
            "remained, a level creeping by 15 to 19 MiB from 100,000 to 400,000 events, was "
            "glibc's dynamic mmap threshold letting the Fetch response buffers fragment "
            "the heap, gone since the backtest pins it (docs/backtest.md, Memory).",
        ]
        write_section("bench-backtest", "\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
