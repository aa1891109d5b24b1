"""RocksDB `StateStore`: every table in one raw-mode `Rdict`, under one-byte key prefixes."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, NoReturn, Self, cast

import orjson
from rocksdict import (
    BlockBasedOptions,
    Cache,
    DBCompressionType,
    Options,
    Rdict,
    ReadOptions,
    WriteBatch,
    WriteOptions,
)

from service.core.firings import Firing
from service.core.records import EventRecord
from service.core.store import Bucket, BucketKey, HeldEvent
from service.errors import ConfigError, StateStoreError
from service.state.codec import (
    INT64_MAX,
    INT64_MIN,
    TIME_WIDTH,
    decode_bucket,
    decode_event,
    decode_firings,
    decode_held,
    decode_int,
    decode_key,
    decode_str,
    decode_time,
    encode_bucket,
    encode_event,
    encode_firings,
    encode_held,
    encode_int,
    encode_key,
    encode_str,
    encode_time,
    prefix_end,
)

__all__ = ["Compression", "RocksDBOptions", "RocksDBStateStore"]

Compression = Literal["none", "snappy", "lz4", "zstd"]

_MIB = 1024 * 1024

# One byte per table. `t` = encode_str(trigger id), `k` = encode_key(bucket key),
# `T` = encode_time(...); see service/state/codec.py.
_BUCKET = b"b"  # b t k -> bucket JSON (with its satisfied flag)
_END = b"e"  # e T(end) t k -> "": every bucket by end (expired_buckets)
_TRIGGER_END = b"t"  # t t T(end) k -> "": one trigger's buckets by end (due, next end)
_SATISFIED = b"s"  # s t k -> ""
_HELD = b"h"  # h t k -> held events JSON
_CHILDREN = b"c"  # c t(composite id) -> child firings JSON
_SEEN = b"i"  # i str(event id) -> at
_SEEN_AT = b"j"  # j T(at) str(event id) -> "": seen ids by time (forget_seen_before)
_FOLLOWER = b"f"  # f str(leader) str(event id) -> event record JSON
_FOLLOWER_RECEIVED = b"r"  # r T(received) str(leader) str(event id) -> ""
_META = b"m"  # m str(name) -> int
_INTERNAL = b"z"  # z name -> int: the store's own bookkeeping

_FORMAT_KEY = _INTERNAL + b"format"
_COUNT_KEY = _INTERNAL + b"bucket_count"
_FORMAT = 1

_SCAN_CHUNK = 1024  # entries read per step by lazy or batched scans
_DELETE_CHUNK = 10_000  # deletions per write batch in forget_seen_before

_COMPRESSION = {
    "none": DBCompressionType.none,
    "snappy": DBCompressionType.snappy,
    "lz4": DBCompressionType.lz4,
    "zstd": DBCompressionType.zstd,
}


@dataclass(frozen=True, slots=True)
class RocksDBOptions:
    """Tuning knobs for the RocksDB state store; the defaults suit one worker's state."""

    write_buffer_size: int = 64 * _MIB
    """Bytes of writes collected in one memtable before it is flushed to disk (64 MiB)."""
    max_write_buffer_number: int = 3
    """Memtables kept in memory (one active, the rest flushing) before writes stall (3)."""
    max_open_files: int = 1024
    """SST files kept open; -1 keeps all open (fastest, needs a high `ulimit -n`) (1024)."""
    compression: Compression = "lz4"
    """Block compression: "none", "snappy", "lz4" or "zstd" (lz4: cheap and effective)."""
    block_cache_size: int = 64 * _MIB
    """Bytes of the LRU cache of uncompressed blocks shared by reads (64 MiB)."""
    bloom_bits_per_key: int = 10
    """Bloom filter bits per key, speeding up point reads of absent keys; 0 disables (10)."""
    background_threads: int = 2
    """Threads for flushes and compactions (2)."""
    deletion_compaction_window: int = 128
    """Entries in the sliding window of the deletion-triggered compaction; 0 disables (128).
    The end and seen-id indexes are deleted from the front like queues; compacting files
    dense with deletions keeps their scans from wading through tombstones."""
    deletion_compaction_trigger: int = 64
    """Deletions within one window that mark an SST file for compaction (64)."""
    use_fsync: bool = False
    """fsync() rather than fdatasync() when RocksDB syncs files (off)."""
    sync_writes: bool = False
    """Sync the write-ahead log on every write (off: a crash of the machine, not of the
    process, may lose the latest writes, which the stream replays from its offsets)."""
    create_if_missing: bool = True
    """Create the directory and an empty store if there is none (on)."""

    def __post_init__(self) -> None:
        positive = {
            "write_buffer_size": self.write_buffer_size,
            "max_write_buffer_number": self.max_write_buffer_number,
            "background_threads": self.background_threads,
        }
        for name, value in positive.items():
            if value < 1:
                msg = f"RocksDBOptions.{name} must be at least 1, got {value}"
                raise ConfigError(msg)
        non_negative = {
            "block_cache_size": self.block_cache_size,
            "bloom_bits_per_key": self.bloom_bits_per_key,
            "deletion_compaction_window": self.deletion_compaction_window,
            "deletion_compaction_trigger": self.deletion_compaction_trigger,
        }
        for name, value in non_negative.items():
            if value < 0:
                msg = f"RocksDBOptions.{name} must not be negative, got {value}"
                raise ConfigError(msg)
        if self.max_open_files < 1 and self.max_open_files != -1:
            msg = (
                f"RocksDBOptions.max_open_files must be -1 or at least 1, got {self.max_open_files}"
            )
            raise ConfigError(msg)
        if self.compression not in _COMPRESSION:
            msg = (
                f"RocksDBOptions.compression must be one of {sorted(_COMPRESSION)}, "
                f"got {self.compression!r}"
            )
            raise ConfigError(msg)
        if self.deletion_compaction_trigger > self.deletion_compaction_window:
            msg = (
                "RocksDBOptions.deletion_compaction_trigger must not exceed "
                f"deletion_compaction_window ({self.deletion_compaction_trigger} > "
                f"{self.deletion_compaction_window})"
            )
            raise ConfigError(msg)

    def to_options(self) -> Options:
        """The rocksdict `Options` (raw mode) these knobs describe."""
        options = Options(raw_mode=True)
        options.create_if_missing(self.create_if_missing)
        options.set_write_buffer_size(self.write_buffer_size)
        options.set_max_write_buffer_number(self.max_write_buffer_number)
        options.set_max_open_files(self.max_open_files)
        options.set_compression_type(_COMPRESSION[self.compression]())
        options.increase_parallelism(self.background_threads)
        options.set_use_fsync(self.use_fsync)
        table = BlockBasedOptions()
        if self.block_cache_size:
            table.set_block_cache(Cache(self.block_cache_size))
        else:
            table.disable_cache()
        if self.bloom_bits_per_key:
            table.set_bloom_filter(self.bloom_bits_per_key, False)
        options.set_block_based_table_factory(table)
        if self.deletion_compaction_window:
            options.add_compact_on_deletion_collector_factory(
                self.deletion_compaction_window, self.deletion_compaction_trigger, 0.0
            )
        return options


