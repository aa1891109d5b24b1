"""The render pool with real render processes: CPU, memory and output limits, and recovery."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import pytest

from service.actions.delivery import Retriable
from service.actions.render_pool import RenderLimits, RenderPool
from service.actions.templates import TemplateFailed

T = TypeVar("T")

# About 10**10 iterations inside Prefect's loop limits: no sandbox check stops it, only
# the CPU budget.
NESTED = "{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}{% endfor %}{% endfor %}"
RECORD: dict[str, Any] = {
    "id": "f1",
    "automation_id": "a1",
    "automation_name": "nightly",
    "trigger_id": "t1",
    "state": "Triggered",
    "bucket": {"prefect.resource.id": "prefect.flow-run.x"},
    "triggering_event": None,
    "fired_at": "2026-01-01T00:00:00Z",
    "child_firings": [],
}
EVENT = {"id": "e1", "event": "prefect.flow-run.Failed", "resource": {"prefect.resource.id": "r"}}


def _run(limits: RenderLimits, body: Callable[[RenderPool], Awaitable[T]]) -> T:
    async def main() -> T:
        pool = RenderPool(limits, processes=2)
        await pool.start()
        try:
            return await body(pool)
        finally:
            await pool.close()

    return asyncio.run(main())


def test_renders_prefects_context_and_passes_plain_strings_through() -> None:
    async def body(pool: RenderPool) -> list[str]:
        return await pool.render(
            ["{{ automation.name }}: {{ event.resource.id }}", "plain", "{{ flow_run.name }}"],
            RECORD,
            EVENT,
            {"flow_run": {"name": "etl-1"}},
        )

    assert _run(RenderLimits(), body) == ["nightly: r", "plain", "etl-1"]


def test_a_render_over_its_cpu_budget_is_killed_and_the_pool_recovers() -> None:
    async def body(pool: RenderPool) -> tuple[str, bool, list[str], list[str]]:
        bad = asyncio.create_task(pool.render([NESTED], RECORD, None))
        await asyncio.sleep(0)  # the bad render takes its process first
        # The other process serves a good render while the bad one burns its budget.
        good = await pool.render(["{{ 6 * 7 }}"], RECORD, None)
        still_running = not bad.done()
        with pytest.raises(TemplateFailed) as failed:
            await bad
        # The killed process was replaced: both processes serve again.
        after = await asyncio.gather(
            pool.render(["{{ 1 + 1 }}"], RECORD, None), pool.render(["{{ 2 + 2 }}"], RECORD, None)
        )
        return str(failed.value), still_running, good, [a[0] for a in after]

    reason, still_running, good, after = _run(RenderLimits(cpu_seconds=1.0), body)
    assert reason == (
        "Template rendering failed: it used more than its 1 s of CPU time "
        "(TRIPWIRE_TEMPLATE_CPU_SECONDS)"
    )
    assert still_running, "the good render waited for the bad one"
    assert good == ["42"]
    assert after == ["2", "4"]


def test_a_render_over_the_memory_limit_fails_with_the_setting_named() -> None:
    async def body(pool: RenderPool) -> str:
        with pytest.raises(TemplateFailed) as failed:
            await pool.render(["{{ 'x' | center(400000000) }}"], RECORD, None)
        assert await pool.render(["{{ 'ok' }}"], RECORD, None) == ["ok"]
        return str(failed.value)

    reason = _run(RenderLimits(max_memory_mib=128, max_output=1_000_000_000), body)
    assert "more than the render process's 128 MiB of memory" in reason
    assert "TRIPWIRE_TEMPLATE_MAX_MEMORY" in reason


def test_the_output_limit_holds_in_the_render_process() -> None:
    async def body(pool: RenderPool) -> str:
        with pytest.raises(TemplateFailed) as failed:
            await pool.render(["{% for i in range(100) %}{{ 'x' * 20 }}{% endfor %}"], RECORD, None)
        return str(failed.value)

    assert "over the limit of 1,000 characters" in _run(RenderLimits(max_output=1_000), body)


def test_a_render_process_killed_from_outside_is_retriable_and_replaced() -> None:
    async def body(pool: RenderPool) -> list[str]:
        for worker in list(pool._all):
            os.kill(worker.process.pid, signal.SIGKILL)
            await worker.process.wait()
        with pytest.raises(Retriable, match="render process ended without an answer"):
            await pool.render(["{{ 1 }}"], RECORD, None)
        with pytest.raises(Retriable):
            await pool.render(["{{ 2 }}"], RECORD, None)
        return await pool.render(["{{ 3 }}"], RECORD, None)

    assert _run(RenderLimits(), body) == ["3"]


def test_a_cancelled_render_does_not_leave_its_answer_for_the_next_one() -> None:
    async def body(pool: RenderPool) -> list[list[str]]:
        slow = asyncio.create_task(pool.render([NESTED], RECORD, None))
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        return [await pool.render([f"{{{{ {n} }}}}"], RECORD, None) for n in range(4)]

    assert _run(RenderLimits(cpu_seconds=5.0), body) == [["0"], ["1"], ["2"], ["3"]]
