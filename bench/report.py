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
    return shlex.join([*shown, *sys.argv[1:]])