class _Closed:
    """Stands in for the database after `close()`: any use raises `StateStoreError`."""

    def __init__(self, path: Path) -> None:
        self._path = path

    def __getattr__(self, name: str) -> NoReturn:
        msg = f"the state store at {self._path} is closed; open a new RocksDBStateStore"
        raise StateStoreError(msg)


def _open_error(path: Path, exc: Exception) -> StateStoreError:
    detail = str(exc)
    if "lock" in detail.lower():
        msg = (
            f"the state directory {path} is locked: another worker (or another store in "
            "this process) has it open. Stop that worker, or give this one its own state "
            f"directory. RocksDB said: {detail}"
        )
    else:
        msg = (
            f"could not open the RocksDB state store at {path}: check that the directory "
            "exists (or create_if_missing is on), is writable, and holds a Tripwire state "
            f"store or nothing. RocksDB said: {detail}"
        )
    return StateStoreError(msg)


def _clamp_end(prefix: bytes, at_most: int) -> bytes | None:
    """Upper bound (exclusive) of the keys `prefix T(t) ...` with `t <= at_most`."""
    if at_most >= INT64_MAX:
        return prefix_end(prefix)
    return prefix_end(prefix + encode_time(at_most))


class RocksDBStateStore:
    """The state of one worker on local disk; survives restarts (`close()`, then reopen)."""

    def __init__(self, path: Path, options: RocksDBOptions | None = None) -> None:
        self._path = Path(path)
        self._options = options if options is not None else RocksDBOptions()
        if self._options.create_if_missing:
            try:
                self._path.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                msg = (
                    f"could not create the state directory {self._path}: {exc.strerror}. "
                    "Check the path and its permissions."
                )
                raise StateStoreError(msg) from exc
        try:
            self._db = Rdict(str(self._path), self._options.to_options())
        except Exception as exc:
            raise _open_error(self._path, exc) from exc
        self._write_options = WriteOptions()
        self._write_options.sync = self._options.sync_writes
        try:
            self._bucket_count = self._check_format()
        except BaseException:
            self.close()
            raise

    def _check_format(self) -> int:
        stored = self._db.get(_FORMAT_KEY)
        if stored is None:
            if next(iter(self._db.keys()), None) is not None:
                msg = (
                    f"{self._path} holds a RocksDB database that is not a Tripwire state "
                    "store; point the worker at an empty or Tripwire-owned directory."
                )
                raise StateStoreError(msg)
            batch = WriteBatch(raw_mode=True)
            batch.put(_FORMAT_KEY, encode_int(_FORMAT))
            batch.put(_COUNT_KEY, encode_int(0))
            self._write(batch)
            return 0
        version = decode_int(stored)
        if version != _FORMAT:
            msg = (
                f"the state store at {self._path} has format {version}, this build reads "
                f"format {_FORMAT}; use a build that matches, or start from an empty directory."
            )
            raise StateStoreError(msg)
        count = self._db.get(_COUNT_KEY)
        if count is None:
            msg = f"the state store at {self._path} lacks its bucket count; it is damaged."
            raise StateStoreError(msg)
        return decode_int(count)

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def path(self) -> Path:
        return self._path

    def close(self) -> None:
        """Flush and close the database; later calls do nothing."""
        db = self._db
        if isinstance(db, _Closed):
            return
        self._db = cast(Rdict, _Closed(self._path))
        db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # -- plumbing ------------------------------------------------------------------------
    def _write(self, batch: WriteBatch) -> None:
        try:
            self._db.write(batch, self._write_options)
        except StateStoreError:
            raise
        except Exception as exc:
            msg = (
                f"could not write to the state store at {self._path}: {exc}. "
                "Check free disk space and the directory's permissions."
            )
            raise StateStoreError(msg) from exc

    def _scan(self, lower: bytes, upper: bytes | None) -> Iterator[tuple[bytes, bytes]]:
        """(key, value) for keys in `[lower, upper)`, in key order."""
        # A generator on purpose: rocksdict 0.3.29's iterator does not keep its upper bound
        # alive (neither the `ReadOptions` nor the bytes given to it); if they are freed
        # while the iterator runs it reads freed memory and stops early. This frame keeps
        # `read` and `upper` referenced until the scan ends.
        read = ReadOptions()
        if upper is not None:
            read.set_iterate_upper_bound(upper)
        yield from cast(
            Iterator[tuple[bytes, bytes]], self._db.items(from_key=lower, read_opt=read)
        )

    def _scan_keys(self, lower: bytes, upper: bytes | None) -> Iterator[bytes]:
        """Keys in `[lower, upper)`, in key order (a generator, like `_scan`)."""
        read = ReadOptions()
        if upper is not None:
            read.set_iterate_upper_bound(upper)
        yield from cast(Iterator[bytes], self._db.keys(from_key=lower, read_opt=read))

    def _get_many(self, keys: list[bytes]) -> list[bytes | None]:
        if not keys:
            return []
        return cast(list[bytes | None], self._db.get(cast(list[Any], keys)))

    # -- buckets ------------------------------------------------------------------------
    def bucket(self, trigger_id: str, key: BucketKey) -> Bucket | None:
        raw = self._db.get(_BUCKET + encode_str(trigger_id) + encode_key(key))
        return None if raw is None else decode_bucket(raw)

    def put_bucket(
        self, trigger_id: str, key: BucketKey, bucket: Bucket, *, satisfied: bool = False
    ) -> None:
        trigger, encoded_key = encode_str(trigger_id), encode_key(key)
        bucket_key = _BUCKET + trigger + encoded_key
        new_end = encode_time(bucket.end)
        old_raw = self._db.get(bucket_key)
        batch = WriteBatch(raw_mode=True)
        count = self._bucket_count
        if old_raw is None:
            old_end, was_satisfied = None, False
            count += 1
            batch.put(_COUNT_KEY, encode_int(count))
        else:
            old = orjson.loads(old_raw)
            old_end, was_satisfied = encode_time(old["end"]), bool(old["satisfied"])
        if old_end != new_end:
            if old_end is not None:
                batch.delete(_END + old_end + trigger + encoded_key)
                batch.delete(_TRIGGER_END + trigger + old_end + encoded_key)
            batch.put(_END + new_end + trigger + encoded_key, b"")
            batch.put(_TRIGGER_END + trigger + new_end + encoded_key, b"")
        if satisfied and not was_satisfied:
            batch.put(_SATISFIED + trigger + encoded_key, b"")
        elif was_satisfied and not satisfied:
            batch.delete(_SATISFIED + trigger + encoded_key)
        batch.put(bucket_key, encode_bucket(bucket, satisfied=satisfied))
        self._write(batch)
        self._bucket_count = count

    def delete_bucket(self, trigger_id: str, key: BucketKey) -> None:
        trigger, encoded_key = encode_str(trigger_id), encode_key(key)
        bucket_key = _BUCKET + trigger + encoded_key
        old_raw = self._db.get(bucket_key)
        if old_raw is None:
            return
        old = orjson.loads(old_raw)
        end = encode_time(old["end"])
        count = self._bucket_count - 1
        batch = WriteBatch(raw_mode=True)
        batch.delete(bucket_key)
        batch.delete(_END + end + trigger + encoded_key)
        batch.delete(_TRIGGER_END + trigger + end + encoded_key)
        if old["satisfied"]:
            batch.delete(_SATISFIED + trigger + encoded_key)
        batch.put(_COUNT_KEY, encode_int(count))
        self._write(batch)
        self._bucket_count = count

    def satisfied_keys(self, trigger_id: str) -> list[BucketKey]:
        prefix = _SATISFIED + encode_str(trigger_id)
        start = len(prefix)
        return [decode_key(k, start) for k in self._scan_keys(prefix, prefix_end(prefix))]

    def satisfied_buckets(self) -> list[tuple[str, BucketKey]]:
        out = []
        for raw in self._scan_keys(_SATISFIED, prefix_end(_SATISFIED)):
            trigger_id, end = decode_str(raw, len(_SATISFIED))
            out.append((trigger_id, decode_key(raw, end)))
        return out

    def due_buckets(self, trigger_id: str, as_of: int) -> list[tuple[BucketKey, Bucket]]:
        if as_of < INT64_MIN:
            return []
        trigger = encode_str(trigger_id)
        prefix = _TRIGGER_END + trigger
        start = len(prefix) + TIME_WIDTH
        keys = [decode_key(k, start) for k in self._scan_keys(prefix, _clamp_end(prefix, as_of))]
        raws = self._get_many([_BUCKET + trigger + encode_key(key) for key in keys])
        return [(key, decode_bucket(raw)) for key, raw in zip(keys, raws, strict=True) if raw]

    def next_end_after(self, trigger_id: str, moment: int) -> int | None:
        if moment >= INT64_MAX:
            return None
        prefix = _TRIGGER_END + encode_str(trigger_id)
        lower = prefix if moment < INT64_MIN else prefix + encode_time(moment + 1)
        first = next(self._scan_keys(lower, prefix_end(prefix)), None)
        return None if first is None else decode_time(first, len(prefix))

    def expired_buckets(self, cutoff: int) -> list[tuple[str, BucketKey]]:
        if cutoff < INT64_MIN:
            return []
        out: list[tuple[str, BucketKey]] = []
        for index_key in self._scan_keys(_END, _clamp_end(_END, cutoff)):
            trigger_id, pos = decode_str(index_key, len(_END) + TIME_WIDTH)
            out.append((trigger_id, decode_key(index_key, pos)))
        return out

    def buckets(self, trigger_id: str) -> Iterator[tuple[BucketKey, Bucket]]:
        # Read in chunks, so no RocksDB iterator stays open between yields.
        prefix = _BUCKET + encode_str(trigger_id)
        upper, start, lower = prefix_end(prefix), len(prefix), prefix
        while True:
            chunk = list(islice(self._scan(lower, upper), _SCAN_CHUNK))
            for raw_key, raw in chunk:
                yield decode_key(raw_key, start), decode_bucket(raw)
            if len(chunk) < _SCAN_CHUNK:
                return
            lower = chunk[-1][0] + b"\x00"  # the smallest key after the last one read

    def bucket_count(self) -> int:
        return self._bucket_count

    # -- held expect events -------------------------------------------------------------
    def held(self, trigger_id: str, key: BucketKey) -> list[HeldEvent]:
        raw = self._db.get(_HELD + encode_str(trigger_id) + encode_key(key))
        return [] if raw is None else decode_held(raw)

    def put_held(self, trigger_id: str, key: BucketKey, events: list[HeldEvent]) -> None:
        held_key = _HELD + encode_str(trigger_id) + encode_key(key)
        batch = WriteBatch(raw_mode=True)
        if events:
            batch.put(held_key, encode_held(events))
        elif self._db.get(held_key) is not None:
            batch.delete(held_key)
        else:
            return
        self._write(batch)

    def held_keys(self) -> list[tuple[str, BucketKey]]:
        out: list[tuple[str, BucketKey]] = []
        for held_key in self._scan_keys(_HELD, prefix_end(_HELD)):
            trigger_id, pos = decode_str(held_key, len(_HELD))
            out.append((trigger_id, decode_key(held_key, pos)))
        return out

    def held_keys_held_before(self, cutoff: int) -> list[tuple[str, BucketKey]]:
        # A scan: the RocksDB store is not on the tick's hot path.
        return [
            (trigger_id, key)
            for trigger_id, key in self.held_keys()
            if any(h.held_at < cutoff for h in self.held(trigger_id, key))
        ]

    # -- composite child firings -----------------------------------------------------------
    def child_firings(self, composite_id: str) -> list[Firing]:
        raw = self._db.get(_CHILDREN + encode_str(composite_id))
        return [] if raw is None else decode_firings(raw)

    def put_child_firings(self, composite_id: str, firings: list[Firing]) -> None:
        children_key = _CHILDREN + encode_str(composite_id)
        batch = WriteBatch(raw_mode=True)
        if firings:
            batch.put(children_key, encode_firings(firings))
        elif self._db.get(children_key) is not None:
            batch.delete(children_key)
        else:
            return
        self._write(batch)

    # -- processed event ids ------------------------------------------------------------------
    def seen_at(self, event_id: str) -> int | None:
        raw = self._db.get(_SEEN + encode_str(event_id))
        return None if raw is None else decode_int(raw)

    def mark_seen(self, event_id: str, at: int) -> None:
        event = encode_str(event_id)
        new_at = encode_time(at)
        old_raw = self._db.get(_SEEN + event)
        if old_raw is not None and decode_int(old_raw) == at:
            return
        batch = WriteBatch(raw_mode=True)
        if old_raw is not None:
            batch.delete(_SEEN_AT + encode_time(decode_int(old_raw)) + event)
        batch.put(_SEEN + event, encode_int(at))
        batch.put(_SEEN_AT + new_at + event, b"")
        self._write(batch)

    def forget_seen_before(self, cutoff: int) -> None:
        if cutoff <= INT64_MIN:
            return
        # Ids seen at `at < cutoff` are the index keys below `j T(cutoff)`.
        upper = _SEEN_AT + encode_time(cutoff) if cutoff <= INT64_MAX else prefix_end(_SEEN_AT)
        start = len(_SEEN_AT) + TIME_WIDTH
        while True:
            stale = list(islice(self._scan_keys(_SEEN_AT, upper), _DELETE_CHUNK))
            if not stale:
                return
            batch = WriteBatch(raw_mode=True)
            for index_key in stale:
                batch.delete(index_key)
                batch.delete(_SEEN + index_key[start:])
            self._write(batch)
            if len(stale) < _DELETE_CHUNK:
                return

    # -- causal ordering ----------------------------------------------------------------------
    @staticmethod
    def _leader(event: EventRecord) -> bytes:
        if event.follows is None:
            msg = f"event {event.id} follows no event, so it cannot wait as a follower"
            raise ValueError(msg)
        return encode_str(event.follows)

    def add_follower(self, event: EventRecord) -> None:
        leader, event_key = self._leader(event), encode_str(event.id)
        follower_key = _FOLLOWER + leader + event_key
        old_raw = self._db.get(follower_key)
        batch = WriteBatch(raw_mode=True)
        if old_raw is not None:
            old_received = orjson.loads(old_raw)["received"]
            if old_received is not None:
                batch.delete(_FOLLOWER_RECEIVED + encode_time(old_received) + leader + event_key)
        batch.put(follower_key, encode_event(event))
        if event.received is not None:
            batch.put(_FOLLOWER_RECEIVED + encode_time(event.received) + leader + event_key, b"")
        self._write(batch)

    def followers_of(self, leader_id: str) -> list[EventRecord]:
        prefix = _FOLLOWER + encode_str(leader_id)
        waiting = [decode_event(raw) for _, raw in self._scan(prefix, prefix_end(prefix))]
        return sorted(waiting, key=lambda e: (e.occurred, e.id))

    def remove_follower(self, event: EventRecord) -> None:
        leader, event_key = self._leader(event), encode_str(event.id)
        follower_key = _FOLLOWER + leader + event_key
        old_raw = self._db.get(follower_key)
        if old_raw is None:
            return
        batch = WriteBatch(raw_mode=True)
        batch.delete(follower_key)
        old_received = orjson.loads(old_raw)["received"]
        if old_received is not None:
            batch.delete(_FOLLOWER_RECEIVED + encode_time(old_received) + leader + event_key)
        self._write(batch)

    def followers_received_by(self, cutoff: int) -> list[EventRecord]:
        if cutoff < INT64_MIN:
            return []
        start = len(_FOLLOWER_RECEIVED) + TIME_WIDTH
        keys = [
            _FOLLOWER + index_key[start:]
            for index_key in self._scan_keys(
                _FOLLOWER_RECEIVED, _clamp_end(_FOLLOWER_RECEIVED, cutoff)
            )
        ]
        lost = [decode_event(raw) for raw in self._get_many(keys) if raw is not None]
        return sorted(lost, key=lambda e: (e.occurred, e.id))

    # -- named values ---------------------------------------------------------------------------
    def meta(self, name: str) -> int | None:
        raw = self._db.get(_META + encode_str(name))
        return None if raw is None else decode_int(raw)

    def put_meta(self, name: str, value: int | None) -> None:
        meta_key = _META + encode_str(name)
        batch = WriteBatch(raw_mode=True)
        if value is not None:
            batch.put(meta_key, encode_int(value))
        elif self._db.get(meta_key) is not None:
            batch.delete(meta_key)
        else:
            return
        self._write(batch)

    # -- lifecycle --------------------------------------------------------------------------------
    def drop_trigger(self, trigger_id: str) -> None:
        trigger = encode_str(trigger_id)
        batch = WriteBatch(raw_mode=True)
        ends_prefix = _TRIGGER_END + trigger
        dropped = 0
        for index_key in self._scan_keys(ends_prefix, prefix_end(ends_prefix)):
            end = index_key[len(ends_prefix) : len(ends_prefix) + TIME_WIDTH]
            batch.delete(_END + end + trigger + index_key[len(ends_prefix) + TIME_WIDTH :])
            dropped += 1
        for table in (_BUCKET, _TRIGGER_END, _SATISFIED, _HELD):
            prefix = table + trigger
            upper = prefix_end(prefix)
            if upper is not None and next(self._scan_keys(prefix, upper), None) is not None:
                batch.delete_range(prefix, upper)
        children_key = _CHILDREN + trigger
        if self._db.get(children_key) is not None:
            batch.delete(children_key)
        count = self._bucket_count - dropped
        if dropped:
            batch.put(_COUNT_KEY, encode_int(count))
        if batch.is_empty():
            return
        self._write(batch)
        self._bucket_count = count
