"""A TCP proxy in front of a test broker that can refuse writes to, or hold reads of, a topic.

Tansu writes any topic it is asked to, deleted or never created, so a dead-letter topic
that cannot be written is made here, on the wire: while `refuse` names a topic, a
Produce request that carries it closes its connection, as a broker that cannot take the
write would fail it, and the producer retries until its request timeout. The broker
advertises the proxy's address, so every client's traffic passes through it. While
`hold` names a topic, a Fetch request that carries it waits (and the requests behind it
on its connection), as a stalled broker would keep a reader waiting.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

from service.messaging.broker import free_port, tansu_command, wait_ready
from tests.integration.harness import Cluster, kill_group, spawn

_PRODUCE = 0  # Kafka's api key of a Produce request
_FETCH = 1  # and of a Fetch request


class FaultProxy:
    """Forwards 127.0.0.1:port to the broker at 127.0.0.1:upstream."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.refuse: bytes | None = None
        self.refused = 0
        self.hold: bytes | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", self.port)
        )
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream)

        async def requests() -> None:
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(head, "big"))
                refuse = self.refuse
                produce = int.from_bytes(body[:2], "big") == _PRODUCE
                if refuse is not None and produce and refuse in body:
                    self.refused += 1
                    return  # the connection closes with the write unanswered
                fetch = int.from_bytes(body[:2], "big") == _FETCH
                # Polled: `hold` is set from the test's thread, not this loop's.
                while fetch and self.hold is not None and self.hold in body:  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                up_writer.write(head + body)
                await up_writer.drain()

        async def responses() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        tasks = [asyncio.ensure_future(requests()), asyncio.ensure_future(responses())]
        with contextlib.suppress(Exception):
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            task.cancel()
        for stream in (writer, up_writer):
            stream.close()


@contextlib.contextmanager
def proxied_cluster(root: Path) -> Iterator[tuple[Cluster, FaultProxy]]:
    """A broker of its own, every client's traffic through a proxy it advertises."""
    broker_port = free_port()
    proxy = FaultProxy(broker_port)
    proxy.start()
    command = tansu_command("127.0.0.1", broker_port, advertised=f"127.0.0.1:{proxy.port}")
    with (root / "tansu.log").open("ab") as log:
        broker = spawn(command, stdout=log, stderr=subprocess.STDOUT)
    world = Cluster(f"127.0.0.1:{proxy.port}", root)
    try:
        asyncio.run(wait_ready(world.bootstrap))
        world.create_topics()
        yield world, proxy
    finally:
        world.stop_all()
        kill_group(broker)
        proxy.stop()
