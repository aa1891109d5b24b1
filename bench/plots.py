"""PNG plots of the benchmark figures (matplotlib, the `bench` extra: `pip install -e '.[bench]'`).

    .venv/bin/python bench/plots.py --core core.json --prefect prefect.json
                                    --e2e e2e.json --out docs/img

Reads the JSON the benchmark scripts write with `--json` and draws:

* `core-throughput.png`: core events/s against the number of automations (log-log),
  the realistic workload and the index-flatness run;
* `prefect-vs-tripwire.png`: events/s of both engines on the same workload (log);
* `e2e-latency.png`: the produce -> firing record latency distribution (CDF) per rate;
* `proactive-lateness.png`: the firing time - deadline distribution of proactive buckets.

Each input is optional; a plot whose input is missing is skipped.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib as mpl

mpl.use("Agg")
import matplotlib.pyplot as plt


def _load(path: Path | None) -> dict[str, Any] | None:
    if path is None or not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def core_plot(data: dict[str, Any], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    sizes, engine = data["sizes"], [1e6 / us for us in data["engine_us"]]
    ax.plot(sizes, engine, "o-", label="realistic workload (engine only)")
    ax.plot(sizes, [1e6 / us for us in data["total_us"]], "s--", label="… incl. ticks")
    if data.get("flat_sizes"):
        ax.plot(
            data["flat_sizes"],
            [1e6 / us for us in data["flat_us"]],
            "^-",
            label="index flatness (same 10 matching)",
        )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("automations")
    ax.set_ylabel("events/s (one core)")
    ax.set_title("Tripwire core: throughput vs automations")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path = out / "core-throughput.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def prefect_plot(data: dict[str, Any], out: Path) -> Path:
    fig, ax = plt.subplots(figsize=(6.4, 3.2), dpi=110)
    names = ["Prefect 3.9.1", "Tripwire core + parsing", "Tripwire core"]
    values = [
        data["prefect_events_per_s"],
        data.get("tripwire_parsed_events_per_s", data["tripwire_events_per_s"]),
        data["tripwire_events_per_s"],
    ]
    bars = ax.barh(names, values, color=["#888888", "#7fb3d9", "#2a7ab9"])
    ax.set_xscale("log")
    ax.set_xlabel("events/s, event evaluation, same events and automations (log)")
    ax.set_title(
        f"Same workload, same run: {values[2] / values[0]:,.0f}x "
        f"({values[1] / values[0]:,.0f}x with parsing)"
    )
    for bar, value in zip(bars, values, strict=True):
        ax.text(value, bar.get_y() + bar.get_height() / 2, f" {value:,.0f}", va="center")
    ax.set_xlim(right=max(values) * 20)
    path = out / "prefect-vs-tripwire.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def latency_plot(data: dict[str, Any], out: Path) -> Path | None:
    runs = [r for r in data.get("latency", []) if r["ms"]]
    if not runs:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=110)
    for run in runs:
        values = sorted(run["ms"])
        fractions = [(i + 1) / len(values) for i in range(len(values))]
        ax.plot(values, fractions, label=f"{run['achieved']:,.0f} pings/s")
    ax.set_xscale("log")
    ax.set_xlabel("produce -> firing record (ms, log)")
    ax.set_ylabel("fraction of pings")
    ax.set_title("End-to-end latency, one worker (CDF)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    path = out / "e2e-latency.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def lateness_plot(data: dict[str, Any], out: Path) -> Path | None:
    late = data.get("lateness_ms") or []
    if not late:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    ax.hist([v / 1000 for v in late], bins=40, color="#2a7ab9")
    ax.set_xlabel("firing record time - deadline (s)")
    ax.set_ylabel("buckets")
    ax.set_title(f"Proactive lateness ({len(late)} stuck-run buckets, one worker)")
    path = out / "proactive-lateness.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


def draw(
    core: Path | None, prefect: Path | None, e2e: Path | None, out: Path
) -> list[tuple[str, Path]]:
    """Every plot whose input exists: (caption, path)."""
    out.mkdir(parents=True, exist_ok=True)
    made: list[tuple[str, Path]] = []
    if (data := _load(core)) is not None:
        made.append(("Core throughput vs automations", core_plot(data, out)))
    if (data := _load(prefect)) is not None:
        made.append(("Tripwire vs Prefect, same workload", prefect_plot(data, out)))
    if (data := _load(e2e)) is not None:
        if (path := latency_plot(data, out)) is not None:
            made.append(("End-to-end latency distribution", path))
        if (path := lateness_plot(data, out)) is not None:
            made.append(("Proactive lateness distribution", path))
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--core", type=Path)
    parser.add_argument("--prefect", type=Path)
    parser.add_argument("--e2e", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    for caption, path in draw(args.core, args.prefect, args.e2e, args.out):
        print(f"{caption}: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
