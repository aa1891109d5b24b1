"""Prefect 3.9.1's own trigger engine over replay files, for the side-by-side benchmark.

    .venv-prefect/bin/python bench/prefect_engine.py --automations FILE --events FILE
        [--ticks FILE] [--proactive-mode direct|scheduled] [--timing FILE]

Runs in the Prefect venv (`make prefect-env`), never in Tripwire's. It drives
`prefect.server.events.triggers` in-process, the way the conformance expectations
were made (tests/conformance/README.md): a throw-away SQLite database in a temporary
PREFECT_HOME, a simulated wall clock (`prefect.types._datetime.now` patched), and the
events fed in arrival order through the triggers consumer's message handler logic
(seen-id check, `reactive_evaluation`, `EventArrivedEarly` swallowed). At a tick `T`,
as in the replay contract's time model: lost followers, then `proactive_evaluation`
of every proactive event trigger (input order; `direct`) or of the due ones
(`scheduled`), then the held-event sweep and `sweep_closed_buckets`. `act()` is
replaced by a recorder, so no action or state event is published; the firings are
printed on stdout in the replay contract's format, one JSON object per line, so
`tests/conformance/check.py --engine` can check this driver against Prefect's own
recorded expectations.

`--timing FILE` writes JSON: seconds spent in event evaluation and in ticks (wall
clock, `time.perf_counter`), event and tick counts, and setup seconds (database
migration and loading the automations, not timed as evaluation). Prefect's loggers are
set to WARNING so that formatting log lines is not counted against it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

_HOME = tempfile.mkdtemp(prefix="tripwire-bench-prefect-")
os.environ["PREFECT_HOME"] = _HOME
os.environ["PREFECT_API_DATABASE_CONNECTION_URL"] = f"sqlite+aiosqlite:///{_HOME}/prefect.db"
os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "WARNING")
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"

import prefect.types._datetime as prefect_datetime  # noqa: E402

_REAL_NOW = prefect_datetime.now
_clock: list[datetime] = [datetime(2026, 1, 1, tzinfo=UTC)]


def _now(tz: Any = "UTC") -> Any:
    return prefect_datetime.create_datetime_instance(_clock[0])


def set_clock(moment: datetime) -> None:
    _clock[0] = moment


prefect_datetime.now = _now  # every `prefect.types._datetime.now(...)` call reads our clock

from prefect.server.database import provide_database_interface  # noqa: E402
from prefect.server.events import triggers  # noqa: E402
from prefect.server.events.models import automation_held_events  # noqa: E402
from prefect.server.events.models.automations import automations_session  # noqa: E402
from prefect.server.events.ordering import (  # noqa: E402
    EventArrivedEarly,
    get_triggers_causal_ordering,
)
from prefect.server.events.schemas.automations import (  # noqa: E402
    Automation,
    EventTrigger,
    Firing,
    Posture,
)
from prefect.server.events.schemas.events import ReceivedEvent  # noqa: E402
from prefect.settings import PREFECT_EVENTS_EXPIRED_BUCKET_BUFFER  # noqa: E402

FIRINGS: list[tuple[Firing, datetime]] = []


async def _record(firing: Firing) -> None:
    FIRINGS.append((firing, _clock[0]))


triggers.act = _record  # `fire()` looks `act` up in the module at call time


def _iso(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def child_json(firing: Firing) -> dict[str, Any]:
    out: dict[str, Any] = {
        "trigger_id": str(firing.trigger.id),
        "bucket": dict(firing.triggering_labels),
        "triggering_event": str(firing.triggering_event.id) if firing.triggering_event else None,
        "fired_at": _iso(firing.triggered),
    }
    if firing.triggering_firings:
        out["child_firings"] = [child_json(child) for child in firing.triggering_firings]
    return out


def firing_line(firing: Firing) -> dict[str, Any]:
    line: dict[str, Any] = {
        "automation": firing.trigger.automation.name,
        "trigger_id": str(firing.trigger.id),
        "state": "Triggered",
        "bucket": dict(firing.triggering_labels),
        "triggering_event": str(firing.triggering_event.id) if firing.triggering_event else None,
        "fired_at": _iso(firing.triggered),
    }
    if firing.triggering_firings:
        line["child_firings"] = [child_json(child) for child in firing.triggering_firings]
    line["automation_id"] = str(firing.trigger.automation.id)
    return line


# -- inputs -------------------------------------------------------------------------------
def read_events(path: Path) -> list[tuple[datetime, dict[str, Any]]]:
    """(processing time p_i, event document) in arrival order; invalid lines skipped."""
    out: list[tuple[datetime, dict[str, Any]]] = []
    wall: datetime | None = None
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//")):
            continue
        try:
            doc = json.loads(stripped)
            arrival = _parse_time(doc.get("received") or doc["occurred"])
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        wall = arrival if wall is None else max(wall, arrival)
        out.append((wall, doc))
    return out


def _longest_proactive_within(automations: list[Automation]) -> timedelta:
    longest = timedelta(0)
    for automation in automations:
        for trigger in automation.triggers():
            if isinstance(trigger, EventTrigger) and trigger.posture == Posture.Proactive:
                longest = max(longest, trigger.within)
    return longest


def read_ticks(path: Path, walls: list[datetime], automations: list[Automation]) -> list[datetime]:
    """The three tick forms of the replay contract."""
    text = path.read_text(encoding="utf-8").strip()
    if not text:
        return []
    if text.startswith("["):
        values = json.loads(text)
        return sorted(
            datetime.fromtimestamp(v, UTC) if isinstance(v, int | float) else _parse_time(v)
            for v in values
        )
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    spec = lines[0]
    if len(lines) == 1 and (spec.startswith("step:") or spec.replace(".", "", 1).isdigit()):
        parts = spec.removeprefix("step:").split(",")
        step = timedelta(seconds=float(parts[0]))
        bounds = {
            k.strip(): _parse_time(v.strip()) for k, _, v in (p.partition("=") for p in parts[1:])
        }
        if ("from" not in bounds or "until" not in bounds) and not walls:
            return []
        start = bounds.get("from", walls[0] if walls else None)
        until = bounds.get("until")
        if until is None:
            until = walls[-1] + _longest_proactive_within(automations) + timedelta(seconds=60)
        assert start is not None
        count = int((until - start) // step)
        return [start + i * step for i in range(count + 1)]
    return sorted(_parse_time(ln) for ln in lines)


# -- the run ------------------------------------------------------------------------------
async def load(documents: list[dict[str, Any]]) -> list[Automation]:
    db = provide_database_interface()
    await db.create_db()
    automations = [Automation.model_validate(doc) for doc in documents]
    async with automations_session(begin_transaction=True) as session:
        for automation in automations:
            # The ORM row directly: models.automations.create_automation would also
            # notify listeners and emit an automation-created event.
            session.add(db.Automation(**automation.model_dump()))
    triggers.clear_loaded_automations()
    for automation in automations:
        triggers.load_automation(automation)
    return automations


async def handle(doc: dict[str, Any]) -> None:
    """The triggers consumer's message handler, minus the message envelope."""
    if doc.get("event") == "prefect.log.write":
        return
    ordering = get_triggers_causal_ordering()
    event = ReceivedEvent.model_validate(doc)
    if await ordering.event_has_been_seen(event.id):
        return
    with contextlib.suppress(EventArrivedEarly):
        await triggers.reactive_evaluation(event)


