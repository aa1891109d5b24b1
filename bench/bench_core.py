"""Replay throughput of the trigger core on one CPU core.

    .venv/bin/python bench/bench_core.py [--sizes 10,100,1000,10000,100000] [--events 20000]
                                         [--repeats 3] [--write-docs] [--quick]

For every automation count the same events (bench/workload.py, one seed, one universe
sized for the largest count) are replayed through `Engine` over a `MemoryStateStore`,
exactly as `tripwire replay` does, with a tick every 5 s of event time. Generating,
writing, validating and compiling the automations and reading the events are not
timed. Timed, separately, each the median of `--repeats` runs on a fresh engine:

* engine: `Engine.process(record, wall)` over pre-parsed `EventRecord`s;
* ticks: `Engine.tick(wall)` (proactive evaluation and sweeps), reported per tick and
  folded into a per-event cost;
* parse: `orjson.loads` + `event_record` (replay's decoder) per line, which does not
  depend on the automations, so the whole replay cost per event is visible too.

`--quick` (sizes 10 and 1,000, 2,000 events, one repeat) checks the harness in
seconds; it asserts nothing about timings.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import os
import platform
import pstats
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import command, loadavg
from workload import (
    TICK_STEP_SECONDS,
    Universe,
    default_deployments,
    generate_automations,
    generate_events,
    generate_metric_automations,
    write_automations,
    write_events,
)

from service.core.engine import Engine, replay_state_event_id
from service.core.records import EventRecord
from service.core.times import SECOND, us_to_iso
from service.event_records import event_record
from service.models.automations import Automation
from service.replay import (
    ReplayInput,
    TimedEvent,
    load_automations,
    read_events,
    read_ticks,
    run,
)
from service.state.memory import MemoryStateStore

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs" / "benchmarks.md"
START = "<!-- bench-core:start -->"
END = "<!-- bench-core:end -->"
TARGET_EVENTS_PER_SECOND = 100_000
TARGET_AT = 1000
TARGET_RATIO = 2.0

# (record, wall) pairs to process, then the ticks that follow them.
Segment = tuple[list[tuple[EventRecord, int]], list[int]]


@dataclass(slots=True)
class Result:
    automations: int
    event_triggers: int = 0
    proactive: int = 0
    candidates: float = 0.0
    interested: float = 0.0
    process_s: list[float] = field(default_factory=list)
    tick_s: list[float] = field(default_factory=list)
    firings: int = 0
    replay_firings: int | None = None

    def process_us(self, events: int) -> float:
        return statistics.median(self.process_s) / events * 1e6

    def tick_ms(self, ticks: int) -> float:
        return statistics.median(self.tick_s) / max(ticks, 1) * 1e3

    def total_us(self, events: int) -> float:
        totals = [p + t for p, t in zip(self.process_s, self.tick_s, strict=True)]
        return statistics.median(totals) / events * 1e6


def segments(events: list[TimedEvent], ticks: list[int]) -> list[Segment]:
    """Replay's timeline: a tick runs before the first event with a later `wall`."""
    out: list[Segment] = []
    batch: list[tuple[EventRecord, int]] = []
    pending: list[int] = []
    position = 0
    for timed in events:
        while position < len(ticks) and ticks[position] < timed.wall:
            pending.append(ticks[position])
            position += 1
        if pending:
            out.append((batch, pending))
            batch, pending = [], []
        batch.append((timed.record, timed.wall))
    out.append((batch, ticks[position:]))
    return out


def replay_once(engine: Engine, timeline: list[Segment]) -> tuple[float, float, int]:
    """Seconds in `process`, seconds in `tick`, firings."""
    process, tick, clock = engine.process, engine.tick, time.perf_counter
    in_process = in_tick = 0.0
    fired = 0
    for batch, ticks in timeline:
        started = clock()
        for record, wall in batch:
            out = process(record, wall)
            if out:
                fired += len(out)
        middle = clock()
        for moment in ticks:
            fired += len(tick(moment))
        in_process += middle - started
        in_tick += clock() - middle
    return in_process, in_tick, fired


def new_engine(automations: list[Automation]) -> Engine:
    return Engine(automations, MemoryStateStore(), state_event_id=replay_state_event_id)


