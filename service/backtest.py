"""`tripwire backtest`: what automations would have fired over the events topic's history.

The history is read partition by partition in offset order and merged by event time
(`service/core/merge.py`), the order the live evaluate stage applies matches in once
its watermark passes them. Each event is processed at its own `occurred` (the events
clock of a stream with no lag; the clock never goes back), ticks run every
`TRIPWIRE_TICK_INTERVAL` of event time, and the Engine runs exactly as `tripwire
replay` runs it: the events and ticks go through `replay.timeline` into
`replay.new_engine`. So a backtest equals `tripwire replay` over the same events
exported in merged order with `--ticks step:TICK_INTERVAL` (docs/backtest.md).
"""

from __future__ import annotations

import asyncio
import ctypes
import time
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, BinaryIO, TypeVar

import orjson

from service.config import Settings
from service.core.engine import AutomationFiring, Engine
from service.core.idle import next_tick_due
from service.core.merge import merge_by_event_time
from service.core.records import EventRecord
from service.core.times import SECOND, to_us, us_to_iso
from service.errors import ConfigError, DecodeError, ValidationFailed
from service.models.automations import Automation, CompoundTrigger, SequenceTrigger
from service.progress import Progress
from service.replay import ReplayInput, TickSpec, TimedEvent, firing_line, new_engine, timeline
from service.state.memory import MemoryStateStore

__all__ = [
    "Backtest",
    "Limits",
    "PartitionRead",
    "Summary",
    "TopicHistory",
    "diff_firings",
    "file_records",
    "missing_history",
    "run_backtest",
    "versions_of",
]

T = TypeVar("T")

