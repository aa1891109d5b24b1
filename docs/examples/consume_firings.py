"""Consume Tripwire's firings topic and print one line per firing, skipping redeliveries.

    TRIPWIRE_KAFKA_BOOTSTRAP=127.0.0.1:9092 TRIPWIRE_TOPIC_FIRINGS=tripwire.firings \
        python docs/examples/consume_firings.py my-consumer-group --max 10

Delivery is at-least-once, so the same firing can arrive twice; it then carries the same
`id`, and this consumer remembers the last `--remember` ids it handled (a bounded dict,
oldest forgotten first) to skip it. A real action worker should record handled ids
durably (see docs/firings.md). Offsets are committed only after the records they cover
were handled, so a crash means redelivery, never loss.

Needs only aiokafka (a Tripwire dependency); see docs/firings.md for the record format.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections import OrderedDict
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import TopicPartition


class SeenIds:
    """The last `size` firing ids handled, oldest forgotten first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._ids: OrderedDict[str, None] = OrderedDict()

    def add(self, firing_id: str) -> bool:
        """Remember `firing_id`; False if it was already remembered (a redelivery)."""
        if firing_id in self._ids:
            self._ids.move_to_end(firing_id)
            return False
        self._ids[firing_id] = None
        if len(self._ids) > self.size:
            self._ids.popitem(last=False)
        return True


def describe(record: dict[str, Any]) -> str:
    """One line per firing: id, state, when, automation, bucket."""
    bucket = ",".join(f"{k}={v}" for k, v in sorted(record["bucket"].items())) or "-"
    return (
        f"{record['id']} {record['state']} {record['fired_at']} "
        f"automation={record['automation_name']!r} bucket={bucket}"
    )


def handle(value: bytes | None, seen: SeenIds) -> bool:
    """Print one firing record; False if it was a redelivery (or not a firing)."""
    if value is None:
        return False
    try:
        record = json.loads(value)
        version = record.get("schema_version")
    except (ValueError, AttributeError):
        print(f"not a firing record, skipped: {value[:80]!r}", file=sys.stderr)
        return False
    if version != 1:
        # A new major version of the record: stop rather than misread it.
        msg = f"unsupported firing schema_version {version!r}"
        raise SystemExit(msg)
    if not seen.add(record["id"]):
        print(f"duplicate {record['id']} skipped", file=sys.stderr)
        return False
    # Act on the firing here; this example prints it.
    print(describe(record), flush=True)
    return True


async def consume(group: str, limit: int | None, remember: int) -> int:
    bootstrap = os.environ.get("TRIPWIRE_KAFKA_BOOTSTRAP", "127.0.0.1:9092")
    topic = os.environ.get("TRIPWIRE_TOPIC_FIRINGS", "tripwire.firings")
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        # "earliest": a new group starts at the beginning of the topic. Do not use
        # "latest" against the embedded Tansu broker: its ListOffsets(LATEST) answer is
        # wrong and the consumer would re-read old records.
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    seen = SeenIds(remember)
    printed = 0
    await consumer.start()
    try:
        while limit is None or printed < limit:
            handled: dict[TopicPartition, int] = {}
            batches = await consumer.getmany(timeout_ms=1000)
            try:
                for tp, messages in batches.items():
                    for message in messages:
                        if limit is not None and printed >= limit:
                            break
                        if handle(message.value, seen):
                            printed += 1
                        handled[tp] = message.offset + 1
            finally:
                # Commit only what was handled (at-least-once: a crash before this line
                # redelivers these records, and the id check skips the repeats).
                if handled:
                    await consumer.commit(handled)
    finally:
        await consumer.stop()
    return printed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Print Tripwire firings, one line each, skipping redeliveries."
    )
    parser.add_argument("group", help="Kafka consumer group id (committed offsets live here)")
    parser.add_argument(
        "--max",
        type=int,
        default=None,
        metavar="N",
        help="stop after printing N firings (skipped duplicates do not count)",
    )
    parser.add_argument(
        "--remember",
        type=int,
        default=100_000,
        metavar="N",
        help="how many recent firing ids to keep for deduplication (default 100000)",
    )
    args = parser.parse_args(argv)
    try:
        asyncio.run(consume(args.group, args.max, args.remember))
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
