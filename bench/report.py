"""What every benchmark report says about its run: the load and the exact command."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, or "unknown"."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def command() -> str:
    """The command line that is running, with paths relative to the project."""
    shown = []
    for path in (Path(sys.executable), Path(sys.argv[0]).resolve()):
        try:
            shown.append(str(path.relative_to(ROOT)))
        except ValueError:
            shown.append(str(path))
    prefix = f"{ROOT}/"
    rest = [arg.removeprefix(prefix) for arg in sys.argv[1:]]
    return shlex.join([*shown, *rest])


def machine_lines(cores_note: str = "") -> list[str]:
    """CPU model, cores, RAM, Python and kernel: the machine a section was measured on."""
    import os
    import platform
    import re

    model = platform.processor() or "unknown"
    try:
        found = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.M)
        if found:
            model = found.group(1).strip()
    except OSError:
        pass
    ram = "unknown"
    try:
        found = re.search(r"^MemTotal:\s*(\d+) kB", Path("/proc/meminfo").read_text(), re.M)
        if found:
            ram = f"{int(found.group(1)) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    cores = (
        os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
    )
    note = f" ({cores_note})" if cores_note else ""
    return [
        f"- Machine: {model}, {len(cores)} cores{note}, {ram} RAM",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"{platform.system()} {platform.release()}",
    ]


def write_section(name: str, section: str, docs: Path | None = None) -> None:
    """Replace the text between `<!-- NAME:start -->` and `<!-- NAME:end -->` (or append)."""
    docs = docs or ROOT / "docs" / "benchmarks.md"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{section.rstrip()}\n{end}"
    text = docs.read_text(encoding="utf-8") if docs.exists() else "# Benchmarks\n"
    if start in text and end in text:
        head, _, rest = text.partition(start)
        _, _, tail = rest.partition(end)
        text = f"{head}{block}{tail}"
    else:
        text = f"{text.rstrip()}\n\n{block}\n"
    docs.parent.mkdir(parents=True, exist_ok=True)
    docs.write_text(text, encoding="utf-8")
