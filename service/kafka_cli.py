"""`tripwire events produce` and `tripwire firings tail`: the topics from the shell."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, TextIO

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import TopicPartition

from service.config import Settings
from service.errors import ConfigError, DecodeError, ValidationFailed
from service.messaging.compat import caught_up, fetch_highwaters
from service.messaging.topics import topic_partitions

__all__ = ["main", "produce_events", "tail_firings"]

# Sends in flight before the producer waits for their acks: bounds memory on endless input.
_IN_FLIGHT = 5000


def _lines(stream: BinaryIO) -> Iterator[tuple[int, bytes]]:
    """Numbered lines, read one at a time (stdin may never end)."""
    for number, line in enumerate(stream, start=1):
        yield number, line.strip()


async def produce_events(
    settings: Settings, lines: Iterable[tuple[int, bytes]], source: str, errors: TextIO
) -> tuple[int, int]:
    """Validate and produce each line keyed by its prefect.resource.id; (produced, refused)."""
    # Imported here: the route topology pulls in the metrics registry, which only this
    # subcommand needs.
    from service.event_records import decode_event

    topic = settings.topic_events
    await topic_partitions(
        settings, topic, "start `tripwire up` (or a worker) first: it creates the topics"
    )
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        linger_ms=5,
        acks="all",
        max_request_size=max(settings.max_event_bytes + 4096, 1_048_576),
    )
    await producer.start()
    produced = refused = 0
    pending: list[asyncio.Future[Any]] = []
    try:
        for number, raw in lines:
            # Blank and comment lines are skipped as `tripwire replay` skips them, so a
            # replay events file can be produced as it is.
            if not raw or raw.startswith((b"#", b"//")):
                continue
            try:
                record = decode_event(raw, settings.max_event_bytes)
            except (DecodeError, ValidationFailed) as exc:
                print(f"{source}:{number}: refused: {exc}", file=errors)
                refused += 1
                continue
            key = str(record.resource["prefect.resource.id"]).encode()
            pending.append(await producer.send(topic, raw, key=key))
            produced += 1
            if len(pending) >= _IN_FLIGHT:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return produced, refused


def _matches(record: dict[str, Any], automation: str | None) -> bool:
    if automation is None:
        return True
    return automation in (record.get("automation_name"), record.get("automation_id"))


async def tail_firings(
    settings: Settings,
    out: BinaryIO,
    errors: TextIO,
    *,
    follow: bool,
    from_beginning: bool,
    automation: str | None,
) -> int:
    """Print firing records as JSON lines; return how many were printed."""
    topic = settings.topic_firings
    partitions = await topic_partitions(
        settings, topic, "start `tripwire up` (or a worker) first: it creates the topics"
    )
    tps = [TopicPartition(topic, p) for p in partitions]
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        # The embedded broker does not answer a waiting Fetch when records arrive, so
        # this wait is the latency of --follow (never 0: broker notes, gap 2).
        fetch_max_wait_ms=100,
    )
    await consumer.start()
    printed = 0
    try:
        consumer.assign(tps)
        # The end from a Fetch high watermark: the embedded broker's ListOffsets(LATEST),
        # which seek_to_end() uses, lands inside the last batch (broker notes, gap 1).
        ends = await fetch_highwaters(consumer, tps)
        if from_beginning:
            await consumer.seek_to_beginning(*tps)
        else:
            for tp in tps:
                consumer.seek(tp, ends[tp])
        if follow:
            # Also the sign that the start is fixed: what is produced from now on shows.
            start = "its beginning" if from_beginning else "its end"
            print(f"following {topic} from {start}; Ctrl-C stops", file=errors, flush=True)
        while follow or not await caught_up(consumer, ends):
            batches = await consumer.getmany(timeout_ms=500)
            for tp, messages in batches.items():
                for message in messages:
                    if not follow and message.offset >= ends[tp]:
                        continue
                    try:
                        record = orjson.loads(message.value or b"")
                    except orjson.JSONDecodeError:
                        where = f"{tp.topic}[{tp.partition}]@{message.offset}"
                        print(f"{where}: not a firing record, skipped", file=errors)
                        continue
                    if not isinstance(record, dict) or not _matches(record, automation):
                        continue
                    out.write(orjson.dumps(record) + b"\n")
                    printed += 1
            out.flush()
    finally:
        await consumer.stop()
    return printed


async def _until_signalled(work: Any) -> Any:
    """Run `work`; SIGINT or SIGTERM cancels it and returns None."""
    loop = asyncio.get_running_loop()
    task = asyncio.ensure_future(work)
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, task.cancel)
    try:
        return await task
    except asyncio.CancelledError:
        return None
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


def _open_input(name: str) -> tuple[BinaryIO, str]:
    if name == "-":
        return sys.stdin.buffer, "<stdin>"
    try:
        return Path(name).open("rb"), name
    except OSError as exc:
        msg = f"cannot read events file {name!r}: {exc.strerror or exc}"
        raise ConfigError(msg) from None


def main(args: Any, settings: Settings) -> int:
    """`tripwire events produce` and `tripwire firings tail`; returns the exit status."""
    try:
        if args.command == "events":
            stream, source = _open_input(args.file)
            with contextlib.closing(stream) if args.file != "-" else contextlib.nullcontext():
                result = asyncio.run(
                    _until_signalled(produce_events(settings, _lines(stream), source, sys.stderr))
                )
            if result is None:
                print("tripwire events produce: interrupted", file=sys.stderr)
                return 130
            produced, refused = result
            print(f"produced {produced}, refused {refused}")
            return 1 if refused else 0
        try:
            asyncio.run(
                _until_signalled(
                    tail_firings(
                        settings,
                        sys.stdout.buffer,
                        sys.stderr,
                        follow=args.follow,
                        from_beginning=args.from_beginning,
                        automation=args.automation,
                    )
                )
            )
        except BrokenPipeError:
            # The reader went away (`| head`): nothing wrong; stdout goes to /dev/null so
            # that the interpreter's final flush does not report the broken pipe again.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KafkaError as exc:
        print(f"tripwire {args.command}: Kafka error: {exc}", file=sys.stderr)
        return 2