# Unreadable records the summary names one by one (the rest are only counted).
_SHOWN_UNREADABLE = 5
# Records one getmany hands over: the fetch buffer aiokafka holds per partition (its
# max_partition_fetch_bytes) bounds memory; this bounds one step of the merge's input.
_FETCH_RECORDS = 1000
# How many events between two looks at the clock for the time limit.
_CLOCK_EVERY = 256


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds of one backtest: events evaluated and a monotonic deadline (None: none)."""

    max_events: int | None = None
    deadline: float | None = None

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline


@dataclass(slots=True)
class PartitionRead:
    """What one events partition held and what was read of it."""

    partition: int
    start: int  # the log start offset: the earliest record still retained
    end: int  # the high watermark when the backtest started; records past it are not read
    earliest: int | None = None  # `occurred` of the first readable record at `start`
    records: int = 0


@dataclass(slots=True)
class Summary:
    """Everything a backtest says about its run besides the firings."""

    source: str
    automations: int = 0
    deployed: int | None = None  # deployed versions compared against, or None
    since: int | None = None
    until: int | None = None
    records: int = 0
    events: int = 0
    outside_range: int = 0
    unreadable: Counter[str] = field(default_factory=Counter)
    unreadable_examples: list[str] = field(default_factory=list)
    first_event: int | None = None
    last_event: int | None = None
    ticks: int = 0  # ticks run
    ticks_skipped: int = 0  # ticks that could not change anything, left out (idle time)
    firings: int = 0
    deployed_firings: int | None = None
    only_new: int = 0
    only_deployed: int = 0
    both: int = 0
    cut: str | None = None  # "max_events" or "max_seconds" when the run was cut short
    partitions: list[PartitionRead] = field(default_factory=list)
    seconds: float = 0.0

    def skip(self, where: str, exc: Exception) -> None:
        """An unreadable record: counted by kind, the first few named."""
        kind = exc.kind if isinstance(exc, DecodeError) else "invalid"
        self.unreadable[kind] += 1
        if len(self.unreadable_examples) < _SHOWN_UNREADABLE:
            self.unreadable_examples.append(f"{where}: {exc}")

    def missing(self) -> list[str]:
        return missing_history(self.since, self.partitions)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "automations": self.automations,
            "deployed": self.deployed,
            "since": us_to_iso(self.since) if self.since is not None else None,
            "until": us_to_iso(self.until) if self.until is not None else None,
            "records_read": self.records,
            "events": self.events,
            "outside_range": self.outside_range,
            "unreadable": sum(self.unreadable.values()),
            "unreadable_by_kind": dict(sorted(self.unreadable.items())),
            "unreadable_examples": self.unreadable_examples,
            "first_event": _iso(self.first_event),
            "last_event": _iso(self.last_event),
            "ticks": self.ticks,
            "ticks_skipped": self.ticks_skipped,
            "firings": self.firings,
            "deployed_firings": self.deployed_firings,
            "only_new": self.only_new,
            "only_deployed": self.only_deployed,
            "both": self.both,
            "cut": self.cut,
            "missing_history": self.missing(),
            "partitions": [
                {
                    "partition": p.partition,
                    "start_offset": p.start,
                    "end_offset": p.end,
                    "earliest_event": _iso(p.earliest),
                    "records_read": p.records,
                }
                for p in self.partitions
            ],
            "seconds": round(self.seconds, 3),
        }

    def lines(self) -> list[str]:
        """The summary for people, a few lines."""
        span = ""
        if self.first_event is not None and self.last_event is not None:
            seconds = (self.last_event - self.first_event) / SECOND
            span = f" from {_iso(self.first_event)} to {_iso(self.last_event)} ({seconds:,.0f} s)"
            if self.seconds > 0 and seconds > 0:
                span += f", {seconds / self.seconds:,.0f}x real time"
        idle = f" ({self.ticks_skipped:,} idle ones skipped)" if self.ticks_skipped else ""
        out = [
            f"backtest of {self.automations} automation(s) over {self.source}: "
            f"{self.events:,} events{span}, {self.ticks:,} ticks{idle}, {self.seconds:.1f} s"
        ]
        if self.deployed_firings is None:
            out.append(f"{self.firings:,} firing(s)")
        else:
            out.append(
                f"new version: {self.firings:,} firing(s); deployed version(s) of "
                f"{self.deployed} automation(s): {self.deployed_firings:,}; only in the new: "
                f"{self.only_new:,} (+), only in the deployed: {self.only_deployed:,} (-), "
                f"in both: {self.both:,}"
            )
        if self.outside_range:
            out.append(f"{self.outside_range:,} event(s) outside --since/--until not evaluated")
        unreadable = sum(self.unreadable.values())
        if unreadable:
            kinds = ", ".join(f"{k} {n}" for k, n in sorted(self.unreadable.items()))
            out.append(f"{unreadable:,} unreadable record(s) skipped ({kinds}); first:")
            out.extend(f"  {example}" for example in self.unreadable_examples)
        out.extend(f"missing history: {line}" for line in self.missing())
        if self.cut == "max_events":
            out.append(f"CUT: stopped after {self.events:,} events (the event limit)")
        elif self.cut == "max_seconds":
            out.append(f"CUT: stopped after {self.seconds:.0f} s (the time limit)")
        return out


def _iso(us: int | None) -> str | None:
    return us_to_iso(us) if us is not None else None


def missing_history(since: int | None, partitions: Iterable[PartitionRead]) -> list[str]:
    """Per partition whose retained history starts after `since`: what is gone.

    Only a partition whose log start moved (records were deleted: retention) lost
    anything; a partition that starts later because nothing older was ever written did not.
    """
    if since is None:
        return []
    out = []
    for read in partitions:
        if read.start == 0:
            continue
        if read.earliest is None:
            if read.end <= read.start:
                out.append(
                    f"partition {read.partition}: every record before offset {read.start} "
                    "was deleted (retention) and none is left; its events since "
                    f"{us_to_iso(since)} are gone"
                )
            continue
        if read.earliest > since:
            out.append(
                f"partition {read.partition}: the earliest retained event occurred at "
                f"{us_to_iso(read.earliest)} (offset {read.start}); its events from "
                f"{us_to_iso(since)} to then were deleted (retention) and are not evaluated"
            )
    return out


# -- the automations and their deployed versions ---------------------------------------


def versions_of(
    new: Sequence[Automation], deployed: Sequence[Automation]
) -> list[Automation | None]:
    """The deployed version of each new automation: the same id, else the one of the same name.

    ConfigError when a name is ambiguous or two new automations claim one deployed one.
    """
    by_id = {str(d.id): d for d in deployed if d.id is not None}
    by_name: dict[str, list[Automation]] = {}
    for automation in deployed:
        by_name.setdefault(automation.name, []).append(automation)
    claimed: dict[str, int] = {}
    out: list[Automation | None] = []
    for index, automation in enumerate(new):
        found = by_id.get(str(automation.id)) if automation.id is not None else None
        if found is None:
            named = by_name.get(automation.name, [])
            if len(named) > 1:
                msg = (
                    f"automation {index} ({automation.name!r}): {len(named)} deployed "
                    "automations have that name; give it the id of the one it replaces"
                )
                raise ConfigError(msg)
            found = named[0] if named else None
        if found is not None:
            key = str(found.id)
            if key in claimed:
                msg = (
                    f"automations {claimed[key]} and {index} are both versions of the deployed "
                    f"automation {key} ({found.name!r}); give each its own id or name"
                )
                raise ConfigError(msg)
            claimed[key] = index
        out.append(found)
    return out


def _paired(
    new: list[Automation], deployed: list[Automation]
) -> tuple[list[Automation], list[Automation], dict[str, str]]:
    """The new automations, their deployed versions, and deployed id -> new id.

    A new automation matched without an id takes its deployed version's id.
    """
    versions = versions_of(new, deployed)
    new_out: list[Automation] = []
    old_out: list[Automation] = []
    pairs: dict[str, str] = {}
    for automation, version in zip(new, versions, strict=True):
        if version is not None and automation.id is None:
            # As `automations apply` would: the new version replaces the deployed one in place.
            automation = automation.model_copy(update={"id": version.id})
        automation = automation.with_ids()
        new_out.append(automation)
        if version is not None:
            version = version.with_ids()
            old_out.append(version)
            pairs[str(version.id)] = str(automation.id)
    return new_out, old_out, pairs


def _trigger_paths(automations: Iterable[Automation]) -> dict[str, str]:
    """Every trigger id -> its path in its automation (`trigger`, `trigger.triggers[0]`)."""
    out: dict[str, str] = {}
    for automation in automations:
        stack: list[tuple[Any, str]] = [(automation.trigger, "trigger")]
        while stack:
            trigger, path = stack.pop()
            out[str(trigger.id)] = path
            if isinstance(trigger, CompoundTrigger | SequenceTrigger):
                stack.extend((t, f"{path}.triggers[{i}]") for i, t in enumerate(trigger.triggers))
    return out


# -- the run ---------------------------------------------------------------------------


@dataclass(slots=True)
class Backtest:
    """A backtest's result: firings (each a replay firing line) and the summary."""

    firings: list[dict[str, Any]]
    summary: Summary

    def to_json(self) -> dict[str, Any]:
        return {"firings": self.firings, "summary": self.summary.to_json()}


