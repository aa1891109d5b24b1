"""A small progress bar on stderr for long runs, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Redraws at most ten times a second; silent when not enabled."""

    def __init__(
        self, total: int, unit: str, *, enabled: bool, stream: TextIO | None = None
    ) -> None:
        self.total = max(total, 1)
        self.unit = unit
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self._started = time.monotonic()
        self._drawn = 0.0

    def advance(self, count: int = 1) -> None:
        """Count `count` more units done."""
        self.done += count
        if self.enabled:
            now = time.monotonic()
            if now - self._drawn >= 0.1 or self.done >= self.total:
                self._drawn = now
                self._draw(now)

    def _draw(self, now: int | float) -> None:
        fraction = min(self.done / self.total, 1.0)
        filled = int(fraction * 30)
        rate = self.done / max(now - self._started, 1e-9)
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/{self.total} "
            f"{self.unit} ({rate:,.0f}/s)"
        )
        self.stream.flush()

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.enabled and self.done:
            self.stream.write("\n")
            self.stream.flush()
