"""Wait for a Tripwire process's readiness page to answer 200."""

from __future__ import annotations

import subprocess
import time

import httpx

__all__ = ["wait_until_ready"]


def wait_until_ready(
    url: str, process: subprocess.Popen[bytes] | None = None, seconds: float = 60
) -> bool:
    """Poll `url` until it answers 200; False on timeout or when `process` has exited."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            return False
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return True
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    return False
