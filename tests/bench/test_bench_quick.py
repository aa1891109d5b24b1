"""The benchmark harness runs (a smoke check: it asserts that it works, never a timing)."""

from __future__ import annotations

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
