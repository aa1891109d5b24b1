"""Screenshots of the web console for the docs: `tripwire up` on free ports, demo data, Chromium.

    .venv/bin/python -m tools.console_screenshots [--out docs/img]   # from the checkout

Writes console-automations.png, console-automation.png, console-backtest.png (the
automation page's "test a change": repeated-crashes with its threshold tightened from
3 to 4, against the last 6 hours), console-feed.png and console-dead-letters.png. Needs `make system-deps` (Debian's chromium and chromedriver).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
from aiokafka import AIOKafkaProducer

from service.embedded import die_with_parent
from service.messaging.broker import free_port
from tools.browser import chromium

ROOT = Path(__file__).resolve().parents[1]
TRIPWIRE = Path(sys.executable).with_name("tripwire")
WAIT = 120.0


def _automations(hook: str) -> list[dict[str, Any]]:
    return [
        {
            "name": "flow-run-failed",
            "description": "Fires once per failed flow run.",
            "tags": ["demo"],
            "trigger": {
                "type": "event",
                "posture": "Reactive",
                "expect": ["prefect.flow-run.Failed"],
                "match": {"prefect.resource.id": "prefect.flow-run.*"},
                "for_each": ["prefect.resource.id"],
                "threshold": 1,
                "within": 0,
            },
            "actions": [{"type": "do-nothing"}],
        },
        {
            "name": "repeated-crashes",
            "description": "Three crashes of one deployment within an hour page the on-call.",
            "trigger": {
                "type": "event",
                "posture": "Reactive",
                "expect": ["prefect.flow-run.Crashed"],
                "match_related": {"prefect.resource.role": "deployment"},
                "for_each": ["related:deployment:prefect.resource.id"],
                "threshold": 3,
                "within": 3600,
            },
            "actions": [
                {"type": "do-nothing"},
                {"type": "call-webhook", "url": hook, "payload": "{{ event.id }}"},
            ],
        },
        {
            "name": "stuck-runs",
            "trigger": {
                "type": "event",
                "posture": "Proactive",
                "after": ["prefect.flow-run.Running"],
                "expect": ["prefect.flow-run.Completed", "prefect.flow-run.Failed"],
                "for_each": ["prefect.resource.id"],
                "threshold": 1,
                "within": 600,
            },
            "actions": [{"type": "do-nothing"}],
        },
        {
            "name": "nightly-report-late",
            "enabled": False,
            "trigger": {
                "type": "event",
                "posture": "Reactive",
                "expect": ["prefect.flow-run.Late"],
                "threshold": 1,
                "within": 0,
            },
            "actions": [{"type": "do-nothing"}],
        },
    ]


def _event(name: str, run: str, deployment: str, at: datetime) -> dict[str, Any]:
    return {
        "id": str(uuid.uuid4()),
        "occurred": at.isoformat(),
        "event": f"prefect.flow-run.{name}",
        "resource": {
            "prefect.resource.id": f"prefect.flow-run.{run}",
            "prefect.resource.name": run,
        },
        "related": [
            {
                "prefect.resource.id": f"prefect.deployment.{deployment}",
                "prefect.resource.role": "deployment",
            }
        ],
    }


class Demo:
    """`tripwire up` in a temporary directory, every port its own."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.api_port = free_port()
        self.origin = f"http://127.0.0.1:{self.api_port}"
        self.env = {
            **os.environ,
            "TRIPWIRE_KAFKA_BOOTSTRAP": f"127.0.0.1:{free_port()}",
            "TRIPWIRE_DATA_DIR": str(root / "data"),
            "TRIPWIRE_API_PORT": str(self.api_port),
            "TRIPWIRE_API_URL": f"{self.origin}/api",
            "TRIPWIRE_WORKER_WEB_PORT": str(free_port()),
            "TRIPWIRE_ACTIONS_WEB_PORT": str(free_port()),
            "TRIPWIRE_TICK_INTERVAL": "1",
            # The demo's failing webhook is dead-lettered after two quick tries.
            "TRIPWIRE_ACTION_MAX_ATTEMPTS": "2",
            "TRIPWIRE_ACTION_BACKOFF": "0.1",
        }
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.root / "up.log").open("wb")
        self.process = subprocess.Popen(  # noqa: S603  # our own entry point
            [str(TRIPWIRE), "up"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=die_with_parent(signal.SIGKILL),  # no threads yet
        )
        _until(lambda: "ready in" in (self.root / "up.log").read_text(), "tripwire up to be ready")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            self.process.wait(60)

    def cli(self, *args: str, stdin: bytes | None = None) -> str:
        done = subprocess.run(  # noqa: S603  # our own entry point
            [str(TRIPWIRE), *args], env=self.env, input=stdin, capture_output=True, check=True
        )
        return done.stdout.decode()

    def produce(self, events: list[dict[str, Any]]) -> None:
        self.cli("events", "produce", "-", stdin=b"\n".join(orjson.dumps(e) for e in events))

    def get(self, path: str) -> Any:
        return httpx.get(f"{self.origin}{path}", timeout=10).json()


def _until(check: Callable[[], Any], what: str) -> Any:
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.3)
    msg = f"timed out waiting for {what}"
    raise RuntimeError(msg)


