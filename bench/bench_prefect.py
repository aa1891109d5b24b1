"""Tripwire's core side by side with Prefect 3.9.1's own trigger engine, same run, same input.

    .venv/bin/python bench/bench_prefect.py [--automations 1000] [--events 3000]
                                            [--tick-tail 30] [--write-docs] [--quick]

One seeded workload (bench/workload.py: `--automations` automations in their own
universe, `--events` flow-run lifecycle events) is written as `automations.json`,
`events.jsonl` and `ticks` (every 5 s of event time from the first event to
`--tick-tail` seconds after the last) and run through:

* Prefect: `bench/prefect_engine.py` under `.venv-prefect/bin/python` (`make
  prefect-env`), Prefect's `prefect.server.events.triggers` on SQLite with a simulated
  clock. Timed inside that process: seconds in event evaluation (the consumer's
  handler: seen-id check + `reactive_evaluation`) and seconds in ticks (lost
  followers, `proactive_evaluation` of every proactive trigger, sweeps). Start-up
  (imports, database migration, loading automations) is not timed.
* Tripwire: its core in this process, as `tripwire replay` runs it: `Engine.process`
  over the pre-parsed events and `Engine.tick` at the same ticks (median of
  `--repeats` runs, half before and half after Prefect's run, so that a change in the
  machine's load hits both sides alike), and once through `service.replay.run` for
  the firing lines. Prefect's handler validates each event (`ReceivedEvent`), so a
  second Tripwire row adds the parse of each line (`orjson.loads` + `event_record`,
  median of `--repeats`) for a like-for-like figure. The target is
  stated against the core's figure.

Firings are compared as tests/conformance/check.py compares them: per firing the
automation (name), the root `trigger_id`, `state`, `bucket` (the triggering labels,
one per `for_each` selector), `triggering_event` (id or null), `fired_at` (the
simulated wall time) and the composite `child_firings` (each child's trigger id,
bucket, triggering event and firing time; compared as a set, since Prefect reads
them back from the database in no defined order); firings with the same `fired_at`
may come in any order. The counts per automation kind are reported too.

`--quick` (100 automations, 600 events) checks the harness and the agreement of the
firings; it asserts no timing.
"""

from __future__ import annotations

import argparse
import collections
import difflib
import gc
import io
import json
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_core import new_engine, replay_once, segments, time_parse
from report import command, loadavg, machine_lines, write_section
from workload import (
    TICK_STEP_SECONDS,
    Universe,
    default_deployments,
    generate_automations,
    generate_events,
    write_automations,
    write_events,
)

from service.core.times import SECOND, us_to_iso
from service.progress import Progress
from service.replay import ReplayInput, load_automations, read_events, read_ticks, run

ROOT = Path(__file__).resolve().parent.parent
PREFECT_PYTHON = ROOT / ".venv-prefect" / "bin" / "python"
DRIVER = ROOT / "bench" / "prefect_engine.py"
SECTION = "bench-prefect"
TARGET_RATIO = 1000.0


@dataclass(slots=True)
class SideBySide:
    automations: int
    deployments: int
    events: int
    ticks: int
    span_s: float
    tail_s: float
    prefect: dict[str, Any]
    tripwire_events_s: float
    tripwire_ticks_s: float
    tripwire_firings: int
    tripwire_parse_s: float
    agree: bool
    diff: list[str]
    kinds: dict[str, tuple[int, int]]

    def rate(self, seconds: float) -> float:
        return self.events / seconds if seconds else float("inf")


def canonical(lines: list[dict[str, Any]]) -> list[str]:
    """check.py's comparison, with child firings compared as a set."""
    groups: list[tuple[str, list[str]]] = []
    for record in lines:
        fields = {
            key: record[key]
            for key in (
                "automation",
                "trigger_id",
                "state",
                "bucket",
                "triggering_event",
                "fired_at",
            )
            if key in record
        }
        if record.get("child_firings"):
            fields["child_firings"] = sorted(
                json.dumps(child, sort_keys=True) for child in record["child_firings"]
            )
        text = json.dumps(fields, sort_keys=True)
        fired_at = str(record.get("fired_at"))
        if groups and groups[-1][0] == fired_at:
            groups[-1][1].append(text)
        else:
            groups.append((fired_at, [text]))
    return [line for _, group in groups for line in sorted(group)]


def write_workload(out: Path, seed: int, automations: int, n_events: int, tail: float) -> int:
    """automations.json, events.jsonl and ticks in `out`; returns the universe size."""
    out.mkdir(parents=True, exist_ok=True)
    deployments = default_deployments(automations)
    universe = Universe.build(seed, deployments)
    write_automations(out / "automations.json", generate_automations(universe, automations))
    write_events(out / "events.jsonl", generate_events(universe, n_events))
    events = read_events(out / "events.jsonl", sys.stderr)
    first, last = events[0].wall, events[-1].wall
    until = last + round(tail * SECOND)
    (out / "ticks").write_text(
        f"step:{TICK_STEP_SECONDS},from={us_to_iso(first)},until={us_to_iso(until)}\n"
    )
    return deployments


