"""`tripwire up`: the embedded default, every part on this machine, under one supervisor."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx
import orjson

from service.config import Settings
from service.errors import ConfigError
from service.messaging.automations import publish_automations
from service.messaging.broker import tansu_command
from service.messaging.topics import ensure_topics
from service.models.automations import parse_automations

__all__ = [
    "STOP_SIGNALS",
    "die_with_parent",
    "port_in_use",
    "run_up",
    "stop_processes",
]

STOP_SIGNALS = (signal.SIGHUP, signal.SIGINT, signal.SIGTERM)
# A part that has not answered ready by then is reported rather than waited for forever.
READY_SECONDS = 180.0
# Faust leaves its group and flushes within seconds; 30 s covers a loaded machine.
STOP_SECONDS = 30.0
TAIL_LINES = 20
POLL_SECONDS = 0.2

_PR_SET_PDEATHSIG = 1
# Loaded before any fork: the child between fork and exec must only make the call.
_LIBC: Any = ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None] | None:
    """A `preexec_fn` that has the child get `sig` when this process ends, even by SIGKILL.

    Linux's PR_SET_PDEATHSIG; it survives the exec. None elsewhere (no such mechanism):
    there an orderly stop still stops every child, a SIGKILL of the parent does not.
    """
    if _LIBC is None:
        return None
    parent = os.getpid()
    prctl = _LIBC.prctl

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
        # The parent may have died between fork and prctl: then no signal would come.
        if os.getppid() != parent:
            os.kill(os.getpid(), sig)

    return preexec


def port_in_use(host: str, port: int) -> bool:
    """Whether a listening socket holds host:port (a TIME_WAIT leftover does not count)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    with socket.socket(family, kind, proto) as sock:
        # As the servers bind: with SO_REUSEADDR only a live listener makes bind fail.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return True
    return False