def _timed(
    records: Iterable[EventRecord], summary: Summary, limits: Limits
) -> Iterator[TimedEvent]:
    """Events at their processing time: their own `occurred`, the clock never going back."""
    wall: int | None = None
    for record in records:
        if summary.cut is not None:
            return  # a reader hit the time limit
        if limits.max_events is not None and summary.events >= limits.max_events:
            summary.cut = "max_events"
            return
        if summary.events % _CLOCK_EVERY == 0 and limits.expired():
            summary.cut = "max_seconds"
            return
        occurred = record.occurred
        wall = occurred if wall is None else max(wall, occurred)
        summary.events += 1
        if summary.first_event is None:
            summary.first_event = occurred
        summary.last_event = (
            occurred if summary.last_event is None else max(summary.last_event, occurred)
        )
        yield TimedEvent(summary.events, wall, record)


def _due(engines: list[Engine]) -> Callable[[], int | None]:
    """When a tick may next change any of the engines' state (service/core/idle.py)."""
    stores: list[tuple[Engine, MemoryStateStore]] = []
    for engine in engines:
        store = engine.store
        if not isinstance(store, MemoryStateStore):
            msg = "a backtest runs on the memory store"
            raise TypeError(msg)
        stores.append((engine, store))

    def due() -> int | None:
        times = [t for engine, store in stores if (t := next_tick_due(engine, store)) is not None]
        return min(times) if times else None

    return due


def _line(fired: AutomationFiring, paths: dict[str, str]) -> dict[str, Any]:
    line = firing_line(fired)
    line["path"] = paths.get(line["trigger_id"], "trigger")
    return line


