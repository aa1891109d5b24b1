"""Retries with exponential backoff and full jitter, bounded in attempts and in time."""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import httpx

__all__ = ["ActionFailed", "Delivery", "Retriable", "RetryPolicy", "deliver"]

T = TypeVar("T")


class ActionFailed(Exception):
    """The action cannot succeed as asked (bad target, 4xx, template error): no retry."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Retriable(Exception):
    """A failure another attempt may not meet (5xx, 429, timeout, connection refused)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try one action before it goes to the dead-letter topic."""

    max_attempts: int = 5
    max_seconds: float = 120.0
    backoff: float = 0.5
    backoff_max: float = 30.0

    def delay(self, retry: int, rng: random.Random) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**retry)] (AWS's backoff study)."""
        return rng.uniform(0, min(self.backoff_max, self.backoff * 2**retry))


@dataclass
class Delivery:
    """What came of one action: success, or the last error after `attempts` tries."""

    ok: bool
    attempts: int
    error: str | None = None


def reason_of(exc: BaseException) -> str:
    """A one-line reason for an exception, for logs and dead letters."""
    if isinstance(exc, ActionFailed | Retriable):
        return exc.reason
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out: {type(exc).__name__}"
    if isinstance(exc, httpx.TransportError):
        return f"connection failed: {type(exc).__name__}: {exc}"
    return f"{type(exc).__name__}: {exc}"


async def deliver(
    attempt: Callable[[], Awaitable[None]],
    policy: RetryPolicy,
    *,
    on_failure: Callable[[int, str, bool], None] | None = None,
    rng: random.Random | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Delivery:
    """Run `attempt` until it succeeds, fails for good, or the policy's bounds are hit.

    Transport errors (timeouts, refused connections) and `Retriable` are retried;
    `ActionFailed` and anything unexpected end the delivery at once. `on_failure` is
    told (attempt number, reason, will retry) after each failed attempt.
    """
    rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
    deadline = clock() + policy.max_seconds
    attempts = 0
    while True:
        attempts += 1
        try:
            await asyncio.wait_for(attempt(), timeout=max(0.001, deadline - clock()))
            return Delivery(ok=True, attempts=attempts)
        except (Retriable, httpx.TransportError, TimeoutError) as exc:
            reason = reason_of(exc) if not isinstance(exc, TimeoutError) else "timed out"
            wait = policy.delay(attempts - 1, rng)
            again = attempts < policy.max_attempts and clock() + wait < deadline
            if on_failure is not None:
                on_failure(attempts, reason, again)
            if not again:
                return Delivery(ok=False, attempts=attempts, error=reason)
            await asyncio.sleep(wait)
        except ActionFailed as exc:
            if on_failure is not None:
                on_failure(attempts, exc.reason, False)
            return Delivery(ok=False, attempts=attempts, error=exc.reason)
        except Exception as exc:  # noqa: BLE001  # an action's bug must not stop the worker
            reason = f"unexpected error: {reason_of(exc)}"
            if on_failure is not None:
                on_failure(attempts, reason, False)
            return Delivery(ok=False, attempts=attempts, error=reason)