def _data(demo: Demo) -> str:
    """Apply the demo automations, produce events; the id of the one with failed actions."""
    hook = f"http://127.0.0.1:{free_port()}/hook"  # nothing listens: the action fails
    body = orjson.dumps({"automations": _automations(hook)})
    demo.cli("automations", "apply", "-", stdin=body)
    now = datetime.now(UTC)
    events = []
    for n in range(4):
        at = now - timedelta(seconds=40 - n)
        events.append(_event("Running", f"etl-{n}", "etl", at))
        events.append(_event("Failed" if n % 2 else "Completed", f"etl-{n}", "etl", at))
    events += [_event("Crashed", f"sync-{n}", "sync", now) for n in range(4)]
    # Earlier history for the backtest: bursts of crashes of other deployments hours
    # ago, produced first so that each partition holds them before the newer events (an
    # older event after newer ones is late, and its bucket is swept before its neighbours).
    history = []
    for hours, deployment, crashes in ((5, "ingest", 3), (3, "billing", 5), (2, "ingest", 4)):
        at = now - timedelta(hours=hours)
        history += [
            _event("Crashed", f"{deployment}-{hours}-{n}", deployment, at + timedelta(minutes=n))
            for n in range(crashes)
        ]
    demo.produce(history + events)
    # Records the worker cannot use go to the events dead-letter topic (`events produce`
    # refuses them, so they are produced as raw records).
    asyncio.run(
        _produce_raw(
            demo.env["TRIPWIRE_KAFKA_BOOTSTRAP"],
            [
                (
                    b"prefect.flow-run.etl-9",
                    b'{"id": "not-a-uuid", "event": "prefect.flow-run.Failed"}',
                ),
                (b"legacy-exporter", b"<event>flow failed</event>"),
            ],
        )
    )
    automations = {a["name"]: a["id"] for a in _list(demo)}
    crashes = automations["repeated-crashes"]
    _until(lambda: len(demo.get("/api/dead-letters")["dead_letters"]) >= 3, "the dead letters")
    return str(crashes)


async def _produce_raw(bootstrap: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in records:
            await producer.send_and_wait("tripwire.events", value, key=key)
    finally:
        await producer.stop()


def _list(demo: Demo) -> list[dict[str, Any]]:
    answer = httpx.post(f"{demo.origin}/api/automations/filter", json={}, timeout=10)
    return list(answer.json())


def _shoot(demo: Demo, crashes: str, out: Path, profile: Path) -> list[Path]:
    browser = chromium(profile, 1280, 900)
    shots: list[Path] = []
    try:

        def save(name: str) -> None:
            # The whole page's height, so nothing below the fold is cut off.
            height = browser.execute_script(
                "return document.documentElement.scrollHeight"
                " + (window.outerHeight - window.innerHeight);"
            )
            browser.set_window_size(1280, max(600, min(int(height) + 24, 2400)))
            path = out / f"console-{name}.png"
            browser.save_screenshot(str(path))
            shots.append(path)
            browser.set_window_size(1280, 900)

        browser.get(f"{demo.origin}/console/")
        save("automations")
        _until(
            lambda: demo.get(f"/api/automations/{crashes}/explain")["recent_firings"],
            "a firing of repeated-crashes",
        )

        def failed_action() -> bool:
            browser.get(f"{demo.origin}/console/automations/{crashes}?range=1h")
            return bool(browser.find_elements("css selector", "#failed-actions tbody tr"))

        _until(failed_action, "the failed action")
        save("automation")
        # Test a change: the threshold tightened to 4, against the last 6 hours.
        form = browser.find_element("id", "backtest-json")
        tested = orjson.loads(str(form.get_property("value")))
        tested["trigger"]["threshold"] = 4
        browser.execute_script(
            "arguments[0].value = arguments[1];",
            form,
            orjson.dumps(tested, option=orjson.OPT_INDENT_2).decode(),
        )
        browser.find_element("css selector", '#backtest-hours option[value="6"]').click()
        browser.find_element("id", "backtest-run").click()
        _until(lambda: browser.find_elements("id", "backtest-result"), "the backtest's result")
        browser.set_window_size(1280, 2400)  # the section whole, not cut at the window
        path = out / "console-backtest.png"
        browser.find_element("id", "backtest").screenshot(str(path))
        shots.append(path)
        browser.set_window_size(1280, 900)
        browser.get(f"{demo.origin}/console/feed")
        _until(
            lambda: browser.find_element("id", "live-state").get_attribute("data-state") == "live",
            "the live feed",
        )
        now = datetime.now(UTC)
        demo.produce([_event("Failed", f"live-{n}", "etl", now) for n in range(2)])
        _until(lambda: browser.find_elements("css selector", "tr.fresh"), "live rows")
        save("feed")
        browser.get(f"{demo.origin}/console/dead-letters")
        save("dead-letters")
    finally:
        browser.quit()
    return shots


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tripwire-shots-") as tmp:
        demo = Demo(Path(tmp))
        try:
            demo.start()
            crashes = _data(demo)
            for path in _shoot(demo, crashes, args.out, Path(tmp) / "profile"):
                print(f"wrote {path}")
        finally:
            demo.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
