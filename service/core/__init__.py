"""The pure trigger core: events and time in, state changes and firings out (no I/O, no clocks)."""

from __future__ import annotations

from service.compiled_core import stale_compiled_modules

_stale = stale_compiled_modules()
if _stale:
    raise ImportError(
        "the compiled trigger core is older than its sources ("
        + ", ".join(_stale)
        + "): run `make compile` to rebuild it, or `make uncompile` for the pure-Python core"
    )