def stop_processes(processes: list[subprocess.Popen[bytes]], seconds: float = STOP_SECONDS) -> None:
    """SIGTERM every process still running, then kill those that outlive `seconds`."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(seconds)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class _Part:
    """One child of `up`: its process (leader of its own process group) and its log."""

    name: str
    what: str
    process: subprocess.Popen[bytes]
    log: Path
    forward: bool
    _file: IO[bytes] | None = None
    _offset: int = 0
    _partial: bytes = b""

    def tail(self, lines: int = TAIL_LINES) -> list[str]:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return []
        return list(deque(text.splitlines(), maxlen=lines))

    def new_lines(self) -> list[bytes]:
        """Complete lines written to the log since the last call."""
        if self._file is None:
            try:
                self._file = self.log.open("rb")
            except OSError:
                return []
        self._file.seek(self._offset)
        chunk = self._file.read()
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        return lines

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


@dataclass
class _Supervisor:
    """Starts the parts, watches them and the stop signals, stops them all in order."""

    logs: Path
    prefix_lines: bool
    parts: list[_Part] = field(default_factory=list)
    stop_signal: int | None = None
    hurry: bool = False
    failed: _Part | None = None
    _previous: dict[int, Any] = field(default_factory=dict)

    def install(self) -> None:
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)

    def restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        # Only noted here: every loop of `up` looks at it, so no child is ever started
        # halfway and lost, and a second signal while stopping kills what is left.
        if self.stop_signal is None:
            self.stop_signal = signum
        else:
            self.hurry = True

    def spawn(
        self,
        name: str,
        what: str,
        command: list[str],
        env: dict[str, str],
        *,
        forward: bool = True,
    ) -> _Part:
        log = self.logs / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(  # noqa: S603  # fixed commands: our entry point, Tansu
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own process group: a terminal's Ctrl-C reaches `up` alone, which
                # stops the parts in order (the broker last), and stopping a part can
                # reach the processes it started (the action worker's template renderers).
                start_new_session=True,
                # preexec_fn is unsafe only next to threads, and `up` runs none.
                # SIGKILL: a part outliving `up` has lost the broker too, and Faust's
                # orderly stop would wait for it (measured: still running after 30 s).
                # `up` discards the worker's tables at its next start anyway, and every
                # part is built to survive a crash (docs/reliability.md).
                preexec_fn=die_with_parent(signal.SIGKILL),
            )
        part = _Part(name, what, process, log, forward)
        self.parts.append(part)
        return part

    def healthy(self) -> bool:
        """Forward new log lines; False once a stop signal came or a part exited."""
        self.pump()
        if self.stop_signal is not None:
            return False
        for part in self.parts:
            if part.process.poll() is not None:
                self.failed = part
                return False
        return True

    def pump(self) -> None:
        for part in self.parts:
            if not part.forward:
                continue
            for line in part.new_lines():
                text = line.decode(errors="replace")
                print(f"{part.name} | {text}" if self.prefix_lines else text, file=sys.stderr)
        sys.stderr.flush()

    def wait_for(self, condition: Callable[[], bool], what: str) -> bool:
        """Poll `condition` until True; False when the run ends first (signal, exit)."""
        deadline = time.monotonic() + READY_SECONDS
        while self.healthy():
            if condition():
                return True
            if time.monotonic() > deadline:
                msg = f"{what} did not become ready within {READY_SECONDS:g} s"
                raise ConfigError(msg)
            time.sleep(POLL_SECONDS)
        return False

    def run(self) -> None:
        while self.healthy():
            time.sleep(POLL_SECONDS)

    def stop_all(self) -> None:
        """SIGTERM the parts, the broker last (the others leave their groups through it)."""
        brokers = [p for p in self.parts if p.name == "broker"]
        others = [p for p in self.parts if p.name != "broker"]
        for group in (others, brokers):
            for part in group:
                if part.process.poll() is None:
                    part.process.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + STOP_SECONDS
            for part in group:
                while part.process.poll() is None and time.monotonic() < deadline:
                    if self.hurry:
                        break
                    self.pump()
                    time.sleep(0.05)
                # Whatever is left of the part's process group, the leader included.
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(part.process.pid, signal.SIGKILL)
                part.process.wait()
        self.pump()
        for part in self.parts:
            part.close()

    def exit_status(self) -> int:
        """0 after a stop signal; else the status of the part that exited (128+N: signal N)."""
        part = self.failed
        if part is None:
            return 0
        code = part.process.returncode
        status = 128 - code if code < 0 else code
        how = f"signal {-code}" if code < 0 else f"status {code}"
        print(
            f"tripwire up: {part.what} (pid {part.process.pid}) exited with {how}; "
            f"stopped the others. Last lines of {part.log}:",
            file=sys.stderr,
        )
        for line in part.tail() or ["(empty: at the default log level a part logs warnings only)"]:
            print(f"  {line}", file=sys.stderr)
        # A part that exits 0 on its own still ended the service.
        return status or 1


def _announce(message: str) -> None:
    print(f"tripwire up: {message}", flush=True)


def run_up(settings: Settings) -> int:
    """Run the broker, worker, action worker and API until a signal or a part's exit."""
    host, _, port_text = settings.kafka_bootstrap.partition(",")[0].rpartition(":")
    if not port_text.isdigit():
        msg = f"TRIPWIRE_KAFKA_BOOTSTRAP must be host:port, not {settings.kafka_bootstrap!r}"
        raise ConfigError(msg)
    host = host or "127.0.0.1"
    port = int(port_text)
    _check_ports(settings, host, port)
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    supervisor = _Supervisor(logs, prefix_lines=settings.log_format == "text")
    supervisor.install()
    try:
        _start(supervisor, settings, host, port)
        return supervisor.exit_status()
    finally:
        supervisor.stop_all()
        supervisor.restore()
        _announce("stopped")


def _check_ports(settings: Settings, host: str, port: int) -> None:
    """Refuse to start on a busy port: a part would die, or talk to someone else's server."""
    web = settings.worker_web_host
    wanted = [
        ("TRIPWIRE_KAFKA_BOOTSTRAP", host, port),
        ("TRIPWIRE_API_PORT", settings.api_host, settings.api_port),
        ("TRIPWIRE_WORKER_WEB_PORT", web, settings.worker_web_port),
        ("TRIPWIRE_ACTIONS_WEB_PORT", web, settings.actions_web_port),
    ]
    seen: dict[int, str] = {}
    for setting, address, number in wanted:
        if not number:
            continue  # that part serves no web port
        if number in seen:
            msg = f"port {number} is given twice: {seen[number]} and {setting}"
            raise ConfigError(msg)
        seen[number] = setting
        if port_in_use(address, number):
            msg = (
                f"port {address}:{number} ({setting}) is in use: another `tripwire up` or "
                "server holds it; stop it or set another port"
            )
            raise ConfigError(msg)