def run_backtest(
    new: list[Automation],
    old: list[Automation] | None,
    records: Iterable[EventRecord],
    summary: Summary,
    *,
    tick_interval: float,
    limits: Limits | None = None,
    pairs: dict[str, str] | None = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
    skip_idle: bool = True,
) -> Backtest:
    """Evaluate the automations (and their deployed versions) over records in stream order.

    Without `old` and with `emit`, each firing is handed to `emit` as it happens and
    not kept (the result's `firings` is empty); otherwise they are kept and returned.
    The automations must have their ids (`Automation.with_ids`). `skip_idle` leaves
    out the ticks that cannot change anything (the same firings; tests compare both).
    """
    limits = limits or Limits()
    started = time.monotonic()
    summary.automations = len(new)
    spec = TickSpec(step=round(tick_interval * SECOND), until=summary.until)
    # The default end of the ticks (replay's: the last event + the longest proactive
    # `within` + 60 s) is taken over both versions, so both see the same ticks.
    replay = ReplayInput(new + (old or []), _timed(records, summary, limits), spec)
    engines: list[tuple[Engine, list[dict[str, Any]], dict[str, str]]] = [
        (new_engine(new), [], _trigger_paths(new))
    ]
    if old is not None:
        engines.append((new_engine(old), [], _trigger_paths(old)))
    keep = emit is None or old is not None
    skipped = [0]
    due = _due([engine for engine, _, _ in engines]) if skip_idle else None
    for item in timeline(replay, due, skipped):
        if summary.cut is not None:
            break  # not the trailing ticks of a run cut short: they would judge unread time
        tick = isinstance(item, int)
        if tick:
            summary.ticks += 1
        for engine, lines, paths in engines:
            fired = (
                engine.tick(item)
                if isinstance(item, int)
                else engine.process(item.record, item.wall)
            )
            for firing in fired:
                line = _line(firing, paths)
                if emit is None or keep:
                    lines.append(line)
                else:
                    emit(line)  # printed and dropped: memory stays flat in the firings too
                    summary.firings += 1
    new_lines = engines[0][1]
    summary.ticks_skipped = skipped[0]
    summary.seconds = time.monotonic() - started
    if old is None:
        summary.firings = summary.firings if not keep else len(new_lines)
        return Backtest(new_lines, summary)
    summary.firings = len(new_lines)
    old_lines = engines[1][1]
    summary.deployed = len(old)
    summary.deployed_firings = len(old_lines)
    merged = diff_firings(new_lines, old_lines, pairs or {})
    summary.only_new = sum(1 for line in merged if line["diff"] == "only_new")
    summary.only_deployed = sum(1 for line in merged if line["diff"] == "only_deployed")
    summary.both = sum(1 for line in merged if line["diff"] == "both")
    return Backtest(merged, summary)


def _match_key(line: dict[str, Any], automation: str) -> tuple[str, str, str, bytes, str | None]:
    # Not the firing id: it derives from the trigger id, which differs between two
    # versions matched by name.
    bucket = orjson.dumps(line["bucket"], option=orjson.OPT_SORT_KEYS)
    return (automation, line["path"], line["state"], bucket, line["triggering_event"])


def diff_firings(
    new: list[dict[str, Any]], old: list[dict[str, Any]], pairs: dict[str, str]
) -> list[dict[str, Any]]:
    """New and deployed firings, each marked `only_new`, `only_deployed` or `both`.

    Firings match by automation (a deployed one counts as the new one it is a version
    of), trigger path, state, bucket key and triggering event: two firings of one
    version with the same key pair with the other version's in the order they fired.
    Ordered by firing time (the new version's for a pair), new before deployed.
    """
    waiting: dict[tuple[str, str, str, bytes, str | None], list[int]] = {}
    for index, line in enumerate(old):
        owner = pairs.get(str(line["automation_id"]), str(line["automation_id"]))
        waiting.setdefault(_match_key(line, owner), []).append(index)
    for queue in waiting.values():
        queue.reverse()  # pop() takes the earliest
    paired_old: set[int] = set()
    out: list[tuple[int, int, int, dict[str, Any]]] = []
    for index, line in enumerate(new):
        queue = waiting.get(_match_key(line, str(line["automation_id"]))) or []
        if queue:
            match = old[queue.pop()]
            paired_old.add(id(match))
            entry = {**line, "diff": "both"}
            if match["fired_at"] != line["fired_at"] or match["id"] != line["id"]:
                entry["deployed"] = {"id": match["id"], "fired_at": match["fired_at"]}
            out.append((_sort_time(line), 0, index, entry))
        else:
            out.append((_sort_time(line), 0, index, {**line, "diff": "only_new"}))
    for index, line in enumerate(old):
        if id(line) not in paired_old:
            out.append((_sort_time(line), 1, index, {**line, "diff": "only_deployed"}))
    out.sort(key=lambda item: item[:3])
    return [entry for *_, entry in out]


