"""The pure trigger core: events and time in, state changes and firings out (no I/O, no clocks)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parent.parent.parent


def stale_compiled_modules(root: Path = _PACKAGE_ROOT) -> list[str]:
    """Sources changed since the core was compiled (`make compile`); [] if it was not.

    Python imports a compiled module in preference to its `.py` file, so a stale build
    would run yesterday's code under today's sources without a word.
    """
    core = root / "service" / "core"
    manifest = core / "compiled.json"
    if not manifest.exists():
        orphans = sorted(p.name for p in core.glob("*.so"))
        return ["compiled.json (missing; built: " + ", ".join(orphans) + ")"] if orphans else []
    built: dict[str, str] = json.loads(manifest.read_text())
    return [
        module
        for module, digest in sorted(built.items())
        if not (root / module).exists()
        or hashlib.sha256((root / module).read_bytes()).hexdigest() != digest
    ]


_stale = stale_compiled_modules()
if _stale:
    raise ImportError(
        "the compiled trigger core is older than its sources ("
        + ", ".join(_stale)
        + "): run `make compile` to rebuild it, or `make uncompile` for the pure-Python core"
    )
