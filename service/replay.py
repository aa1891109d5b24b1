"""`tripwire replay`: the core over files, with the conformance time model (no wall clock)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

import orjson

from service.core.engine import AutomationFiring, Engine, replay_state_event_id
from service.core.firings import child_firing_json
from service.core.records import EventRecord
from service.core.times import SECOND, micros, to_us, us_to_iso
from service.errors import ConfigError, ValidationFailed
from service.models.automations import Automation, EventTrigger, parse_automations
from service.models.events import parse_event
from service.state.memory import MemoryStateStore

__all__ = ["ReplayInput", "firing_line", "load_automations", "read_events", "read_ticks", "run"]


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """An event with its processing time `p_i` and its line number."""

    line: int
    wall: int
    record: EventRecord


@dataclass(frozen=True, slots=True)
class ReplayInput:
    """Everything one replay run needs, read and validated."""

    automations: list[Automation]
    events: list[TimedEvent]
    ticks: list[int]


def _read_text(path: Path, what: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        msg = f"cannot read {what} file {str(path)!r}: {exc}"
        raise ConfigError(msg) from None


def load_automations(path: Path) -> list[Automation]:
    """Read and validate an automations file; raise ConfigError or ValidationFailed."""
    text = _read_text(path, "automations")
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        msg = f"{path}: not valid JSON: {exc}"
        raise ConfigError(msg) from None
    return parse_automations(data)


def read_events(path: Path, errors: TextIO) -> list[TimedEvent]:
    """Read events.jsonl in arrival order; report and skip invalid lines."""
    out: list[TimedEvent] = []
    wall: int | None = None
    for number, line in enumerate(_read_text(path, "events").splitlines(), start=1):
        stripped = line.strip()
        if not stripped or stripped.startswith(("#", "//")):
            continue
        try:
            event = parse_event(orjson.loads(stripped))
        except orjson.JSONDecodeError as exc:
            print(f"{path}:{number}: skipped: not valid JSON: {exc}", file=errors)
            continue
        except ValidationFailed as exc:
            print(f"{path}:{number}: skipped: invalid event: {exc}", file=errors)
            continue
        record = EventRecord(event)
        arrival = record.received if record.received is not None else record.occurred
        wall = arrival if wall is None else max(wall, arrival)
        out.append(TimedEvent(number, wall, record))
    return out


def read_ticks(path: Path, events: list[TimedEvent], automations: list[Automation]) -> list[int]:
    """Parse the three tick forms of the replay contract."""
    text = _read_text(path, "ticks").strip()
    if not text:
        return []
    try:
        if text.startswith("["):
            return sorted(_tick_value(v) for v in orjson.loads(text))
        lines = [ln.strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        if len(lines) == 1 and (lines[0].startswith("step:") or _is_number(lines[0])):
            return _step_ticks(lines[0], events, automations)
        return sorted(to_us(datetime.fromisoformat(ln.replace("Z", "+00:00"))) for ln in lines)
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        msg = f"{path}: not a valid ticks file: {exc}"
        raise ConfigError(msg) from None


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _tick_value(value: Any) -> int:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return round(value * SECOND)
    return to_us(datetime.fromisoformat(str(value).replace("Z", "+00:00")))


def _step_ticks(spec: str, events: list[TimedEvent], automations: list[Automation]) -> list[int]:
    parts = spec.removeprefix("step:").split(",")
    step = round(float(parts[0]) * SECOND)
    if step <= 0:
        msg = "the step must be positive"
        raise ValueError(msg)
    bounds: dict[str, int] = {}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        if name.strip() not in ("from", "until"):
            msg = f"unknown tick bound {name!r}"
            raise ValueError(msg)
        bounds[name.strip()] = to_us(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    if ("from" not in bounds or "until" not in bounds) and not events:
        return []
    start = bounds.get("from", events[0].wall if events else 0)
    until = bounds.get("until")
    if until is None:
        until = events[-1].wall + _longest_proactive_within(automations) + 60 * SECOND
    count = (until - start) // step
    return [start + i * step for i in range(count + 1)]


def _longest_proactive_within(automations: list[Automation]) -> int:
    longest = 0
    for automation in automations:
        stack: list[Any] = [automation.trigger]
        while stack:
            trigger = stack.pop()
            if isinstance(trigger, EventTrigger):
                if trigger.posture == "Proactive":
                    longest = max(longest, micros(trigger.within))
            else:
                stack.extend(getattr(trigger, "triggers", ()))  # a metric trigger has none
    return longest


def firing_line(fired: AutomationFiring) -> dict[str, Any]:
    """One output line of the replay contract (extra fields are allowed and ignored)."""
    firing = fired.firing
    line: dict[str, Any] = {
        "automation": fired.automation.name,
        "trigger_id": firing.trigger_id,
        "state": firing.state,
        "bucket": firing.labels,
        "triggering_event": firing.triggering_event.id if firing.triggering_event else None,
        "fired_at": us_to_iso(firing.fired_at),
    }
    if firing.child_firings:
        line["child_firings"] = [child_firing_json(child) for child in firing.child_firings]
    line["id"] = firing.id
    line["automation_id"] = fired.automation.id
    return line


def _timeline(replay: ReplayInput) -> Iterator[TimedEvent | int]:
    ticks = iter(replay.ticks)
    tick = next(ticks, None)
    for timed in replay.events:
        while tick is not None and tick < timed.wall:
            yield tick
            tick = next(ticks, None)
        yield timed
    while tick is not None:
        yield tick
        tick = next(ticks, None)


def run(
    replay: ReplayInput,
    out: TextIO,
    *,
    proactive_mode: str = "direct",
    feed_state_events: bool = False,
    progress: Any = None,
) -> int:
    """Replay the input through the core; write firing lines; return how many fired."""
    engine = Engine(
        replay.automations,
        MemoryStateStore(),
        proactive_mode=proactive_mode,
        feed_state_events=feed_state_events,
        state_event_id=replay_state_event_id,
    )
    fired = 0
    write = out.write
    for item in _timeline(replay):
        if isinstance(item, TimedEvent):
            firings = engine.process(item.record, item.wall)
            if progress is not None:
                progress(1)
        else:
            firings = engine.tick(item)
        for firing in firings:
            write(orjson.dumps(firing_line(firing)).decode() + "\n")
        fired += len(firings)
    return fired


def main(args: Any) -> int:
    """The `tripwire replay` command; returns the exit status."""
    errors = sys.stderr
    try:
        automations = load_automations(Path(args.automations))
        events = read_events(Path(args.events), errors)
        ticks = read_ticks(Path(args.ticks), events, automations) if args.ticks else []
    except ValidationFailed as exc:
        print(f"tripwire replay: invalid automation: {exc}", file=errors)
        return 2
    except ConfigError as exc:
        print(f"tripwire replay: {exc}", file=errors)
        return 2
    replay = ReplayInput(automations, events, ticks)
    from service.progress import Progress

    with Progress(len(events), "events", enabled=errors.isatty()) as bar:
        run(
            replay,
            sys.stdout,
            proactive_mode=args.proactive_mode,
            feed_state_events=args.feed_state_events,
            progress=bar.advance,
        )
    sys.stdout.flush()
    return 0
