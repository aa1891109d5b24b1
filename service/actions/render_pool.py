"""Template renders off the action worker's event loop, in processes killed past their budget.

A render used to run on the worker's event loop: `{{ (9 ** (9 ** 8)) % 7 }}` held it for
58 s, so every other action and `/healthz` waited. Now each action's templates go, in one
request, to one of a few long-lived render processes (service/actions/render_process.py);
the event loop only waits on a pipe. A process that overruns its CPU budget is
terminated by the kernel and replaced, and the action fails for good with that reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from service.actions.delivery import Retriable
from service.actions.render_process import HEADER
from service.actions.templates import TemplateFailed, maybe_template

__all__ = ["RenderLimits", "RenderPool"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderLimits:
    """What one action's renders may use (settings TRIPWIRE_TEMPLATE_*)."""

    cpu_seconds: float = 1.0
    max_output: int = 1_000_000
    max_memory_mib: int = 512


class _Process:
    """One render process and its pipes."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def ask(self, body: bytes) -> dict[str, Any]:
        stdin, stdout = self.process.stdin, self.process.stdout
        if stdin is None or stdout is None:
            msg = "a render process was started without its pipes"
            raise RuntimeError(msg)
        stdin.write(HEADER.pack(len(body)) + body)
        await stdin.drain()
        (size,) = HEADER.unpack(await stdout.readexactly(HEADER.size))
        reply: dict[str, Any] = orjson.loads(await stdout.readexactly(size))
        return reply

    def kill(self) -> None:
        # Not Process.kill(): Popen polls first and may reap the process itself, and then
        # asyncio's child watcher reports exit status 255 instead of the real signal.
        if self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.process.pid, signal.SIGKILL)


class RenderPool:
    """A fixed number of render processes; a render waits for an idle one."""

    def __init__(self, limits: RenderLimits, processes: int = 2) -> None:
        self.limits = limits
        self.size = processes
        self._idle: asyncio.Queue[_Process] = asyncio.Queue()
        self._all: set[_Process] = set()

    async def start(self) -> None:
        for _ in range(self.size):
            self._idle.put_nowait(await self._spawn())

    async def close(self) -> None:
        for worker in list(self._all):
            stdin = worker.process.stdin
            if stdin is not None:
                stdin.close()  # the process exits at the end of its input
        for worker in list(self._all):
            try:
                await asyncio.wait_for(worker.process.wait(), timeout=5)
            except TimeoutError:
                worker.kill()
                await worker.process.wait()
        self._all.clear()

    async def _spawn(self) -> _Process:
        limits = self.limits
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "service.actions.render_process",
            str(limits.cpu_seconds),
            str(limits.max_output),
            str(limits.max_memory_mib * 1_048_576),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        worker = _Process(process)
        self._all.add(worker)
        return worker

    async def _replace(self, worker: _Process) -> None:
        worker.kill()
        await worker.process.wait()
        self._all.discard(worker)
        self._idle.put_nowait(await self._spawn())

    async def render(
        self,
        templates: Sequence[str],
        record: Mapping[str, Any],
        event: Mapping[str, Any] | None,
        objects: Mapping[str, Any] | None = None,
    ) -> list[str]:
        """The templates rendered with Prefect's context; TemplateFailed says why not.

        Strings without Jinja syntax come back as they are, without a round trip.
        Raises Retriable when a render process died for a reason other than the
        template's budget (killed from outside): another attempt may succeed.
        """
        wanted = [i for i, t in enumerate(templates) if maybe_template(t)]
        out = list(templates)
        if not wanted:
            return out
        body = orjson.dumps(
            {
                "templates": [templates[i] for i in wanted],
                "record": record,
                "event": event,
                "objects": objects or {},
            }
        )
        worker = await self._idle.get()
        try:
            reply = await worker.ask(body)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            # Shielded: the replacement must be spawned even if this render is cancelled.
            await asyncio.shield(self._replace(worker))
            raise self._died(worker.process.returncode) from exc
        except BaseException:
            # Cancelled mid-render (the action's deadline, shutdown): the reply may still
            # come, so this process cannot serve the next request.
            await asyncio.shield(self._replace(worker))
            raise
        self._idle.put_nowait(worker)
        if "error" in reply:
            raise TemplateFailed(str(reply["error"]))
        for i, text in zip(wanted, reply["ok"], strict=True):
            out[i] = text
        return out

    def _died(self, returncode: int | None) -> Exception:
        if returncode == -signal.SIGPROF:
            msg = (
                f"Template rendering failed: it used more than its "
                f"{self.limits.cpu_seconds:g} s of CPU time (TRIPWIRE_TEMPLATE_CPU_SECONDS)"
            )
            return TemplateFailed(msg)
        msg = f"the render process ended without an answer (exit status {returncode})"
        logger.warning("%s; replaced", msg)
        return Retriable(msg)
