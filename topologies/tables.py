"""The worker's RocksDB-backed Faust tables and the in-memory stores cached over them."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

from faust.types import TP

from service.errors import TableClosed
from service.state.documents import DocumentStore
from topologies.runtime import Fired, Runtime, Send

__all__ = ["PartitionTable", "settle"]

logger = logging.getLogger(__name__)

# Faust keeps each partition's persisted changelog offset under this key.
_FAUST_OFFSET_KEY = b"__faust\0offset__"


class PartitionTable:
    """A raw-bytes Faust table, read and written one partition at a time.

    Each partition's documents are cached in memory as a `DocumentStore`; RocksDB holds
    what was last written, and a store is only ever RocksDB plus the changes of the batch
    in flight. So a store is built from RocksDB when first needed, dropped when the
    partition is revoked, and dropped when a batch that changed it did not finish.

    The core's documents carry their own partition (the one the route stage chose), so
    writes go straight to that partition's RocksDB and changelog instead of through
    Faust's "current event", which would be wrong for a batch (broker notes, gap 9).
    """

    def __init__(
        self,
        table: Any,
        stores: dict[int, DocumentStore],
        new_store: Callable[[], DocumentStore] = DocumentStore,
    ) -> None:
        self.table = table
        self.stores = stores
        self._new_store = new_store
        # The agent and the timer that change this table interleave at awaits; their
        # state changes, sends and writes happen under this lock so that a write never
        # outruns its firings. One lock per table: the evaluate and compose agents
        # share no store, so one's wait for the broker's acks need not hold up the other.
        self.lock = asyncio.Lock()

    def _db(self, partition: int) -> Any:
        return self.table.data._db_for_partition(partition)

    @property
    def closed(self) -> bool:
        """Is the table stopping? Faust closes its databases first; nothing may write."""
        return bool(self.table.should_stop)

    def documents(self, partition: int) -> Iterator[tuple[bytes, bytes]]:
        """Every document stored for one partition."""
        for key, value in self._db(partition).items():
            if key != _FAUST_OFFSET_KEY:
                yield key, value

    def store(self, partition: int) -> DocumentStore:
        """The in-memory store of one partition, built from RocksDB when first needed."""
        store = self.stores.get(partition)
        if store is None:
            store = self._build(partition)
        return store

    def _build(self, partition: int) -> DocumentStore:
        store = self.stores[partition] = self._new_store()
        count = store.load(self.documents(partition))
        logger.info("%s[%d]: loaded %d documents", self.table.name, partition, count)
        return store

    @asynccontextmanager
    async def changing(self) -> AsyncIterator[None]:
        """Hold the table's lock while the block changes stores; drop them all if it fails.

        A batch that stopped half-way (failed or cancelled) may have changed stores
        without writing them; the next batch or tick would otherwise write those
        changes, and with them the redelivery guards of matches whose firings were never
        sent.
        """
        async with self.lock:
            try:
                yield
            except BaseException:
                self.stores.clear()
                raise

    async def write(self, partition: int, store: DocumentStore, send: Send) -> None:
        """Persist a store's changed documents: local RocksDB, then the changelog.

        The changelog records go straight to the producer, not one by one through Faust's
        send buffer; once they are acknowledged, the persisted offset Faust recovers from
        is moved past them, as Faust's own changelog callback would.
        """
        self._raise_if_closed(partition)
        documents = store.flush()
        if not documents:
            return
        db = self._db(partition)
        topic = self.table.changelog_topic.get_topic_name()
        pending: list[Awaitable[Any]] = []
        for key, value in documents:
            if value is None:
                db.delete(key)
            else:
                db.put(key, value)
            pending.append(await send(topic, key, value, partition, None))
        sent = await asyncio.gather(*pending)
        self._raise_if_closed(partition)  # closed while the changelog was written
        last = max(metadata.offset for metadata in sent)
        self.table.data.set_persisted_offset(TP(topic, partition), last)

    def _raise_if_closed(self, partition: int) -> None:
        if self.closed:
            msg = f"{self.table.name}[{partition}]: the table is closed, the worker is stopping"
            raise TableClosed(msg)

    def active_partitions(self) -> list[int]:
        """The table partitions this worker owns right now."""
        topic = self.table.changelog_topic.get_topic_name()
        actives = self.table.app.assignor.assigned_actives()
        return sorted(tp.partition for tp in actives if tp.topic == topic)

    def active_stores(self) -> dict[int, DocumentStore]:
        """The store of every active partition, built from RocksDB where not cached.

        A periodic pass must see partitions that no batch touched since their stores
        were dropped (a batch failed, a rebalance), not only the cached ones.
        """
        return {partition: self.store(partition) for partition in self.active_partitions()}

    def load(self) -> None:
        """Rebuild the stores of the active partitions from RocksDB (after a recovery)."""
        self.stores.clear()
        self.active_stores()


async def settle(
    runtime: Runtime,
    fired: list[Fired],
    pending: list[Awaitable[Any]],
    table: PartitionTable,
    stores: dict[int, DocumentStore],
) -> None:
    """Send the firings, wait for every send, then write the touched stores.

    Firings are acknowledged before the state that produced them is written, so a crash
    in between replays the evaluation and re-sends the same firing ids.
    """
    pending = pending + await runtime.emit(fired)
    await asyncio.gather(*pending)
    await asyncio.gather(
        *(table.write(partition, store, runtime.send) for partition, store in stores.items())
    )
