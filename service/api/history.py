"""The API's history of firings and action outcomes per automation, in RocksDB, fed from Kafka."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import orjson
from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from rocksdict import Options, Rdict, ReadOptions, WriteBatch

from service.actions.outcome_events import ACTION_EVENT_PREFIX
from service.api.event_filter import EventFilter, EventOrder, automation_ids, includes
from service.config import Settings
from service.errors import StateStoreError
from service.logs import notice
from service.messaging.topics import assign_every_partition

__all__ = ["History", "HistoryFeed", "StoredEvent"]

logger = logging.getLogger(__name__)

# Key spaces: `e` automation id 0x00 occurred(8 bytes, µs) event id -> event JSON (one
# automation's events in time order); `i` event id -> its `e` key (repeats are dropped);
# `o` topic 0x00 partition -> the next offset to read, written with the data it covers;
# `l` automation id -> its newest state event, so `ls` reads one key per automation.
_EVENT, _INDEX, _OFFSET, _LAST = b"e", b"i", b"o", b"l"
_AUTOMATION = "prefect.automation."
STATE_EVENTS = ("prefect.automation.triggered", "prefect.automation.resolved")


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """One kept event: its JSON, decoded, and when it occurred."""

    event: dict[str, Any]
    occurred: datetime
    raw: bytes


def _us(moment: datetime) -> int:
    return int(moment.timestamp() * 1_000_000)


def _prefix(automation_id: str) -> bytes:
    return _EVENT + automation_id.encode() + b"\x00"


def _after(prefix: bytes) -> bytes:
    return prefix[:-1] + b"\x01"  # the first key past every key starting with `prefix`


class History:
    """Events about automations, kept by age and by count per automation."""

    def __init__(self, path: Path, max_age: float, max_per_automation: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.max_age = max_age
        self.max_per_automation = max_per_automation
        try:
            self._db = Rdict(str(path), Options(raw_mode=True))
        except Exception as exc:
            msg = (
                f"cannot open the API's history in {path}: {exc}. Another `tripwire api` "
                "may hold it (each needs its own TRIPWIRE_DATA_DIR), or the directory is "
                "not writable"
            )
            raise StateStoreError(msg) from exc

    def close(self) -> None:
        self._db.close()

    def _scan(self, lower: bytes, upper: bytes) -> Iterator[tuple[bytes, bytes]]:
        # A generator on purpose: rocksdict 0.3.29's iterator does not keep its upper bound
        # alive (neither the `ReadOptions` nor the bytes given to it); freed while the
        # iterator runs, it reads freed memory and stops early. This frame keeps them.
        read = ReadOptions()
        read.set_iterate_upper_bound(upper)
        yield from cast(
            Iterator[tuple[bytes, bytes]], self._db.items(from_key=lower, read_opt=read)
        )

    def _keys(self, lower: bytes, upper: bytes) -> list[bytes]:
        read = ReadOptions()
        read.set_iterate_upper_bound(upper)
        return list(cast(Iterator[bytes], self._db.keys(from_key=lower, read_opt=read)))

    # -- writes ---------------------------------------------------------------------------
    def positions(self) -> dict[tuple[str, int], int]:
        """The next offset to read per (topic, partition), as of the last write."""
        out: dict[tuple[str, int], int] = {}
        for key, value in self._scan(_OFFSET, _OFFSET[:-1] + bytes([_OFFSET[0] + 1])):
            topic, _, partition = key[1:].partition(b"\x00")
            out[(topic.decode(), int(partition))] = int(value)
        return out

    def ingest(
        self, events: list[dict[str, Any]], positions: dict[tuple[str, int], int], now: float
    ) -> int:
        """Keep new events and the offsets they were read to, in one write; returns kept."""
        return len(self.keep(events, positions, now))

    def keep(
        self, events: list[dict[str, Any]], positions: dict[tuple[str, int], int], now: float
    ) -> list[dict[str, Any]]:
        """As `ingest`, returning the events kept: new ones, not repeats or too old."""
        oldest = _us(datetime.fromtimestamp(now - self.max_age, UTC))
        batch = WriteBatch(raw_mode=True)
        fresh: dict[str, list[tuple[bytes, bytes]]] = {}
        seen: set[str] = set()
        for event in events:
            event_id = str(event.get("id", ""))
            resource_id = str((event.get("resource") or {}).get("prefect.resource.id", ""))
            if not event_id or not resource_id.startswith(_AUTOMATION) or event_id in seen:
                continue
            try:
                occurred = _us(datetime.fromisoformat(str(event["occurred"])))
            except (KeyError, ValueError):
                continue
            if occurred < oldest or self._db.get(_INDEX + event_id.encode()) is not None:
                continue
            seen.add(event_id)
            key = (
                _prefix(resource_id[len(_AUTOMATION) :])
                + max(occurred, 0).to_bytes(8, "big")
                + event_id.encode()
            )
            fresh.setdefault(resource_id[len(_AUTOMATION) :], []).append((key, orjson.dumps(event)))
        kept: list[dict[str, Any]] = []
        newest: dict[str, tuple[int, bytes]] = {}
        for automation_id, new in fresh.items():
            prefix = _prefix(automation_id)
            existing = self._keys(prefix, _after(prefix))
            everything = sorted([*existing, *(key for key, _ in new)])
            # The count limit, decided before writing: the same batch drops the oldest.
            dropped = set(everything[: max(0, len(everything) - self.max_per_automation)])
            for key in existing:
                if key in dropped:
                    batch.delete(key)
                    batch.delete(_INDEX + key[len(prefix) + 8 :])
            for key, value in new:
                at = int.from_bytes(key[len(prefix) : len(prefix) + 8], "big")
                if (
                    b'"prefect.automation.action.' not in value
                    and at >= newest.get(automation_id, (-1, b""))[0]
                ):
                    newest[automation_id] = (at, value)
                if key in dropped:
                    continue
                batch.put(key, value)
                batch.put(_INDEX + key[len(prefix) + 8 :], key)
                kept.append(orjson.loads(value))
        for automation_id, (at, value) in newest.items():
            current = self._db.get(_LAST + automation_id.encode())
            if current is None or int(orjson.loads(current)["at"]) <= at:
                last = {"at": at, "event": orjson.loads(value)}
                batch.put(_LAST + automation_id.encode(), orjson.dumps(last))
        for (topic, partition), offset in positions.items():
            batch.put(_OFFSET + topic.encode() + b"\x00" + str(partition).encode(), b"%d" % offset)
        self._write(batch)
        return kept

    def sweep(self, now: float) -> int:
        """Forget events older than the age limit; returns how many."""
        oldest = _us(datetime.fromtimestamp(now - self.max_age, UTC))
        batch = WriteBatch(raw_mode=True)
        gone = 0
        for key, _ in self._scan(_EVENT, bytes([_EVENT[0] + 1])):
            cut = key.index(b"\x00")
            if int.from_bytes(key[cut + 1 : cut + 9], "big") < oldest:
                batch.delete(key)
                batch.delete(_INDEX + key[cut + 9 :])
                gone += 1
        if gone:
            self._write(batch)
        return gone

    def _write(self, batch: WriteBatch) -> None:
        try:
            self._db.write(batch)
        except Exception as exc:
            msg = (
                f"could not write the API's history at {self.path}: {exc}. Check free disk "
                "space and the directory's permissions"
            )
            raise StateStoreError(msg) from exc

    # -- reads ----------------------------------------------------------------------------
    def _events(self, automation_id: str | None) -> Iterator[tuple[bytes, bytes]]:
        if automation_id is None:
            yield from self._scan(_EVENT, bytes([_EVENT[0] + 1]))
        else:
            prefix = _prefix(automation_id)
            yield from self._scan(prefix, _after(prefix))

    def query(self, spec: EventFilter, now: float) -> list[StoredEvent]:
        """Every kept event the filter includes, in its order (then by id)."""
        oldest = _us(datetime.fromtimestamp(now - self.max_age, UTC))
        chosen = automation_ids(spec)
        scopes: list[str | None] = [*sorted(chosen)] if chosen is not None else [None]
        found: list[tuple[int, str, StoredEvent]] = []
        for scope in scopes:
            for key, raw in self._events(scope):
                cut = key.index(b"\x00")
                at = int.from_bytes(key[cut + 1 : cut + 9], "big")
                if at < oldest:
                    continue  # past the age limit, not swept yet
                event: dict[str, Any] = orjson.loads(raw)
                occurred = datetime.fromtimestamp(at / 1_000_000, UTC)
                if includes(spec, event, occurred, raw):
                    found.append((at, str(event["id"]), StoredEvent(event, occurred, raw)))
        found.sort(key=lambda item: (item[0], item[1]), reverse=spec.order is EventOrder.DESC)
        return [stored for _, _, stored in found]

    def recent(self, automation_id: str, now: float, firings: int) -> list[dict[str, Any]]:
        """The last `firings` state events of one automation, newest first.

        Each gets `actions`: the action outcome events that name it.
        """
        oldest = _us(datetime.fromtimestamp(now - self.max_age, UTC))
        states: list[dict[str, Any]] = []
        outcomes: dict[str, list[dict[str, Any]]] = {}
        keys = list(self._events(automation_id))
        for key, raw in reversed(keys):
            cut = key.index(b"\x00")
            if int.from_bytes(key[cut + 1 : cut + 9], "big") < oldest:
                break
            event: dict[str, Any] = orjson.loads(raw)
            if event.get("event") in STATE_EVENTS:
                if len(states) < firings:
                    states.append(event)
                continue
            for related in event.get("related") or []:
                if related.get("prefect.resource.role") == "automation-triggered-event":
                    state_id = str(related.get("prefect.resource.id", ""))[len("prefect.event.") :]
                    outcomes.setdefault(state_id, []).append(event)
        for state in states:
            state["actions"] = sorted(
                outcomes.get(str(state["id"]), []),
                key=lambda e: (
                    e["payload"].get("action_index", 0),
                    not str(e["event"]).endswith(".triggered"),  # before its outcome
                    e["occurred"],
                ),
            )
        return states

    def last_fired(self) -> dict[str, dict[str, Any]]:
        """Each automation's newest state event seen, by automation id.

        Kept past the history's retention: that it fired then stays true.
        """
        out: dict[str, dict[str, Any]] = {}
        for key, raw in self._scan(_LAST, bytes([_LAST[0] + 1])):
            out[key[1:].decode()] = orjson.loads(raw)["event"]
        return out


def automation_event(key: bytes | None, value: bytes | None) -> dict[str, Any] | None:
    """An action outcome event read from the events topic, or None for any other event."""
    # Cheap tests first: the events topic carries every user event too.
    if key is None or value is None or not key.startswith(_AUTOMATION.encode()):
        return None
    if ACTION_EVENT_PREFIX.encode() not in value:
        return None
    try:
        event = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or not str(event.get("event", "")).startswith(
        ACTION_EVENT_PREFIX
    ):
        return None
    return event


def state_event(value: bytes | None) -> dict[str, Any] | None:
    """The `prefect.automation.triggered/resolved` event of a firing record."""
    try:
        record = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    event = record.get("state_event") if isinstance(record, dict) else None
    return event if isinstance(event, dict) else None


class HistoryFeed:
    """Reads the firings topic and the events topic into the history, from stored offsets."""

    SWEEP_EVERY = 60.0

    def __init__(
        self,
        settings: Settings,
        history: History,
        on_kept: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self.settings = settings
        self.history = history
        # Told of each batch's new events once they are written (the console's live feed).
        self.on_kept = on_kept
        self.running = False

    async def run(self) -> None:
        """Follow both topics until cancelled; a broker error is retried, not fatal."""
        while True:
            try:
                await self._follow()
            except (KafkaError, OSError) as exc:
                self.running = False
                logger.warning("history feed: %s; reading again in 2 s", exc)
                await asyncio.sleep(2.0)
            except StateStoreError as exc:
                # The API's automation routes still work without the history: say so
                # (and in /healthz) rather than stop serving them.
                self.running = False
                logger.error("history not updated: %s; trying again in 10 s", exc)
                await asyncio.sleep(10.0)

    async def _follow(self) -> None:
        settings = self.settings
        topics = (settings.topic_firings, settings.topic_events)
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap,
            enable_auto_commit=False,
            # Past the topic's retention (or a fresh data dir): from its first record.
            auto_offset_reset="earliest",
            fetch_max_wait_ms=200,
        )
        await consumer.start()
        try:
            tps = await assign_every_partition(consumer, topics)
            stored = self.history.positions()
            resumed = sum((tp.topic, tp.partition) in stored for tp in tps)
            notice(
                logger,
                "history: %d of %d partitions resume from stored offsets, the rest are read "
                "from their start",
                resumed,
                len(tps),
            )
            starts: dict[tuple[str, int], int] = {}
            for tp in tps:
                if (tp.topic, tp.partition) in stored:
                    consumer.seek(tp, stored[(tp.topic, tp.partition)])
                else:
                    await consumer.seek_to_beginning(tp)
                    starts[(tp.topic, tp.partition)] = await consumer.position(tp)
            # Every partition gets a stored position, the empty ones too, so a restart
            # resumes all of them rather than reading any from its start again.
            self.history.ingest([], starts, time.time())
            self.running = True
            swept = time.monotonic()
            while True:
                batches = await consumer.getmany(timeout_ms=500, max_records=2000)
                if batches:
                    events: list[dict[str, Any]] = []
                    positions: dict[tuple[str, int], int] = {}
                    for tp, records in batches.items():
                        for record in records:
                            if tp.topic == settings.topic_firings:
                                event = state_event(record.value)
                            else:
                                event = automation_event(record.key, record.value)
                            if event is not None:
                                events.append(event)
                        if records:
                            positions[(tp.topic, tp.partition)] = records[-1].offset + 1
                    kept = self.history.keep(events, positions, time.time())
                    if kept and self.on_kept is not None:
                        self.on_kept(kept)
                if time.monotonic() - swept >= self.SWEEP_EVERY:
                    self.history.sweep(time.time())
                    swept = time.monotonic()
        finally:
            self.running = False
            await consumer.stop()