def _sort_time(line: dict[str, Any]) -> int:
    # ISO strings do not sort: "…:00Z" comes after "…:00.500000Z".
    return to_us(datetime.fromisoformat(str(line["fired_at"]).replace("Z", "+00:00")))


# -- sources ---------------------------------------------------------------------------


def file_records(
    stream: BinaryIO, name: str, summary: Summary, max_bytes: int, progress: Progress | None = None
) -> Iterator[EventRecord]:
    """Events of a JSON-lines file in file order (one partition), validated as the worker does."""
    from service.event_records import decode_event

    summary.partitions.append(PartitionRead(0, 0, 0))
    for number, line in enumerate(stream, start=1):
        if progress is not None:
            progress.advance(len(line))
        raw = line.strip()
        if not raw or raw.startswith((b"#", b"//")):
            continue
        summary.records += 1
        try:
            record = decode_event(raw, max_bytes)
        except (DecodeError, ValidationFailed) as exc:
            summary.skip(f"{name}:{number}", exc)
            continue
        if progress is not None:
            progress.advance(0, 1)
        if _outside(record, summary):
            continue
        yield record


def _outside(record: EventRecord, summary: Summary) -> bool:
    if (summary.since is not None and record.occurred < summary.since) or (
        summary.until is not None and record.occurred >= summary.until
    ):
        summary.outside_range += 1
        return True
    return False


class TopicHistory:
    """The events topic's partitions, each read in offset order up to its end at the start.

    aiokafka is asynchronous and the merge is a plain generator, so this holds a private
    event loop and runs one `getmany` of one partition whenever the merge needs that
    partition's next records: nothing is read ahead beyond aiokafka's per-partition fetch
    buffer, so memory does not grow with the history's length. Use it from one thread.
    """

    def __init__(
        self,
        settings: Settings,
        summary: Summary,
        limits: Limits,
        progress: Progress | None = None,
    ) -> None:
        self.settings = settings
        self.summary = summary
        self.limits = limits
        self.progress = progress
        self._loop = asyncio.new_event_loop()
        self._consumer: Any = None

    def _run(self, work: Coroutine[Any, Any, T]) -> T:
        return self._loop.run_until_complete(work)

    def open(self) -> list[Iterator[EventRecord]]:
        """Find the partitions and their ends; one lazy iterator per partition, in order."""
        return self._run(self._open())

    async def _open(self) -> list[Iterator[EventRecord]]:
        from aiokafka import AIOKafkaConsumer
        from aiokafka.structs import TopicPartition

        from service.messaging.compat import fetch_highwaters
        from service.messaging.topics import topic_partitions

        topic = self.settings.topic_events
        numbers = await topic_partitions(
            self.settings, topic, "check TRIPWIRE_TOPIC_EVENTS and TRIPWIRE_KAFKA_BOOTSTRAP"
        )
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.settings.kafka_bootstrap,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            # Never 0 (broker notes, gap 2); a partition read to its end is not asked again.
            fetch_max_wait_ms=100,
            max_partition_fetch_bytes=max(1_048_576, self.settings.max_event_bytes + 4096),
        )
        await consumer.start()
        self._consumer = consumer
        tps = [TopicPartition(topic, n) for n in numbers]
        consumer.assign(tps)
        # The ends from a Fetch high watermark, not ListOffsets (wrong on the embedded
        # broker: broker notes, gap 1); the starts are the log start offsets.
        ends = await fetch_highwaters(consumer, tps)
        starts = await consumer.beginning_offsets(tps)
        reads = [PartitionRead(tp.partition, starts[tp], ends[tp]) for tp in tps]
        self.summary.partitions = reads
        for tp in tps:
            consumer.seek(tp, starts[tp])
        if self.progress is not None:
            self.progress.total = max(1, sum(max(0, r.end - r.start) for r in reads))
        return [self._partition(tp, read) for tp, read in zip(tps, reads, strict=True)]

    def _partition(self, tp: Any, read: PartitionRead) -> Iterator[EventRecord]:
        from service.event_records import decode_event

        summary, consumer, limit = self.summary, self._consumer, self.settings.max_event_bytes
        position = read.start
        while position < read.end:
            if self.limits.expired():
                summary.cut = "max_seconds"
                return
            batch = self._run(consumer.getmany(tp, timeout_ms=500, max_records=_FETCH_RECORDS))
            messages = batch.get(tp, [])
            if not messages:
                # A gap (a transaction marker, a compacted offset) moves the position too.
                position = max(position, self._run(consumer.position(tp)))
                continue
            for message in messages:
                if message.offset >= read.end:
                    return
                position = message.offset + 1
                read.records += 1
                summary.records += 1
                if self.progress is not None:
                    self.progress.advance(1, 1)
                try:
                    record = decode_event(message.value, limit)
                except (DecodeError, ValidationFailed) as exc:
                    summary.skip(f"partition {tp.partition} offset {message.offset}", exc)
                    continue
                if read.earliest is None:
                    read.earliest = record.occurred
                if _outside(record, summary):
                    continue
                yield record

    def close(self) -> None:
        if self._consumer is not None:
            self._run(self._consumer.stop())
            self._consumer = None
        self._loop.close()


