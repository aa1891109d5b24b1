"""Workarounds for the embedded broker (Tansu) that are correct on Apache Kafka too.

1. High watermarks from a Fetch response. Tansu answers ListOffsets(LATEST) with the
   base offset of the last record batch + 1 instead of the log end (broker notes, gap 1),
   which breaks Faust's table recovery and aiokafka's `end_offsets()`. A Fetch
   response's high watermark is right on Tansu and is what Apache Kafka reports for
   ListOffsets too.
2. A short Fetch wait for the worker's consumer. Tansu does not answer a waiting Fetch
   when data arrives, so Faust's hard-coded 1,500 ms wait becomes the latency of every
   stage. A short wait (never 0: broker notes, gap 2) costs a few more Fetch requests
   on an idle Apache Kafka.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiokafka.errors import for_code
from aiokafka.protocol.fetch import FetchRequest
from aiokafka.structs import TopicPartition

__all__ = ["caught_up", "fetch_highwaters", "install_faust_patch"]


async def fetch_highwaters(
    consumer: Any, partitions: Iterable[TopicPartition]
) -> dict[TopicPartition, int]:
    """High watermark of each partition, from one Fetch per leader."""
    partitions = list(partitions)
    client = consumer._client
    starts = await consumer.beginning_offsets(partitions)
    by_leader: dict[int, dict[str, list[tuple[int, int, int]]]] = {}
    for tp in partitions:
        leader = client.cluster.leader_for_partition(tp)
        by_leader.setdefault(leader, {}).setdefault(tp.topic, []).append(
            (tp.partition, starts[tp], 1)
        )
    out: dict[TopicPartition, int] = {}
    for leader, topics in by_leader.items():
        # max_wait_time must be > 0: Tansu answers a 0 ms Fetch with no partitions at all.
        request = FetchRequest(
            max_wait_time=1,
            min_bytes=0,
            max_bytes=1,
            isolation_level=0,
            topics=list(topics.items()),
        )
        response = await client.send(leader, request)
        for topic, parts in response.topics:
            for partition, error, highwater, *_ in parts:
                if error:
                    what = f"high watermark of {topic}[{partition}]"
                    raise for_code(error)(what)
                out[TopicPartition(topic, partition)] = highwater
    if missing := set(partitions) - set(out):
        msg = f"no high watermark for {sorted(missing)}"
        raise RuntimeError(msg)
    return out


async def caught_up(consumer: Any, target: dict[TopicPartition, int]) -> bool:
    """Has the consumer read every partition up to its target offset?"""
    for tp, offset in target.items():
        if await consumer.position(tp) < offset:
            return False
    return True


_installed = False


def install_faust_patch(fetch_wait_ms: int) -> None:
    """Patch Faust's consumer: Fetch high watermarks, and `fetch_wait_ms` (idempotent)."""
    global _installed
    if _installed:
        return
    from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread

    create_worker_consumer = AIOKafkaConsumerThread._create_worker_consumer

    def _create_worker_consumer(self: Any, *args: Any, **kwargs: Any) -> Any:
        consumer = create_worker_consumer(self, *args, **kwargs)
        # Read by the consumer's Fetcher when it starts, which is after this.
        consumer._fetch_max_wait_ms = max(1, fetch_wait_ms)
        return consumer

    AIOKafkaConsumerThread._create_worker_consumer = _create_worker_consumer  # type: ignore[method-assign]

    list_offsets_highwaters = AIOKafkaConsumerThread._highwaters

    async def _highwaters(self: Any, partitions: Any) -> Any:
        if self.consumer.in_transaction:  # the exactly_once path keeps Faust's LSO logic
            return await list_offsets_highwaters(self, partitions)
        return await fetch_highwaters(self._ensure_consumer(), list(partitions))

    # The broker notes' workaround replaces a private method of faust-streaming 0.15.3.
    AIOKafkaConsumerThread._highwaters = _highwaters  # type: ignore[method-assign]
    _installed = True
