"""The /healthz and /readyz body every Tripwire process answers, and waiting for it."""

from __future__ import annotations

import subprocess
import time
from typing import Any

import httpx

__all__ = ["health_body", "wait_until_ready"]


def health_body(ready: bool, checks: dict[str, Any]) -> dict[str, Any]:
    """One shape for /healthz and /readyz of every process (docs/observability.md).

    `checks` holds the process's own conditions under their names; /healthz answers the
    same body with 200 whatever `ready` is, /readyz with 503 while not ready.
    """
    return {"status": "ok" if ready else "not_ready", "ready": ready, "checks": checks}


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
