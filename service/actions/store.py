"""Completed (firing id, action index) pairs in RocksDB, so a redelivered firing skips them."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
from rocksdict import AccessType, Options, Rdict

from service.errors import StateStoreError

__all__ = ["CompletionStore"]


class CompletionStore:
    """One RocksDB with a TTL: key `firing:index`, value the outcome and when."""

    def __init__(self, path: Path, ttl_seconds: float) -> None:
        path.mkdir(parents=True, exist_ok=True)
        try:
            self._db = Rdict(
                str(path),
                Options(raw_mode=True),
                access_type=AccessType.with_ttl(int(ttl_seconds)),
            )
        except Exception as exc:
            msg = f"cannot open the completed-actions table in {path}: {exc}"
            raise StateStoreError(msg) from exc

    def done(self, key: str) -> bool:
        return self._db.get(key.encode()) is not None

    def outcome(self, key: str) -> dict[str, object] | None:
        raw = self._db.get(key.encode())
        if raw is None:
            return None
        value: dict[str, object] = orjson.loads(raw)
        return value

    def record(self, key: str, outcome: str, attempts: int, **extra: object) -> None:
        # `extra` (the error, the result details) lets a redelivery announce the same
        # outcome again without running the action again.
        value = {"outcome": outcome, "attempts": attempts, "at": time.time(), **extra}
        self._db.put(key.encode(), orjson.dumps(value))

    def flush(self) -> None:
        # Before offsets are committed: a completion must survive a crash (even of the
        # machine) after the commit, so the write-ahead log is synced to disk.
        self._db.flush_wal(True)

    def close(self) -> None:
        self._db.close()
