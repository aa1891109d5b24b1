"""`tripwire replay`: the core over files, with the conformance time model (no wall clock)."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import orjson

from service.core.engine import AutomationFiring, Engine, replay_state_event_id
from service.core.firings import child_firing_json
from service.core.records import EventRecord
from service.core.times import SECOND, micros, to_us, us_to_iso
from service.errors import ConfigError, ValidationFailed
from service.event_records import event_record
from service.models.automations import Automation, EventTrigger, parse_automations
from service.progress import Progress
from service.state.memory import MemoryStateStore

__all__ = [
    "ReplayInput",
    "TickSpec",
    "firing_line",
    "iter_events",
    "load_automations",
    "load_ticks",
    "new_engine",
    "open_events",
    "parse_ticks",
    "read_events",
    "read_ticks",
    "run",
    "timeline",
]


@dataclass(frozen=True, slots=True)
class TimedEvent:
    """An event with its processing time `p_i` and its line number."""

    line: int
    wall: int
    record: EventRecord


@dataclass(frozen=True, slots=True)
class ReplayInput:
    """Everything one replay run needs, read and validated (events may be a stream)."""

    automations: list[Automation]
    events: Iterable[TimedEvent]
    ticks: list[int] | TickSpec


@dataclass(frozen=True, slots=True)
class TickSpec:
    """A parsed `--ticks`: fixed instants, or a step whose default bounds need the events."""

    instants: tuple[int, ...] = ()
    step: int | None = None
    start: int | None = None
    until: int | None = None


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


def open_events(path: Path) -> BinaryIO:
    """Open an events file for `iter_events`; ConfigError names the file and why not."""
    try:
        return path.open("rb")
    except OSError as exc:
        msg = f"cannot read events file {str(path)!r}: {exc.strerror or exc}"
        raise ConfigError(msg) from None


def iter_events(
    stream: BinaryIO, name: str, errors: TextIO, progress: Progress | None = None
) -> Iterator[TimedEvent]:
    """Events in arrival order, one line at a time; report and skip invalid lines."""
    wall: int | None = None
    number = 0
    try:
        for number, line in enumerate(stream, start=1):
            stripped = line.strip()
            if not stripped or stripped.startswith((b"#", b"//")):
                if progress is not None:
                    progress.advance(len(line))
                continue
            try:
                record = event_record(orjson.loads(stripped), stripped)
            except (orjson.JSONDecodeError, ValidationFailed) as exc:
                what = (
                    "not valid JSON" if isinstance(exc, orjson.JSONDecodeError) else "invalid event"
                )
                if progress is not None:
                    progress.clear()
                    progress.advance(len(line))
                print(f"{name}:{number}: skipped: {what}: {exc}", file=errors)
                continue
            arrival = record.received if record.received is not None else record.occurred
            wall = arrival if wall is None else max(wall, arrival)
            if progress is not None:
                progress.advance(len(line), 1)
            yield TimedEvent(number, wall, record)
    except OSError as exc:
        msg = f"cannot read events file {name!r} after line {number}: {exc.strerror or exc}"
        raise ConfigError(msg) from None


def read_events(path: Path, errors: TextIO) -> list[TimedEvent]:
    """Every event of an events file, in memory (benchmarks time the core without I/O)."""
    with open_events(path) as stream:
        return list(iter_events(stream, str(path), errors))


def load_ticks(value: str) -> TickSpec:
    """`--ticks`: an inline `step:SECONDS[,from=ISO][,until=ISO]` or a ticks file."""
    path = Path(value)
    if value.startswith("step:") and not path.exists():
        return parse_ticks(value, "--ticks")
    return parse_ticks(_read_text(path, "ticks"), str(path))


def parse_ticks(text: str, where: str) -> TickSpec:
    """Parse the three tick forms of the replay contract; ConfigError says what is wrong."""
    text = text.strip()
    if not text:
        return TickSpec()
    try:
        if text.startswith("["):
            return TickSpec(tuple(sorted(_tick_value(v) for v in orjson.loads(text))))
        lines = [ln.strip() for ln in text.splitlines()]
        lines = [ln for ln in lines if ln and not ln.startswith("#")]
        if len(lines) == 1 and (lines[0].startswith("step:") or _is_number(lines[0])):
            return _step_spec(lines[0])
        return TickSpec(
            tuple(sorted(to_us(datetime.fromisoformat(ln.replace("Z", "+00:00"))) for ln in lines))
        )
    except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
        msg = (
            f"{where}: not valid ticks ({exc}); expected a JSON list of timestamps, "
            "step:SECONDS[,from=ISO][,until=ISO], or one ISO timestamp per line"
        )
        raise ConfigError(msg) from None


def read_ticks(path: Path, events: list[TimedEvent], automations: list[Automation]) -> list[int]:
    """Every tick of a ticks file for events already read (benchmarks)."""
    return list(_timeline_ticks(load_ticks(str(path)), events, automations))


def _timeline_ticks(
    spec: TickSpec, events: list[TimedEvent], automations: list[Automation]
) -> Iterator[int]:
    ticks = _Ticks(spec, automations)
    for timed in events:
        yield from ticks.before(timed.wall)
    yield from ticks.rest()


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


def _step_spec(spec: str) -> TickSpec:
    parts = spec.removeprefix("step:").split(",")
    step = round(float(parts[0]) * SECOND)
    if step <= 0:
        msg = "the step must be positive"
        raise ValueError(msg)
    bounds: dict[str, int] = {}
    for part in parts[1:]:
        name, _, value = part.partition("=")
        if name.strip() not in ("from", "until"):
            msg = f"unknown tick bound {name!r} (from= and until= are known)"
            raise ValueError(msg)
        bounds[name.strip()] = to_us(datetime.fromisoformat(value.strip().replace("Z", "+00:00")))
    return TickSpec(step=step, start=bounds.get("from"), until=bounds.get("until"))


class _Ticks:
    """The ticks of a spec, computed as events arrive, so no pass ahead over the events.

    A step's default `from` is the first event's processing time, known at that event;
    its default `until` (the last event's time + the longest proactive `within` + 60 s)
    is at or after every event's time, so every tick before an event is due whatever
    `until` turns out to be, and only the trailing ticks wait for the end.

    With `due` (a step spec only), ticks that cannot change anything are skipped: before
    a stretch of two or more ticks, `due()` gives the earliest time a tick may change the
    state (None: not before the next event; service/core/idle.py), and the ticks before
    it are counted in `skipped`, not yielded. The ones that run stay on the same grid, so
    the firings and their times are those of ticking every step.
    """

    def __init__(
        self,
        spec: TickSpec,
        automations: list[Automation],
        due: Callable[[], int | None] | None = None,
    ) -> None:
        self.spec = spec
        self.automations = automations
        self.index = 0
        self.next: int | None = spec.start
        self.last_wall: int | None = None
        self.due = due if spec.step is not None else None
        self.skipped = 0

    def _skip(self, tick: int, limit: int, step: int) -> int:
        """The first tick from `tick` on that may change anything, or the first >= `limit`."""
        assert self.due is not None  # noqa: S101  # only called with one
        due = self.due()
        target = limit if due is None else min(max(due, tick), limit)
        if target <= tick:
            return tick
        jumped = -(-(target - tick) // step)
        until = self.spec.until
        if until is not None:
            jumped_run = min(jumped, max(0, (until - tick) // step + 1))
        else:
            jumped_run = jumped
        self.skipped += jumped_run
        return tick + jumped * step

    def before(self, wall: int) -> Iterator[int]:
        """Ticks due before an event processed at `wall` (a tick at `wall` runs after it)."""
        self.last_wall = wall
        spec = self.spec
        if spec.step is None:
            instants = spec.instants
            while self.index < len(instants) and instants[self.index] < wall:
                yield instants[self.index]
                self.index += 1
            return
        step = spec.step
        tick = wall if self.next is None else self.next  # the default `from`: this event
        while tick < wall and (spec.until is None or tick <= spec.until):
            # Asked only before a stretch of ticks: between close events, asking costs
            # more than the tick it could save.
            if self.due is not None and tick + step < wall:
                tick = self._skip(tick, wall, step)
                if tick >= wall or (spec.until is not None and tick > spec.until):
                    break
            yield tick
            tick += step
        self.next = tick

    def rest(self) -> Iterator[int]:
        """The ticks after the last event."""
        spec = self.spec
        if spec.step is None:
            yield from spec.instants[self.index :]
            return
        tick, until = self.next, spec.until
        if tick is None or until is None:
            if self.last_wall is None:
                return  # a bound left to its default and no events: no ticks
            tick = self.last_wall if tick is None else tick
            if until is None:
                until = self.last_wall + _longest_proactive_within(self.automations) + 60 * SECOND
        step = spec.step
        while tick <= until:
            if self.due is not None:
                tick = self._skip(tick, until + 1, step)
                if tick > until:
                    break
            yield tick
            tick += step
        self.next = tick


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


def timeline(
    replay: ReplayInput,
    due: Callable[[], int | None] | None = None,
    skipped: list[int] | None = None,
) -> Iterator[TimedEvent | int]:
    """Events and ticks (ints) interleaved as the replay contract orders them.

    With `due` (see `_Ticks`), step ticks that cannot change anything are left out;
    their number is kept in `skipped[0]` as the timeline goes. Each item must be
    processed before the next is asked for: `due` reads the state it left.
    """
    spec = replay.ticks if isinstance(replay.ticks, TickSpec) else TickSpec(tuple(replay.ticks))
    ticks = _Ticks(spec, replay.automations, due)
    for timed in replay.events:
        yield from ticks.before(timed.wall)
        if skipped is not None:
            skipped[0] = ticks.skipped
        yield timed
    yield from ticks.rest()
    if skipped is not None:
        skipped[0] = ticks.skipped


def new_engine(
    automations: list[Automation], proactive_mode: str = "direct", feed_state_events: bool = False
) -> Engine:
    """The engine replay runs: a memory store, the contract's state-change event ids."""
    return Engine(
        automations,
        MemoryStateStore(),
        proactive_mode=proactive_mode,
        feed_state_events=feed_state_events,
        state_event_id=replay_state_event_id,
    )


def run(
    replay: ReplayInput,
    out: TextIO,
    *,
    proactive_mode: str = "direct",
    feed_state_events: bool = False,
) -> int:
    """Replay the input through the core; write firing lines; return how many fired."""
    engine = new_engine(replay.automations, proactive_mode, feed_state_events)
    fired = 0
    dumps, newline = orjson.dumps, orjson.OPT_APPEND_NEWLINE
    # orjson's bytes go to a binary stream as they are, not decoded to text and encoded
    # back by the text layer: a firing line each, often several per event here.
    binary: BinaryIO | None = getattr(out, "buffer", None)
    write_bytes: Callable[[bytes], object]
    if binary is not None:
        out.flush()
        write_bytes = binary.write
    else:
        write_text = out.write

        def write_bytes(line: bytes) -> object:
            return write_text(line.decode())

    for item in timeline(replay):
        if isinstance(item, TimedEvent):
            firings = engine.process(item.record, item.wall)
        else:
            firings = engine.tick(item)
        for firing in firings:
            write_bytes(dumps(firing_line(firing), option=newline))
        fired += len(firings)
    if binary is not None:
        binary.flush()
    return fired


def main(args: Any) -> int:
    """The `tripwire replay` command; returns the exit status."""
    errors = sys.stderr
    try:
        automations = load_automations(Path(args.automations))
        # Validated before any event is read: a bad --ticks fails at once, not after a
        # long read of the events file.
        ticks = load_ticks(args.ticks) if args.ticks else TickSpec()
        stream = open_events(Path(args.events))
    except ValidationFailed as exc:
        print(f"tripwire replay: invalid automation: {exc}", file=errors)
        return 2
    except ConfigError as exc:
        print(f"tripwire replay: {exc}", file=errors)
        return 2
    try:
        size = os.fstat(stream.fileno()).st_size
        # Progress by bytes read: the event count is unknown until the end of the stream.
        with (
            stream,
            Progress(size, "events", enabled=errors.isatty(), stream=errors, items=True) as bar,
        ):
            events = iter_events(stream, args.events, errors, bar)
            run(
                ReplayInput(automations, events, ticks),
                sys.stdout,
                proactive_mode=args.proactive_mode,
                feed_state_events=args.feed_state_events,
            )
    except ConfigError as exc:
        print(f"tripwire replay: {exc}", file=errors)
        return 2
    sys.stdout.flush()
    return 0