def proactive_triggers(automations: list[Automation]) -> list[EventTrigger]:
    return [
        t
        for a in automations
        if a.enabled
        for t in a.triggers()
        if isinstance(t, EventTrigger) and t.posture == Posture.Proactive
    ]


async def tick(
    moment: datetime, proactive: list[EventTrigger], mode: str, next_runs: dict[Any, datetime]
) -> None:
    set_clock(moment)
    offset = await triggers.get_events_clock_offset()
    as_of = moment + timedelta(seconds=offset)
    for event in await triggers.get_lost_followers():
        with contextlib.suppress(EventArrivedEarly):
            await triggers.reactive_evaluation(event)
    for trigger in proactive:
        if mode == "scheduled":
            due = next_runs.get(trigger.id)
            if due is not None and due > moment:
                continue
        next_runs[trigger.id] = await triggers.proactive_evaluation(
            trigger, prefect_datetime.create_datetime_instance(moment)
        )
    async with automations_session() as session:
        await automation_held_events.sweep_held_events(session, moment)
        await triggers.sweep_closed_buckets(
            session, as_of - PREFECT_EVENTS_EXPIRED_BUCKET_BUFFER.value()
        )
        await session.commit()


async def main_async(
    args: argparse.Namespace,
    documents: list[dict[str, Any]],
    events: list[tuple[datetime, dict[str, Any]]],
) -> dict[str, Any]:
    started = time.perf_counter()
    automations = await load(documents)
    walls = [wall for wall, _ in events]
    ticks = read_ticks(Path(args.ticks), walls, automations) if args.ticks else []
    proactive = proactive_triggers(automations)
    setup_s = time.perf_counter() - started
    next_runs: dict[Any, datetime] = {}
    in_events = in_ticks = 0.0
    clock = time.perf_counter
    position = 0
    out = sys.stdout
    written = 0

    def flush() -> None:
        nonlocal written
        for firing, _ in FIRINGS[written:]:
            out.write(json.dumps(firing_line(firing)) + "\n")
        written = len(FIRINGS)

    total = len(events) + len(ticks)
    done = 0

    def report(count: int) -> None:
        nonlocal done
        done += count
        if args.progress and (done % 50 == 0 or done == total):
            print(f"progress {done} {total}", file=sys.stderr, flush=True)

    for wall, doc in events:
        while position < len(ticks) and ticks[position] < wall:
            began = clock()
            await tick(ticks[position], proactive, args.proactive_mode, next_runs)
            in_ticks += clock() - began
            position += 1
            flush()
            report(1)
        set_clock(wall)
        began = clock()
        await handle(doc)
        in_events += clock() - began
        flush()
        report(1)
    for moment in ticks[position:]:
        began = clock()
        await tick(moment, proactive, args.proactive_mode, next_runs)
        in_ticks += clock() - began
        flush()
        report(1)
    return {
        "events": len(events),
        "ticks": len(ticks),
        "events_s": in_events,
        "ticks_s": in_ticks,
        "setup_s": setup_s,
        "cpu_s": time.process_time(),
        "firings": len(FIRINGS),
        "automations": len(automations),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--automations", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--ticks", default=None)
    parser.add_argument("--proactive-mode", choices=("direct", "scheduled"), default="direct")
    parser.add_argument("--timing", default=None, help="write timing JSON to this file")
    parser.add_argument(
        "--progress", action="store_true", help="print `progress DONE TOTAL` lines on stderr"
    )
    args = parser.parse_args()
    logging.getLogger("prefect").setLevel(logging.WARNING)
    documents = json.loads(Path(args.automations).read_text(encoding="utf-8"))
    if isinstance(documents, dict):
        documents = [documents]
    events = read_events(Path(args.events))
    timing = asyncio.run(main_async(args, documents, events))
    sys.stdout.flush()
    if args.timing:
        Path(args.timing).write_text(json.dumps(timing) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
