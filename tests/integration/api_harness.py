"""Start `tripwire api` processes next to a test cluster's workers."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

import httpx

from service.messaging.broker import free_port
from service.readiness import wait_until_ready
from tests.integration.harness import TRIPWIRE, Cluster, Worker, spawn


@dataclass
class Api:
    """One running `tripwire api` process and where it listens."""

    process: Worker
    port: int
    token: str = ""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def client(self, token: str | None = None) -> httpx.Client:
        given = self.token if token is None else token
        headers = {"Authorization": f"Bearer {given}"} if given else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def env(self) -> dict[str, str]:
        """What a CLI process needs to talk to this API."""
        return {"TRIPWIRE_API_URL": self.url, "TRIPWIRE_API_TOKEN": self.token}


def start_api(
    cluster: Cluster,
    name: str = "api",
    worker_urls: str = "",
    token: str = "",
    extra_env: dict[str, str] | None = None,
) -> Api:
    """Start the API on a free port and wait until it has read the automations topic.

    Its data directory (the history) is the cluster's for `name`: the same name again
    keeps it, another name starts empty.
    """
    port = free_port()
    log = cluster.root / f"{name}.log"
    log_file = log.open("ab")
    env = {
        **cluster.env(name),
        "TRIPWIRE_API_PORT": str(port),
        "TRIPWIRE_API_TOKEN": token,
        "TRIPWIRE_WORKER_URLS": worker_urls,
        **(extra_env or {}),
    }
    process = spawn([str(TRIPWIRE), "api"], env=env, stdout=log_file, stderr=subprocess.STDOUT)
    handle = Worker(name, process, log, log_file, port)
    cluster.workers.append(handle)
    if wait_until_ready(f"http://127.0.0.1:{port}/readyz", process):
        return Api(handle, port, token)
    msg = f"the API did not become ready:\n{handle.log_text()}"
    raise AssertionError(msg)


def wait_worker_ready(worker: Worker, timeout: float = 90) -> None:
    """Wait until a worker answers /readyz with 200 (automations loaded, tables recovered)."""
    url = f"http://127.0.0.1:{worker.web_port}/readyz"
    if not wait_until_ready(url, worker.process, timeout):
        msg = f"worker {worker.name} did not become ready:\n{worker.log_text()}"
        raise AssertionError(msg)


def run_cli(
    api: Api, *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """A `tripwire` CLI command against this API, its output captured."""
    return subprocess.run(
        [str(TRIPWIRE), *args],
        env={**os.environ, **api.env()},
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )
