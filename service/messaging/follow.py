"""Follow a compacted topic from its beginning: a latest-value-per-key view kept current."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition

from service.messaging.compat import caught_up, fetch_highwaters

__all__ = ["Changes", "CompactedFollower"]

# Latest value per key seen in one fetch; None is a tombstone.
Changes = Mapping[bytes, bytes | None]


class CompactedFollower:
    """Reads a topic to its end, then keeps reading; tells writers when it has seen a write.

    `apply` runs for every fetch that changed something. `loaded` is set once the
    records present at start-up have all been applied.
    """

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        apply: Callable[[Changes], None],
        fetch_wait_ms: int = 100,
    ) -> None:
        self.bootstrap = bootstrap
        self.topic = topic
        self.apply = apply
        self.fetch_wait_ms = fetch_wait_ms
        self.loaded = asyncio.Event()
        self._positions: dict[int, int] = {}
        self._moved = asyncio.Condition()

    async def run(self) -> None:
        """Follow the topic until cancelled."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=self.fetch_wait_ms,
        )
        await consumer.start()
        try:
            partitions = consumer.partitions_for_topic(self.topic) or set()
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            if tps:
                await consumer.seek_to_beginning(*tps)
            # Not end_offsets(): Tansu under-reports it (broker notes, gap 1).
            target = await fetch_highwaters(consumer, tps) if tps else {}
            while True:
                batches = await consumer.getmany(timeout_ms=200)
                changes: dict[bytes, bytes | None] = {}
                for tp, records in batches.items():
                    for record in records:
                        if record.key is not None:
                            changes[record.key] = record.value
                    if records:
                        self._positions[tp.partition] = records[-1].offset + 1
                if changes:
                    self.apply(changes)
                if batches:
                    async with self._moved:
                        self._moved.notify_all()
                if not self.loaded.is_set() and await caught_up(consumer, target):
                    self.loaded.set()
        finally:
            await consumer.stop()

    async def wait_for(self, partition: int, offset: int, seconds: float) -> bool:
        """Wait until the record at `offset` of `partition` has been applied."""

        def seen() -> bool:
            return self._positions.get(partition, 0) > offset

        async with self._moved:
            try:
                await asyncio.wait_for(self._moved.wait_for(seen), seconds)
            except TimeoutError:
                return False
        return True
