"""Whole-process throughput of `tripwire replay` on the firing-heavy workload, A/B.

    .venv/bin/python bench/bench_replay.py [--events 100000] [--rounds 3]
        [--baseline /path/to/other/.venv/bin/tripwire] [--write-docs]

Writes bench/firing_workload.py's workload (1,000 automations, flow-run events of
about 1.3 KB, about two firings per event) to bench/out/replay/ once, then runs the
whole `tripwire replay` process on it, firings to a file, `--rounds` times. With
`--baseline` (another checkout's `tripwire`, e.g. main's) the rounds alternate
baseline and this checkout (B, A, B, A, ...), so the machine's load falls on both;
the outputs must be byte for byte the same. Reported per side: the median round's wall
time and CPU time (user + sys of the process) as events/s, and the ratio to the
baseline. `--write-docs` rewrites the bench-replay section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import ROOT, command, loadavg

OUT = ROOT / "bench" / "out" / "replay"
DOCS = ROOT / "docs" / "benchmarks.md"
OURS = ROOT / ".venv" / "bin" / "tripwire"


def workload(events: int) -> Path:
    where = OUT / f"firing-{events}"
    if not (where / "events.jsonl").exists():
        subprocess.run(
            [
                sys.executable,
                str(ROOT / "bench" / "firing_workload.py"),
                "--events",
                str(events),
                "--out",
                str(where),
            ],
            check=True,
        )
    return where


def run_once(tripwire: str, where: Path, output: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one whole replay process."""
    args = [tripwire, "replay", "--automations", str(where / "automations.json")]
    args += ["--events", str(where / "events.jsonl"), "--ticks", str(where / "ticks")]
    started = time.perf_counter()
    with output.open("wb") as out:
        process = subprocess.Popen(args, stdout=out)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if status != 0:
        msg = f"{tripwire} replay exited with status {status}"
        raise SystemExit(msg)
    return wall, usage.ru_utime + usage.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="another checkout's tripwire executable")
    parser.add_argument("--write-docs", action="store_true")
    args = parser.parse_args(argv)
    where = workload(args.events)
    lines = (where / "events.jsonl").read_bytes().count(b"\n")
    size = (where / "events.jsonl").stat().st_size / lines
    sides = {"this checkout": str(OURS)}
    if args.baseline:
        sides = {"baseline": args.baseline, **sides}
    load_before = loadavg()
    samples: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    outputs = {name: OUT / f"firings-{i}.jsonl" for i, name in enumerate(sides)}
    for _ in range(args.rounds):
        for name, tripwire in sides.items():
            samples[name].append(run_once(tripwire, where, outputs[name]))
    firings = outputs["this checkout"].read_bytes().count(b"\n")
    same = None
    if args.baseline:
        same = filecmp.cmp(outputs["baseline"], outputs["this checkout"], shallow=False)
    rows = []
    base = statistics.median(w for w, _ in samples[next(iter(sides))])
    base_cpu = statistics.median(c for _, c in samples[next(iter(sides))])
    for name, values in samples.items():
        wall = statistics.median(w for w, _ in values)
        cpu = statistics.median(c for _, c in values)
        rows.append(
            f"| {name} | {wall:.1f} s | {lines / wall:,.0f} | {cpu:.1f} s | {lines / cpu:,.0f} "
            f"| {base / wall:.2f}x | {base_cpu / cpu:.2f}x |"
        )
    table = [
        "| replay | wall (median) | events/s, wall | CPU (median) | events/s, CPU "
        "| speed-up, wall | speed-up, CPU |",
        "|---|---:|---:|---:|---:|---:|---:|",
        *rows,
    ]
    lines_out = [
        f"Command: `{command()}`",
        "",
        f"- Python {platform.python_version()}, {os.cpu_count()} cores (shared); "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load_before} at the start, "
        f"{loadavg()} at the end",
        f"- Workload: `bench/firing_workload.py --events {args.events}`: 1,000 automations, "
        f"{lines:,} events of {size:,.0f} bytes on average, {firings:,} firings "
        f"({firings / lines:.2f} per event); {args.rounds} rounds"
        + (", alternating baseline and this checkout" if args.baseline else ""),
        *(
            [f"- Firings written: byte for byte the same on both sides: {same}"]
            if same is not None
            else []
        ),
        "",
        *table,
    ]
    text = "\n".join(lines_out)
    print(text)
    if args.write_docs:
        docs = DOCS.read_text()
        section = f"<!-- bench-replay:start -->\n{text}\n<!-- bench-replay:end -->"
        pattern = re.compile(r"<!-- bench-replay:start -->.*?<!-- bench-replay:end -->", re.S)
        DOCS.write_text(pattern.sub(lambda _: section, docs))
    return 0 if same in (None, True) else 1


if __name__ == "__main__":
    raise SystemExit(main())
