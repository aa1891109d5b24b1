"""The benchmark harness runs (a smoke check: it asserts that it works, never a timing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_core_quick_runs_and_reports_every_size(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_core.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert "| 10 |" in done.stdout
    assert "| 1,000 |" in done.stdout
    assert "Index flatness" in done.stdout
    assert (tmp_path / "quick" / "events.jsonl").stat().st_size > 0


def test_prefect_side_by_side_quick_runs_and_firings_agree(tmp_path: Path) -> None:
    """Prefect's own engine and Tripwire's core over one tiny workload: same firings."""
    figures = tmp_path / "prefect.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_prefect.py"),
            "--quick",
            "--out",
            str(tmp_path),
            "--json",
            str(figures),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads(figures.read_text())
    assert result["agree"] is True
    assert result["prefect_firings"] == result["tripwire_firings"] > 0
    assert "Firings: **identical**" in done.stdout
    assert (tmp_path / "quick" / "prefect.jsonl").stat().st_size > 0


def test_bench_state_quick_reports_both_stores(tmp_path: Path) -> None:
    figures = tmp_path / "state.json"
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "bench_state.py"),
            "--quick",
            "--out",
            str(tmp_path),
            "--json",
            str(figures),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    result = json.loads(figures.read_text())
    assert set(result["tick_ms"]) == {"memory", "documents"}
    assert result["table_disk"] > 0
    assert result["load_per_s"] > 0
    assert "documents (`DocumentStore`, the worker)" in done.stdout


def test_prefect_driver_reproduces_prefects_recorded_firings() -> None:
    """The benchmark's Prefect driver matches the conformance expectations Prefect recorded.

    Three scenarios (proactive for_each, compound within, a follows leader arriving late)
    keep the driver honest without running all twenty (about two minutes).
    """
    engine = (
        f"{ROOT / '.venv-prefect' / 'bin' / 'python'} {ROOT / 'bench' / 'prefect_engine.py'} "
        "--automations {automations} --events {events} {ticks} {args}"
    )
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "tests" / "conformance" / "check.py"),
            "--engine",
            engine,
            "19",
            "27",
            "35",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3 passed, 0 failed" in done.stdout
