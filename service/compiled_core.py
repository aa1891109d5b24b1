"""The compiled core's manifest: which sources a mypyc build was made from, by digest.

Outside `service.core` on purpose: the build tool (tools/compile_core.py) writes the
manifest while the core may be stale, and importing `service.core` then refuses.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

__all__ = ["MANIFEST", "REPO_ROOT", "source_digest", "stale_compiled_modules"]

REPO_ROOT = Path(__file__).resolve().parent.parent
# Relative to the root: service/core/compiled.json.
MANIFEST = Path("service", "core", "compiled.json")


def source_digest(path: Path) -> str:
    """The sha256 of a source file's bytes, as the manifest records it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def stale_compiled_modules(root: Path = REPO_ROOT) -> list[str]:
    """Sources changed since the core was compiled (`make compile`); [] if it was not.

    Python imports a compiled module in preference to its `.py` file, so a stale build
    would run yesterday's code under today's sources without a word.
    """
    manifest = root / MANIFEST
    if not manifest.exists():
        orphans = sorted(p.name for p in manifest.parent.glob("*.so"))
        return ["compiled.json (missing; built: " + ", ".join(orphans) + ")"] if orphans else []
    built: dict[str, str] = json.loads(manifest.read_text())
    return [
        module
        for module, digest in sorted(built.items())
        if not (root / module).exists() or source_digest(root / module) != digest
    ]
