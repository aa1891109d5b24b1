"""`make bench`: every benchmark in one run, their figures and plots into docs/benchmarks.md.

    .venv/bin/python bench/harness.py [--write-docs] [--quick] [--skip e2e,...]

Runs, one after the other (each as its own process, so one's memory does not weigh on
the next), and passes `--write-docs` on so that each rewrites its own section:

1. `bench/bench_core.py`: core events/s and per-event cost for 10 to 100,000
   automations, index flatness, metric triggers;
2. `bench/bench_prefect.py`: Tripwire's core and Prefect 3.9.1's engine on the same
   workload in the same run, and whether their firings agree;
3. `bench/bench_state.py`: a tick with 1,000,000 open proactive buckets, none due, in
   the memory and RocksDB stores; memory and disk per open bucket;
4. `bench/bench_e2e.py`: workers on the embedded broker: throughput with one and two
   workers, latency percentiles, proactive lateness;
5. `bench/bench_api.py`: time from an API change to the worker evaluating it;
6. `bench/bench_backtest.py`: `tripwire backtest --from-topic` with 1,000 automations:
   events/s, times real time, peak RSS at two sizes;

then `bench/plots.py` draws the PNGs into docs/img/ and the summary section at the top
of docs/benchmarks.md lists the machine, every command and how long it took.
`--quick` runs the quick variant of each (a smoke run of the harness: it writes
nothing into docs/, and its plots go to bench/out/plots). The e2e and api steps are
skipped in `--quick` unless `--with-e2e` is given (they need a minute more).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import command, loadavg, machine_lines, write_section

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
STEPS = ("core", "prefect", "state", "e2e", "api", "backtest")
SCRIPTS = {
    "core": "bench_core.py",
    "prefect": "bench_prefect.py",
    "state": "bench_state.py",
    "e2e": "bench_e2e.py",
    "api": "bench_api.py",
    "backtest": "bench_backtest.py",
}


def say(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run; writes no docs")
    parser.add_argument("--with-e2e", action="store_true", help="include e2e and api in --quick")
    parser.add_argument("--write-docs", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument(
        "--skip", default="", help="steps to skip: core,prefect,state,e2e,api,backtest"
    )
    parser.add_argument("--out", type=Path, default=BENCH / "out")
    args = parser.parse_args(argv)
    if args.quick and args.write_docs:
        parser.error("--quick figures do not go into the docs")
    skip = {s for s in args.skip.split(",") if s}
    if args.quick and not args.with_e2e:
        skip.update({"e2e", "api"})
    figures = args.out / "figures" / ("quick" if args.quick else "full")
    figures.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    load_at_start = loadavg()
    ran: list[tuple[str, str, float, int]] = []
    failed = False
    for step in STEPS:
        if step in skip:
            continue
        json_path = figures / f"{step}.json"
        json_path.unlink(missing_ok=True)
        argv_step = [sys.executable, str(BENCH / SCRIPTS[step]), "--json", str(json_path)]
        if args.quick:
            argv_step.append("--quick")
        if args.write_docs:
            argv_step.append("--write-docs")
        shown = " ".join(["bench/" + SCRIPTS[step], *argv_step[4:]])
        say(f"{step}: {shown}")
        began = time.perf_counter()
        code = subprocess.run(argv_step, check=False).returncode
        seconds = time.perf_counter() - began
        ran.append((step, shown, seconds, code))
        say(f"{step}: exit {code} after {seconds:.0f} s")
        failed |= code != 0

    from plots import draw

    img = ROOT / "docs" / "img" if args.write_docs else args.out / "plots"
    plots = draw(figures / "core.json", figures / "prefect.json", figures / "e2e.json", img)
    for caption, path in plots:
        say(f"plot: {caption}: {path}")
    total = time.perf_counter() - started
    if args.write_docs:
        lines = [
            *machine_lines(),
            f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; load average "
            f"{load_at_start} at the start, {loadavg()} at the end. The machine was "
            "shared with other engineers' work during the run, so absolute figures are "
            "noisy; where a baseline exists, the figure that matters is the ratio "
            "measured in the same run.",
            f"- Command: `{command()}` (`make bench`), {total / 60:.1f} minutes in all:",
            "",
            "| step | command | minutes | exit |",
            "|---|---|---:|---:|",
            *(
                f"| {step} | `.venv/bin/python {shown}` | {seconds / 60:.1f} | {code} |"
                for step, shown, seconds, code in ran
            ),
            "",
            *(f"![{caption}](img/{path.name})" for caption, path in plots),
        ]
        write_section("bench-summary", "\n".join(lines))
        say("updated docs/benchmarks.md")
    say(f"done in {total / 60:.1f} minutes")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
