"""A small progress bar on stderr for long runs, shown only on a terminal."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

__all__ = ["Progress"]


class Progress:
    """Redraws at most ten times a second; silent when not enabled.

    `total` and `advance` measure the work. With `items=True` the bar counts `unit`s
    passed to `advance(..., items=n)` instead, for work measured in one thing (bytes of
    a file read) and told in another (events) whose total is unknown in advance.
    """

    def __init__(
        self,
        total: int,
        unit: str,
        *,
        enabled: bool,
        stream: TextIO | None = None,
        items: bool = False,
    ) -> None:
        self.total = max(total, 1)
        self.unit = unit
        self.enabled = enabled
        self.stream = stream or sys.stderr
        self.done = 0
        self.items = 0
        self.count_items = items
        self._started = time.monotonic()
        self._drawn = 0.0
        self._on_screen = False

    def advance(self, count: int = 1, items: int = 0) -> None:
        """Count `count` more units of work done, and `items` more items."""
        self.done += count
        self.items += items
        if self.enabled:
            now = time.monotonic()
            if now - self._drawn >= 0.1 or self.done >= self.total:
                self._drawn = now
                self._draw(now)

    def clear(self) -> None:
        """Erase the bar, so that a message written next starts on a clean line."""
        if self.enabled and self._on_screen:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._on_screen = False
            self._drawn = 0.0  # redraw at the next advance, below the message

    def _draw(self, now: int | float) -> None:
        fraction = min(self.done / self.total, 1.0)
        filled = int(fraction * 30)
        counted = self.items if self.count_items else self.done
        rate = counted / max(now - self._started, 1e-9)
        shown = f"{counted:,}" if self.count_items else f"{self.done}/{self.total}"
        self.stream.write(
            f"\r[{'#' * filled}{'.' * (30 - filled)}] {fraction:4.0%} {shown} "
            f"{self.unit} ({rate:,.0f}/s)"
        )
        self.stream.flush()
        self._on_screen = True

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.enabled and self._on_screen:
            self.stream.write("\n")
            self.stream.flush()
