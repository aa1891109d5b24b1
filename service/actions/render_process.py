"""A render process: one action's templates at a time, killed by the kernel past its CPU budget.

Started by service/actions/render_pool.py as `python -m service.actions.render_process
CPU_SECONDS MAX_OUTPUT MAX_MEMORY_BYTES`; speaks length-prefixed JSON frames on stdin and
stdout. Each request arms ITIMER_PROF with the CPU budget and leaves SIGPROF at its
default action, which terminates the process: the kernel stops a render even inside one
long C call (`9 ** (9 ** 8)` holds the GIL until it is done, so no Python-level timer,
thread or signal handler could). The pool sees the process end by SIGPROF and reports
the budget.
"""

from __future__ import annotations

import os
import resource
import signal
import struct
import sys
from typing import Any, BinaryIO

import orjson

from service.actions.templates import Sandbox, TemplateFailed, attrs, render_all, template_context

__all__ = ["HEADER", "main", "read_frame", "write_frame"]

HEADER = struct.Struct(">I")


def read_frame(stream: BinaryIO) -> bytes | None:
    """One frame, or None at end of input (the pool closed the pipe)."""
    header = stream.read(HEADER.size)
    if len(header) < HEADER.size:
        return None
    (size,) = HEADER.unpack(header)
    body = stream.read(size)
    if len(body) < size:
        return None
    return body


def write_frame(stream: BinaryIO, body: bytes) -> None:
    """Write and flush one frame."""
    stream.write(HEADER.pack(len(body)) + body)
    stream.flush()


def _answer(request: dict[str, Any], sandbox: Sandbox) -> dict[str, Any]:
    context = template_context(request["record"], request["event"])
    for name, data in (request.get("objects") or {}).items():
        context[name] = attrs(data) if data is not None else None
    try:
        return {"ok": render_all(request["templates"], context, sandbox)}
    except TemplateFailed as exc:
        return {"error": str(exc)}
    except MemoryError:
        limit = resource.getrlimit(resource.RLIMIT_AS)[0] // 1_048_576
        return {
            "error": (
                f"Template rendering failed: it needed more than the render process's "
                f"{limit:,} MiB of memory (TRIPWIRE_TEMPLATE_MAX_MEMORY)"
            )
        }


def main(argv: list[str]) -> int:
    cpu_seconds, max_output, max_memory = float(argv[0]), int(argv[1]), int(argv[2])
    # The protocol owns the real stdout; anything else printing goes to stderr (the log).
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    signal.signal(signal.SIGPROF, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if max_memory:
        resource.setrlimit(resource.RLIMIT_AS, (max_memory, max_memory))
    sandbox = Sandbox(max_output)
    while (body := read_frame(requests)) is not None:
        signal.setitimer(signal.ITIMER_PROF, cpu_seconds)
        try:
            reply = _answer(orjson.loads(body), sandbox)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        write_frame(replies, orjson.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