def _start(supervisor: _Supervisor, settings: Settings, host: str, port: int) -> None:
    started = time.monotonic()
    bootstrap = f"{host}:{port}"
    broker = supervisor.spawn(
        "broker",
        f"the broker on {bootstrap}",
        tansu_command(host, port),
        dict(os.environ),
        forward=False,
    )
    # A broker that cannot bind exits: that is seen here, never a fall-through to a
    # broker someone else runs on the port.
    if not supervisor.wait_for(lambda: _broker_answers(bootstrap), f"the broker on {bootstrap}"):
        return
    _announce(f"broker (Tansu, in memory) on {bootstrap}, pid {broker.process.pid}")
    asyncio.run(_prepare(settings))
    if not supervisor.healthy():
        return

    # `up` announces each part itself: at the default level the parts log warnings only.
    level = "warning" if settings.log_level == "notice" else settings.log_level
    env = dict(os.environ, TRIPWIRE_KAFKA_BOOTSTRAP=bootstrap, TRIPWIRE_LOG_LEVEL=level)
    python = [sys.executable, "-m", "service.cli"]
    web_host = settings.worker_web_host
    worker_web = _web(web_host, settings.worker_web_port)
    actions_web = _web(web_host, settings.actions_web_port)
    api_base = f"http://{settings.api_host}:{settings.api_port}"
    worker = supervisor.spawn("worker", "the stream worker", [*python, "worker"], env)
    _announce(f"stream worker started, pid {worker.process.pid}, {worker_web or 'no web server'}")
    actions = supervisor.spawn("actions", "the action worker", [*python, "actions"], env)
    prefect = settings.prefect_api_url or "none (TRIPWIRE_PREFECT_API_URL)"
    _announce(
        f"action worker started, pid {actions.process.pid}, {actions_web or 'no web server'}; "
        f"dead letters to '{settings.topic_actions_dlq}'; Prefect API: {prefect}"
    )
    # The API's explain asks the one worker `up` runs, wherever it listens.
    api_env = dict(env, TRIPWIRE_WORKER_URLS=worker_web)
    api = supervisor.spawn("api", "the automations API", [*python, "api"], api_env)
    _announce(f"automations API started, pid {api.process.pid}, {api_base}/api")

    parts = ((worker_web, "the stream worker"), (actions_web, "the action worker"))
    for base, what in (*parts, (api_base, "the automations API")):
        if base and not supervisor.wait_for(partial(_answers_ready, f"{base}/readyz"), what):
            return
    console = f"console on {api_base}/console/; " if settings.console_enabled else ""
    _announce(
        f"ready in {time.monotonic() - started:.1f} s: produce events to "
        f"'{settings.topic_events}', read firings from '{settings.topic_firings}', "
        f"API on {api_base}/api (docs: /api/docs; PREFECT_API_URL can point here); "
        f"{console}Ctrl-C stops everything"
    )
    supervisor.run()


def _web(host: str, port: int) -> str:
    return f"http://{host}:{port}" if port else ""


def _answers_ready(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _broker_answers(bootstrap: str) -> bool:
    """A Metadata request is answered (an accepted TCP connect is not enough)."""
    host, _, port = bootstrap.rpartition(":")
    # A plain connect first: aiokafka logs an ERROR for every refused connection.
    try:
        socket.create_connection((host, int(port)), timeout=1).close()
    except OSError:
        return False
    return asyncio.run(_metadata(bootstrap))


async def _metadata(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=2000)
    try:
        await admin.start()
        await admin.list_topics()
    except Exception:  # noqa: BLE001  # any failure means "not ready yet"
        return False
    finally:
        await admin.close()
    return True


async def _prepare(settings: Settings) -> None:
    await ensure_topics(settings)
    # The embedded broker starts empty every time: table state from an earlier broker
    # life would not match its changelogs, so it is discarded, and the automations
    # saved in the data directory are published again.
    shutil.rmtree(settings.state_dir, ignore_errors=True)
    mirror = settings.data_dir / "automations.json"
    if mirror.is_file():
        automations = parse_automations(orjson.loads(mirror.read_bytes()))
        await publish_automations(settings, automations)
        _announce(f"re-published {len(automations)} saved automations from {mirror}")
