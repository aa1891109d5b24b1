"""What event-time ordering costs: produce-to-firing latency, before and after, A/B.

    .venv/bin/python bench/bench_ordering.py --before /path/to/old/.venv/bin/tripwire
                                             [--rounds 2] [--seconds 20] [--write-docs]

One embedded broker; the 1,000 automations and the events of bench_e2e.py (which
defines the worlds, the latency ping and its measurement: a ping's send time to its
firing record's broker timestamp). `--before` is the `tripwire` of a checkout without
event-time ordering (e.g. a worktree at the commit before it, with its own `make
install`); the other side is this checkout's. First one paused-backlog drain per side
sets "half the maximum": half the slower side's drain rate. Then, per round and in
alternating order, each side gets a fresh world and one worker with default settings,
and latency is measured at 200 events/s (pings only) and at half the maximum (pings at
100/s among workload events).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import math
import os
import shutil
import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_e2e import (
    AUTOMATIONS,
    NO_TICKS,
    TRIPWIRE,
    WARM_UP_S,
    Latency,
    World,
    delete_world_topics,
    drain_paused,
    latency,
    latency_automation,
    percentile,
    say,
    stamp_events,
)
from report import command, loadavg, machine_lines, write_section
from workload import Universe, default_deployments, generate_automations, generate_events

from service.messaging.automations import publish_automations
from service.messaging.broker import EmbeddedBroker, free_port, wait_ready
from service.messaging.topics import ensure_topics
from service.models.automations import parse_automations

ROOT = Path(__file__).resolve().parent.parent
IDLE_RATE = 200.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", required=True, help="the old checkout's tripwire")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured per rate")
    parser.add_argument("--events", type=int, default=30_000, help="events per drain")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    load_at_start = loadavg()
    sides = {"before": (args.before, "worker"), "after": (str(TRIPWIRE), "worker")}
    out = ROOT / "bench" / "out" / "ordering"
    # A state directory left by an earlier run would claim changelog offsets that the
    # new broker's topics do not have.
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    universe = Universe.build(7, default_deployments(AUTOMATIONS))
    automations = parse_automations(
        [*generate_automations(universe, AUTOMATIONS), latency_automation()]
    )
    ids = {str(a.id) for a in automations}
    base = generate_events(universe, args.events)
    stamps = iter(range(1_000_000))

    def batch(size: int = 1) -> list[tuple[bytes, bytes]]:
        records: list[tuple[bytes, bytes]] = []
        for _ in range(size):
            records += stamp_events(base, f"{os.getpid()}/{next(stamps)}", 10.0)
        return records

    results: dict[str, list[list[Latency]]] = {side: [] for side in sides}
    with ExitStack() as stack:
        broker = EmbeddedBroker("127.0.0.1", free_port(), out / "tansu.log")
        broker.start()
        stack.callback(broker.stop)
        asyncio.run(wait_ready(broker.bootstrap))

        def world(side: str, label: str, ticks: str | None) -> World:
            made = World(broker.bootstrap, out / label, label, ticks, sides[side])
            stack.callback(made.stop_workers)
            asyncio.run(ensure_topics(made.settings))
            asyncio.run(publish_automations(made.settings, automations))
            made.start_worker("w1")
            made.wait_loaded(ids)
            made.wait_stable()
            return made

        def finish(made: World) -> None:
            made.stop_workers()
            asyncio.run(delete_world_topics(broker.bootstrap, made.prefix))

        drains = {}
        for side in sides:
            drained = world(side, f"drain-{side}", NO_TICKS)
            drains[side] = drain_paused(drained, broker, batch()).rate
            say(f"{side}: paused drain {drains[side]:,.0f} events/s")
            finish(drained)
        half = round(min(drains.values()) / 2, -1)
        rates = [IDLE_RATE, half]
        needed = sum(rates) * (WARM_UP_S + args.seconds)
        for number in range(args.rounds):
            order = list(sides) if number % 2 == 0 else list(reversed(sides))
            for side in order:
                measured = world(side, f"latency-{side}-{number}", None)
                load = iter(batch(math.ceil(needed / args.events)))
                runs = []
                for rate in rates:
                    run = asyncio.run(latency(measured, rate, args.seconds, load))
                    say(f"round {number + 1}, {side}, {rate:,.0f}/s: {_shown(run)}")
                    runs.append(run)
                    time.sleep(1)
                results[side].append(runs)
                finish(measured)
    report = _report(results, rates, drains)
    print(report)
    if args.write_docs:
        section = "\n".join(
            [
                _INTRO,
                *machine_lines(),
                f"- Load average at the start: {load_at_start}",
                f"- Command: `{command()}`",
                "",
                report,
            ]
        )
        write_section("bench-ordering", section)
    return 0


def _shown(run: Latency) -> str:
    if not run.to_record_ms:
        return f"0 of {run.sent} fired"
    return (
        f"{run.fired} of {run.sent} fired (achieved {run.achieved:,.0f}/s), "
        f"p50 {percentile(run.to_record_ms, 0.5):.1f} ms, "
        f"p99 {percentile(run.to_record_ms, 0.99):.1f} ms"
    )


def _report(
    results: dict[str, list[list[Latency]]], rates: list[float], drains: dict[str, float]
) -> str:
    lines = [
        f"Paused one-worker drain: before {drains['before']:,.0f} events/s, after "
        f"{drains['after']:,.0f} events/s; half the maximum: {rates[1]:,.0f} events/s.",
        "",
        "| rate | side | round | fired / sent | p50 ms | p99 ms |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    medians: dict[tuple[str, float], list[float]] = {}
    for index, rate in enumerate(rates):
        for side, rounds in results.items():
            for number, runs in enumerate(rounds, 1):
                run = runs[index]
                delays = run.to_record_ms
                p50 = percentile(delays, 0.5) if delays else math.nan
                p99 = percentile(delays, 0.99) if delays else math.nan
                medians.setdefault((side, rate), []).append(p99)
                lines.append(
                    f"| {rate:,.0f}/s | {side} | {number} | {run.fired:,} / {run.sent:,} "
                    f"| {p50:.1f} | {p99:.1f} |"
                )
    lines += ["", "| rate | p99 before (median of rounds) | p99 after | after / before |"]
    lines.append("|---:|---:|---:|---:|")
    for rate in rates:
        before = statistics.median(medians[("before", rate)])
        after = statistics.median(medians[("after", rate)])
        lines.append(f"| {rate:,.0f}/s | {before:.1f} ms | {after:.1f} ms | {after / before:.2f} |")
    return "\n".join(lines)


_INTRO = """\
## What event-time ordering costs (`bench/bench_ordering.py`)

Produce-to-firing latency (a ping's send time to its firing record's broker timestamp)
of one `tripwire worker` with default settings, before event-time ordering (evaluate
applied matches in arrival order) and after (matches wait until every events partition
is read past them, `docs/architecture.md`, "Stream time"), A/B in alternating order on
one embedded broker, at 200 events/s and at half the slower side's paused drain rate.
"""


if __name__ == "__main__":
    sys.exit(main())