def over_topic(
    settings: Settings,
    new: list[Automation],
    old: list[Automation] | None,
    pairs: dict[str, str],
    *,
    since: int | None = None,
    until: int | None = None,
    limits: Limits | None = None,
    progress: Progress | None = None,
    emit: Callable[[dict[str, Any]], None] | None = None,
) -> Backtest:
    """A backtest over the events topic (blocking: the API runs it in a worker thread)."""
    pin_mmap_threshold()
    limits = limits or Limits()
    summary = Summary(f"topic {settings.topic_events}", since=since, until=until)
    history = TopicHistory(settings, summary, limits, progress)
    try:
        partitions = history.open()
        summary.source += f" ({len(partitions)} partitions)"
        records = merge_by_event_time(partitions, _occurred)
        return run_backtest(
            new,
            old,
            records,
            summary,
            tick_interval=settings.tick_interval,
            limits=limits,
            pairs=pairs,
            emit=emit,
        )
    finally:
        history.close()


# glibc's mallopt parameter number for M_MMAP_THRESHOLD, and its default starting value.
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD = 128 * 1024


def pin_mmap_threshold() -> bool:
    """Keep glibc serving allocations of 128 KiB or more with mmap; True if it took.

    A Fetch response is one buffer of up to a few MiB. glibc raises its mmap threshold
    to the size of each such buffer freed (its dynamic threshold), so the next ones come
    from the heap, where the small long-lived objects of the engine's state fill around
    them and the heap cannot shrink: the RSS crept up with the records read (about 19 MiB
    from 100,000 to 400,000 events; docs/backtest.md, Memory). Setting the threshold
    turns that adjustment off: each buffer is mapped and returned whole. Process-wide
    and harmless for the API (only large buffers are affected); a no-op off glibc.
    """
    try:
        libc = ctypes.CDLL(None)
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD))
    except (OSError, AttributeError):
        return False  # not glibc: no mallopt, or no dynamic threshold to pin


def _occurred(record: EventRecord) -> int:
    return record.occurred


# -- the command -----------------------------------------------------------------------


def prepare(
    automations: list[Automation], deployed: list[Automation] | None
) -> tuple[list[Automation], list[Automation] | None, dict[str, str]]:
    """The automations to run, their deployed versions (None: no comparison), the pairs."""
    if deployed is None:
        return [a.with_ids() for a in automations], None, {}
    return _paired(automations, deployed)


def deterministic_id(name: str) -> uuid.UUID:
    """The id `Automation.with_ids` gives an automation without one."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"tripwire:{name}")