def run_prefect(out: Path, show_progress: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    if not PREFECT_PYTHON.exists():
        msg = f"no {PREFECT_PYTHON}: run `make prefect-env` first"
        raise SystemExit(msg)
    argv = [
        str(PREFECT_PYTHON),
        str(DRIVER),
        "--automations",
        str(out / "automations.json"),
        "--events",
        str(out / "events.jsonl"),
        "--ticks",
        str(out / "ticks"),
        "--timing",
        str(out / "prefect-timing.json"),
        "--progress",
    ]
    with (out / "prefect.jsonl").open("wb") as firings:
        process = subprocess.Popen(argv, stdout=firings, stderr=subprocess.PIPE, text=True)
        assert process.stderr is not None
        bar: Progress | None = None
        other: list[str] = []
        for line in process.stderr:
            parts = line.split()
            if len(parts) == 3 and parts[0] == "progress":
                done, total = int(parts[1]), int(parts[2])
                if bar is None:
                    bar = Progress(total, "events + ticks (Prefect)", enabled=show_progress)
                bar.advance(done - bar.done)
            else:
                other.append(line)
        code = process.wait()
        if bar is not None:
            bar.__exit__(None, None, None)
    if code != 0:
        msg = f"Prefect's engine failed ({code}):\n{''.join(other[-40:])}"
        raise SystemExit(msg)
    timing = json.loads((out / "prefect-timing.json").read_text())
    lines = [json.loads(line) for line in (out / "prefect.jsonl").read_text().splitlines() if line]
    return timing, lines


def measure(
    seed: int,
    n_automations: int,
    n_events: int,
    tail: float,
    repeats: int,
    out: Path,
    show_progress: bool,
) -> SideBySide:
    deployments = write_workload(out, seed, n_automations, n_events, tail)
    automations = load_automations(out / "automations.json")
    events = read_events(out / "events.jsonl", sys.stderr)
    ticks = read_ticks(out / "ticks", events, automations)
    timeline = segments(events, ticks)
    span = (events[-1].wall - events[0].wall) / SECOND

    samples: list[tuple[float, float]] = []

    def tripwire_runs(count: int) -> None:
        for _ in range(count):
            engine = new_engine(automations)
            gc.collect()
            in_process, in_tick, _ = replay_once(engine, timeline)
            samples.append((in_process, in_tick))

    tripwire_runs(max(1, repeats // 2))
    say(f"Prefect 3.9.1: {n_automations:,} automations, {len(events):,} events, {len(ticks)} ticks")
    prefect, prefect_lines = run_prefect(out, show_progress)
    tripwire_runs(max(1, repeats - repeats // 2))
    parse_s = time_parse((out / "events.jsonl").read_bytes().splitlines(), repeats)
    buffer = io.StringIO()
    run(ReplayInput(automations, events, ticks), buffer)
    tripwire_lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line]
    (out / "tripwire.jsonl").write_text(buffer.getvalue())
    expected, actual = canonical(prefect_lines), canonical(tripwire_lines)
    diff = list(difflib.unified_diff(expected, actual, "prefect", "tripwire", lineterm="", n=0))
    kinds: dict[str, list[int]] = collections.defaultdict(lambda: [0, 0])
    for side, lines in ((0, prefect_lines), (1, tripwire_lines)):
        for line in lines:
            kinds[str(line["automation"]).rsplit("-", 1)[0]][side] += 1
    return SideBySide(
        automations=n_automations,
        deployments=deployments,
        events=len(events),
        ticks=len(ticks),
        span_s=span,
        tail_s=tail,
        prefect=prefect,
        tripwire_events_s=statistics.median(s[0] for s in samples),
        tripwire_ticks_s=statistics.median(s[1] for s in samples),
        tripwire_firings=len(tripwire_lines),
        tripwire_parse_s=parse_s,
        agree=expected == actual,
        diff=diff,
        kinds={k: (v[0], v[1]) for k, v in sorted(kinds.items())},
    )


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def report(r: SideBySide, seed: int, repeats: int) -> list[str]:
    p_events, p_ticks = r.prefect["events_s"], r.prefect["ticks_s"]
    t_events, t_ticks = r.tripwire_events_s, r.tripwire_ticks_s
    ratio = (p_events / t_events) if t_events else float("inf")
    ratio_all = (p_events + p_ticks) / (t_events + t_ticks)
    # Prefect's handler validates each event (`ReceivedEvent`); this is the like-for-like.
    t_parsed = t_events + r.tripwire_parse_s
    ratio_parsed = p_events / t_parsed
    verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
    lines = [
        f"Workload: `bench/workload.py --seed {seed} --automations {r.automations}` "
        f"({r.deployments} deployments), the first {r.events:,} events "
        f"({r.span_s:.0f} s of event time), a tick every {TICK_STEP_SECONDS} s from the first "
        f"event to {r.tail_s:g} s after the last "
        f"({r.ticks} ticks, proactive mode `direct`). Tripwire: median of {repeats} runs.",
        "",
        "| engine | events/s (event evaluation) | µs/event | ms/tick "
        "| events/s incl. ticks | firings |",
        "|---|---:|---:|---:|---:|---:|",
        f"| Prefect 3.9.1 (`prefect.server.events.triggers`, SQLite) | {r.rate(p_events):,.0f} "
        f"| {p_events / r.events * 1e6:,.0f} | {p_ticks / max(r.ticks, 1) * 1e3:,.1f} "
        f"| {r.rate(p_events + p_ticks):,.0f} | {r.prefect['firings']:,} |",
        f"| Tripwire core (`Engine`, memory store) | {r.rate(t_events):,.0f} "
        f"| {t_events / r.events * 1e6:,.2f} | {t_ticks / max(r.ticks, 1) * 1e3:,.3f} "
        f"| {r.rate(t_events + t_ticks):,.0f} | {r.tripwire_firings:,} |",
        f"| Tripwire core + parsing each line (`orjson.loads` + `event_record`) "
        f"| {r.rate(t_parsed):,.0f} | {t_parsed / r.events * 1e6:,.2f} "
        f"| {t_ticks / max(r.ticks, 1) * 1e3:,.3f} | {r.rate(t_parsed + t_ticks):,.0f} | |",
        f"| **Tripwire core / Prefect** | **{ratio:,.0f}x** | | "
        f"{(p_ticks / max(t_ticks, 1e-12)):,.0f}x | {ratio_all:,.0f}x | |",
        f"| Tripwire core + parsing / Prefect | {ratio_parsed:,.0f}x | | | "
        f"{(p_events + p_ticks) / (t_parsed + t_ticks):,.0f}x | |",
        "",
        f"- Target: Tripwire's core >= {TARGET_RATIO:,.0f}x Prefect's engine (event "
        f"evaluation, same events, same run): **{verdict}**, measured {ratio:,.0f}x "
        f"({ratio_all:,.0f}x with ticks; {ratio_parsed:,.0f}x counting Tripwire's parsing "
        "too, since Prefect's figure includes its validation of each event).",
        f"- Firings: **{'identical' if r.agree else 'DIFFERENT'}** "
        f"({r.prefect['firings']:,} from Prefect, {r.tripwire_firings:,} from Tripwire; "
        "compared on automation, root trigger id, state, bucket labels, triggering event "
        "id, fired_at and child firings).",
        "",
        "Firings per automation kind (Prefect / Tripwire): "
        + ", ".join(f"{k} {p:,} / {t:,}" for k, (p, t) in r.kinds.items())
        + ".",
    ]
    if not r.agree:
        lines += ["", "First differences (`-` Prefect, `+` Tripwire):", "", "```"]
        lines += [d[:300] for d in r.diff[:12]]
        lines += ["```"]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--automations", type=int, default=None, help="default 1000")
    parser.add_argument("--events", type=int, default=None, help="default 3000")
    parser.add_argument("--tick-tail", type=float, default=None, help="seconds (default 30)")
    parser.add_argument("--repeats", type=int, default=None, help="Tripwire runs (default 6)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "prefect")
    parser.add_argument("--quick", action="store_true", help="100 automations, 600 events")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--json", type=Path, default=None, help="write the figures as JSON")
    args = parser.parse_args(argv)
    quick = args.quick
    n_automations = args.automations or (100 if quick else 1000)
    n_events = args.events or (600 if quick else 3000)
    tail = args.tick_tail if args.tick_tail is not None else (10.0 if quick else 30.0)
    repeats = args.repeats or (2 if quick else 6)
    out = args.out / ("quick" if quick else "full")
    result = measure(args.seed, n_automations, n_events, tail, repeats, out, sys.stderr.isatty())
    lines = report(result, args.seed, repeats)
    text = "\n".join(lines)
    print(text)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "events": result.events,
                    "prefect_events_per_s": result.rate(result.prefect["events_s"]),
                    "tripwire_events_per_s": result.rate(result.tripwire_events_s),
                    "tripwire_parsed_events_per_s": result.rate(
                        result.tripwire_events_s + result.tripwire_parse_s
                    ),
                    "agree": result.agree,
                    "prefect_firings": result.prefect["firings"],
                    "tripwire_firings": result.tripwire_firings,
                }
            )
        )
    if args.write_docs:
        head = [
            *machine_lines("both engines run one at a time, each on one core"),
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, load average at "
            f"the end {loadavg()} (the machine was shared with other work)",
            f"- Command: `{command()}`",
            "",
        ]
        write_section(SECTION, "\n".join([*head, text]))
        say("updated docs/benchmarks.md")
    return 0 if result.agree else 1


if __name__ == "__main__":
    sys.exit(main())