def time_parse(lines: list[bytes], repeats: int) -> float:
    """Median seconds to parse, validate and record every line."""
    samples = []
    for _ in range(repeats):
        gc.collect()
        started = time.perf_counter()
        for line in lines:
            event_record(orjson.loads(line), line)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def index_stats(engine: Engine, events: list[TimedEvent]) -> tuple[float, float]:
    """Mean candidate and interested triggers per event."""
    candidates = interested = 0
    for timed in events:
        found = engine.registry.index.candidates(timed.record)
        candidates += len(found)
        interested += sum(1 for t in found if t.covers(timed.record))
    return candidates / len(events), interested / len(events)


def bench_size(
    size: int,
    automations: list[Automation],
    events: list[TimedEvent],
    timeline: list[Segment],
    ticks: list[int],
    repeats: int,
    verify: bool,
) -> Result:
    result = Result(size)
    engine = new_engine(automations)
    triggers = [t for a in engine.automations for t in a.event_triggers()]
    result.event_triggers = len(triggers)
    result.proactive = len(engine.registry.proactive)
    result.candidates, result.interested = index_stats(engine, events)
    fired_counts = set()
    for _ in range(repeats):
        engine = new_engine(automations)
        gc.collect()
        in_process, in_tick, fired = replay_once(engine, timeline)
        result.process_s.append(in_process)
        result.tick_s.append(in_tick)
        fired_counts.add(fired)
        del engine
    if len(fired_counts) != 1:
        msg = f"{size} automations: firings differ between repeats: {sorted(fired_counts)}"
        raise SystemExit(msg)
    result.firings = fired_counts.pop()
    if verify:
        # The same inputs through `service.replay.run`, as `tripwire replay` runs them.
        result.replay_firings = run(ReplayInput(automations, events, ticks), io.StringIO())
        if result.replay_firings != result.firings:
            msg = (
                f"{size} automations: {result.firings} firings, replay says {result.replay_firings}"
            )
            raise SystemExit(msg)
    return result


def profile_size(automations: list[Automation], timeline: list[Segment], top: int) -> None:
    """cProfile one run, `process` and `tick` apart; print both by self and by total time."""
    engine = new_engine(automations)
    process, tick = engine.process, engine.tick
    in_process, in_tick = cProfile.Profile(), cProfile.Profile()
    for batch, ticks in timeline:
        in_process.enable()
        for record, wall in batch:
            process(record, wall)
        in_process.disable()
        in_tick.enable()
        for moment in ticks:
            tick(moment)
        in_tick.disable()
    for title, profiler in (("Engine.process", in_process), ("Engine.tick", in_tick)):
        for order in ("tottime", "cumulative"):
            stream = io.StringIO()
            pstats.Stats(profiler, stream=stream).sort_stats(order).print_stats(top)
            print(f"== {len(automations):,} automations, {title}, by {order}\n{stream.getvalue()}")


# -- report -----------------------------------------------------------------------------
def _rate(us: float) -> str:
    return f"{1e6 / us:,.0f}"


