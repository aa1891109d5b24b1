"""A real HTTP server that records requests: the webhook and API targets of action tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from service.messaging.broker import free_port

# (status, body) for a request: path and how many times that path was asked before.
Behaviour = Callable[[int], tuple[int, bytes]]


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.time)  # wall clock, once the body was read


@dataclass
class Target:
    """Routes by path; every request is recorded before it is answered."""

    port: int = 0
    requests: list[Request] = field(default_factory=list)
    routes: dict[str, Behaviour] = field(default_factory=dict)
    hang_seconds: float = 30.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def on(self, path: str, behaviour: Behaviour) -> None:
        self.routes[path] = behaviour

    def to(self, path: str) -> list[Request]:
        with self.lock:
            return [r for r in self.requests if r.path == path]

    def wait_for(self, path: str, count: int, timeout: float = 60) -> list[Request]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(path)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        msg = f"{path}: {len(self.to(path))} requests, wanted {count}"
        raise AssertionError(msg)


def always(status: int, body: bytes = b"{}") -> Behaviour:
    return lambda _: (status, body)


def failing_first(times: int, status: int = 500) -> Behaviour:
    return lambda seen: (status, b"{}") if seen < times else (200, b"{}")


HANG = -1  # a behaviour answering HANG holds the request for `hang_seconds`


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 refuses connections when many requests hang at once.
    request_queue_size = 128
    daemon_threads = True


@contextmanager
def http_target() -> Iterator[Target]:
    target = Target(port=free_port())

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?")[0]
            with target.lock:
                seen = sum(1 for r in target.requests if r.path == path)
                target.requests.append(Request(self.command, path, dict(self.headers), body))
            behaviour = target.routes.get(path, always(404))
            status, answer = behaviour(seen)
            if status == HANG:
                time.sleep(target.hang_seconds)
                status, answer = 200, b"{}"
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)
            except OSError:
                pass  # the client gave up (timeout): nothing to answer

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve

        def log_message(self, format: str, *args: object) -> None:
            return

    server = _Server(("127.0.0.1", target.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield target
    finally:
        server.shutdown()
        server.server_close()
