"""A compiled core older than its sources refuses to load instead of running stale code."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from service.compiled_core import stale_compiled_modules


def _layout(root: Path, source: str) -> Path:
    core = root / "service" / "core"
    core.mkdir(parents=True)
    module = core / "engine.py"
    module.write_text(source)
    return module


def test_no_compiled_core_is_never_stale(tmp_path: Path) -> None:
    _layout(tmp_path, "x = 1\n")
    assert stale_compiled_modules(tmp_path) == []


def test_a_source_changed_after_compiling_is_reported(tmp_path: Path) -> None:
    module = _layout(tmp_path, "x = 1\n")
    digest = hashlib.sha256(module.read_bytes()).hexdigest()
    manifest = tmp_path / "service" / "core" / "compiled.json"
    manifest.write_text(json.dumps({"service/core/engine.py": digest}))
    assert stale_compiled_modules(tmp_path) == []
    module.write_text("x = 2\n")
    assert stale_compiled_modules(tmp_path) == ["service/core/engine.py"]
    module.unlink()
    assert stale_compiled_modules(tmp_path) == ["service/core/engine.py"]


def test_extensions_without_a_manifest_are_reported(tmp_path: Path) -> None:
    _layout(tmp_path, "x = 1\n")
    (tmp_path / "service" / "core" / "engine.cpython-311-x86_64-linux-gnu.so").write_bytes(b"")
    [stale] = stale_compiled_modules(tmp_path)
    assert "compiled.json (missing" in stale
    assert "engine.cpython-311-x86_64-linux-gnu.so" in stale


def test_this_checkout_is_not_stale() -> None:
    # Importing service.core would have raised otherwise; the function agrees.
    assert stale_compiled_modules() == []