def table(results: list[Result], n_events: int, n_ticks: int, parse_us: float) -> str:
    rows = [
        "| automations | event triggers (proactive) | candidates / interested per event "
        "| engine events/s | engine µs/event | ms/tick | µs/event incl. ticks "
        "| replay events/s (parse + engine + ticks) | firings |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        process_us = r.process_us(n_events)
        total_us = r.total_us(n_events)
        rows.append(
            f"| {r.automations:,} | {r.event_triggers:,} ({r.proactive:,}) "
            f"| {r.candidates:.2f} / {r.interested:.2f} "
            f"| {_rate(process_us)} | {process_us:.2f} | {r.tick_ms(n_ticks):.2f} "
            f"| {total_us:.2f} | {_rate(total_us + parse_us)} | {r.firings:,} |"
        )
    return "\n".join(rows)


def verdicts(results: list[Result], n_events: int) -> list[str]:
    by_size = {r.automations: r for r in results}
    lines = []
    if TARGET_AT in by_size:
        rate = 1e6 / by_size[TARGET_AT].process_us(n_events)
        ok = "met" if rate >= TARGET_EVENTS_PER_SECOND else "MISSED"
        lines.append(
            f"- Target >= {TARGET_EVENTS_PER_SECOND:,} events/s at {TARGET_AT:,} automations "
            f"(engine only): **{ok}**, measured {rate:,.0f} events/s."
        )
    small, large = min(by_size), max(by_size)
    if small != large:
        ratio = by_size[large].process_us(n_events) / by_size[small].process_us(n_events)
        ratio_ticks = by_size[large].total_us(n_events) / by_size[small].total_us(n_events)
        ok = "met" if ratio <= TARGET_RATIO else "MISSED"
        lines.append(
            f"- Target: per-event cost at {large:,} automations within {TARGET_RATIO:g}x of "
            f"the cost at {small:,} (engine only): **{ok}**, measured {ratio:.2f}x "
            f"({ratio_ticks:.2f}x with ticks)."
        )
    return lines


def machine() -> list[str]:
    model = platform.processor() or "unknown"
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if found:
            model = found.group(1).strip()
    except OSError:
        pass
    try:
        cores = subprocess.run(["nproc"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        cores = str(os.cpu_count())
    return [
        f"- CPU: {model}, `nproc` = {cores.strip()} (the benchmark uses one core)",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, "
        f"load average at the end {loadavg()} (other work on the machine adds noise)",
    ]


def write_docs(section: str) -> None:
    block = f"{START}\n{section.rstrip()}\n{END}"
    if DOCS.exists():
        text = DOCS.read_text(encoding="utf-8")
        if START in text and END in text:
            head, _, rest = text.partition(START)
            _, _, tail = rest.partition(END)
            text = f"{head}{block}{tail}"
        else:
            text = f"{text.rstrip()}\n\n{block}\n"
    else:
        text = (
            "# Benchmarks\n\n"
            "Measured figures, rewritten by the benchmark scripts between their markers; "
            "edit the text outside the markers only. Every section names its machine, "
            "date and exact command.\n\n"
            "## Core replay throughput (`bench/bench_core.py`)\n\n"
            "`Engine.process` and `Engine.tick` over a `MemoryStateStore` on one core, "
            "fed as `tripwire replay` feeds them; the workload is `bench/workload.py`.\n\n"
            f"{block}\n"
        )
    DOCS.parent.mkdir(parents=True, exist_ok=True)
    DOCS.write_text(text, encoding="utf-8")


@dataclass(slots=True)
class Measured:
    """One workload's results: every size over the same events."""

    deployments: int
    pools: int
    events: int
    ticks: int
    span_s: float
    parse_us: float
    results: list[Result]

    def describe(self, seed: int, repeats: int) -> str:
        return (
            f"Workload: `bench/workload.py --seed {seed} --deployments {self.deployments}` "
            f"({self.pools:,} work pools), {self.events:,} events ({self.span_s:.0f} s of "
            f"event time, the same events for every size), a tick every {TICK_STEP_SECONDS} s "
            f"({self.ticks} ticks). Median of {repeats} run{'s' if repeats > 1 else ''}."
        )


def measure(
    seed: int,
    deployments: int,
    sizes: list[int],
    n_events: int,
    repeats: int,
    out: Path,
    *,
    verify: bool,
    profile: bool,
    parse: bool = True,
) -> Measured:
    log = sys.stderr
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    universe = Universe.build(seed, deployments)
    events_path = out / "events.jsonl"
    write_events(events_path, generate_events(universe, n_events))
    all_automations = generate_automations(universe, max(sizes))
    events = read_events(events_path, log)
    first, last = events[0].wall, events[-1].wall
    # The same ticks `tripwire replay --ticks <out>/ticks` would run.
    ticks_spec = f"step:{TICK_STEP_SECONDS},from={us_to_iso(first)},until={us_to_iso(last)}"
    (out / "ticks").write_text(ticks_spec + "\n")
    ticks = read_ticks(out / "ticks", events, [])
    timeline = segments(events, ticks)
    span = (last - first) / SECOND
    print(
        f"workload: seed {seed}, {len(events):,} events over {span:.0f} s of event time, "
        f"{len(ticks)} ticks, {deployments:,} deployments, {len(universe.pool_ids):,} pools "
        f"({time.perf_counter() - started:.1f} s to generate) in {out}",
        file=log,
    )
    parse_us = 0.0
    if parse:
        lines = events_path.read_bytes().splitlines()
        parse_s = time_parse(lines, repeats)
        parse_us = parse_s / len(lines) * 1e6
        print(
            f"parse + validate: {len(lines) / parse_s:,.0f} events/s ({parse_us:.2f} µs/event)",
            file=log,
        )
    results = []
    for size in sizes:
        started = time.perf_counter()
        path = out / f"automations-{size}.json"
        write_automations(path, all_automations[:size])
        automations = load_automations(path)
        loaded = time.perf_counter() - started
        result = bench_size(
            size, automations, events, timeline, ticks, repeats, verify=verify or size <= 1000
        )
        results.append(result)
        print(
            f"{size:>7,} automations: {_rate(result.process_us(len(events)))} events/s engine, "
            f"{result.tick_ms(len(ticks)):.2f} ms/tick, {result.firings:,} firings "
            f"(generate + validate {loaded:.1f} s)",
            file=log,
        )
        if profile:
            profile_size(automations, timeline, 30)
        del automations
        gc.collect()
    return Measured(
        deployments, len(universe.pool_ids), len(events), len(ticks), span, parse_us, results
    )


def measure_flat(
    seed: int, deployments: int, sizes: list[int], n_events: int, repeats: int, out: Path
) -> list[Result]:
    """Index flatness: the same 10 automations meet the same events at every size.

    The other automations are generated the same way over a second universe, so they
    pin deployments and work pools that never appear in the events: the work of
    evaluating stays the same, and what grows is only what the index must pass over.
    """
    base_size = min(sizes)
    universe = Universe.build(seed, deployments)
    events_path = out / "events.jsonl"
    if not events_path.exists():
        write_events(events_path, generate_events(universe, n_events))
    events = read_events(events_path, sys.stderr)
    ticks_spec = (
        f"step:{TICK_STEP_SECONDS},from={us_to_iso(events[0].wall)},"
        f"until={us_to_iso(events[-1].wall)}"
    )
    (out / "ticks").write_text(ticks_spec + "\n")
    ticks = read_ticks(out / "ticks", events, [])
    timeline = segments(events, ticks)
    base = generate_automations(universe, base_size)
    elsewhere = Universe.build(seed + 1, deployments)
    others = [
        a
        for a in generate_automations(elsewhere, max(sizes) + max(sizes) // 10)
        if not a["name"].startswith("global")
    ]
    results = []
    for size in sizes:
        path = out / f"flat-{size}.json"
        write_automations(path, base + others[: size - base_size])
        result = bench_size(
            size, load_automations(path), events, timeline, ticks, repeats, verify=False
        )
        results.append(result)
        print(
            f"{size:>7,} automations (flat): {_rate(result.process_us(len(events)))} events/s, "
            f"{result.candidates:.2f} / {result.interested:.2f} candidates / interested",
            file=sys.stderr,
        )
        gc.collect()
    return results


def measure_metric(
    seed: int, deployments: int, count: int, n_events: int, repeats: int, out: Path
) -> Result:
    """`count` metric triggers over the same events (they aggregate per event, fire at ticks)."""
    universe = Universe.build(seed, deployments)
    events_path = out / "events.jsonl"
    if not events_path.exists():
        write_events(events_path, generate_events(universe, n_events))
    events = read_events(events_path, sys.stderr)
    ticks = read_ticks(out / "ticks", events, [])
    path = out / f"metric-{count}.json"
    write_automations(path, generate_metric_automations(universe, count))
    timeline = segments(events, ticks)
    return bench_size(count, load_automations(path), events, timeline, ticks, repeats, False)


def flat_table(results: list[Result], n_events: int) -> list[str]:
    base = results[0].process_us(n_events)
    lines = [
        "| automations | candidates / interested per event | engine events/s | "
        "engine µs/event | cost vs the smallest |",
        "|---:|---:|---:|---:|---:|",
    ]
    for result in results:
        per_event = result.process_us(n_events)
        lines.append(
            f"| {result.automations:,} | {result.candidates:.2f} / {result.interested:.2f} | "
            f"{_rate(per_event)} | {per_event:.2f} | {per_event / base:.2f}x |"
        )
    ratio = results[-1].process_us(n_events) / base
    verdict = "met" if ratio <= TARGET_RATIO else "MISSED"
    lines += [
        "",
        f"- Target: per-event cost at {results[-1].automations:,} automations within "
        f"{TARGET_RATIO:g}x of the cost at {results[0].automations:,}: **{verdict}**, {ratio:.2f}x.",
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", default=None, help="automation counts (default 10,100,1000,10000,100000)"
    )
    parser.add_argument("--events", type=int, default=None, help="events (default 20000)")
    parser.add_argument("--repeats", type=int, default=None, help="runs per figure (default 3)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "core")
    parser.add_argument("--quick", action="store_true", help="10 and 1000, 2000 events, 1 run")
    parser.add_argument("--write-docs", action="store_true", help=f"update {DOCS.name}")
    parser.add_argument("--profile", action="store_true", help="cProfile one run per size")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    parser.add_argument(
        "--verify", action="store_true", help="cross-check firings via replay at every size"
    )
    args = parser.parse_args(argv)
    quick = args.quick
    sizes = sorted(
        {
            int(s)
            for s in (args.sizes or ("10,1000" if quick else "10,100,1000,10000,100000")).split(",")
        }
    )
    n_events = args.events or (2000 if quick else 20_000)
    repeats = args.repeats or (1 if quick else 3)
    out: Path = args.out / ("quick" if quick else "full")
    deployments = default_deployments(max(sizes))
    main_run = measure(
        args.seed,
        deployments,
        sizes,
        n_events,
        repeats,
        out,
        verify=args.verify,
        profile=args.profile,
    )
    n = main_run.events
    report = [
        main_run.describe(args.seed, repeats),
        "",
        table(main_run.results, n, main_run.ticks, main_run.parse_us),
        "",
        f"Parse + validate (`orjson.loads` + `event_record`): "
        f"{1e6 / main_run.parse_us:,.0f} events/s ({main_run.parse_us:.2f} µs/event), "
        "the same for every size.",
        "",
        *verdicts(main_run.results, n),
    ]
    # In the shared universe (sized for the largest count) 1,000 automations are
    # sparse: most events meet none. Also measure them in their own universe, where
    # every deployment has about two, as `bench/workload.py --automations 1000` makes.
    own = default_deployments(TARGET_AT)
    if TARGET_AT in sizes and own != deployments:
        dense = measure(
            args.seed,
            own,
            [TARGET_AT],
            n_events,
            repeats,
            args.out / "dense",
            verify=False,
            profile=args.profile,
            parse=False,
        )
        result = dense.results[0]
        per_event = result.process_us(dense.events)
        verdict = "met" if 1e6 / per_event >= TARGET_EVENTS_PER_SECOND else "MISSED"
        report += [
            f"- {TARGET_AT:,} automations in their own universe ({own} deployments, "
            f"{dense.pools} pools, {dense.events:,} other events; "
            f"{result.candidates:.2f} / {result.interested:.2f} candidates / interested per "
            f"event): {_rate(per_event)} events/s engine ({per_event:.2f} µs/event, "
            f"{result.tick_ms(dense.ticks):.2f} ms/tick, {result.firings:,} firings): "
            f"target **{verdict}**.",
        ]
    if len(sizes) > 1:
        flat = measure_flat(args.seed, deployments, sizes, n_events, repeats, out)
        report += [
            "",
            "**Index flatness.** The same first "
            f"{min(sizes)} automations and the same events at every size; the other "
            "automations are generated alike but pin deployments and work pools of a "
            "second universe, so they never match. The evaluation work is constant and "
            "the cost that remains is the index's:",
            "",
            *flat_table(flat, n),
        ]
    metric = measure_metric(args.seed, deployments, TARGET_AT, n_events, repeats, out)
    per_event = metric.process_us(n)
    report += [
        "",
        f"**Metric triggers.** {TARGET_AT:,} metric triggers (successes, duration and "
        "lateness in turn, each on one deployment, `range` 300 s, `firing_for` 60 s) over "
        f"the same events: {_rate(per_event)} events/s engine ({per_event:.2f} µs/event, "
        f"{metric.candidates:.2f} / {metric.interested:.2f} candidates / interested per "
        f"event), {metric.tick_ms(main_run.ticks):.2f} ms/tick, {metric.firings:,} firings.",
    ]
    text = "\n".join(report)
    print(text)
    if args.json:
        figures = {
            "events": n,
            "sizes": [r.automations for r in main_run.results],
            "engine_us": [r.process_us(n) for r in main_run.results],
            "total_us": [r.total_us(n) for r in main_run.results],
            "flat_sizes": [r.automations for r in flat] if len(sizes) > 1 else [],
            "flat_us": [r.process_us(n) for r in flat] if len(sizes) > 1 else [],
        }
        args.json.write_text(orjson.dumps(figures).decode())
    if args.write_docs:
        write_docs("\n".join([*machine(), f"- Command: `{command()}`", "", text]))
        print(f"updated {DOCS.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
