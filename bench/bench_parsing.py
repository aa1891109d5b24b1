"""CPU cost of decoding and validating one event, the pydantic model against leaner decoders.

    .venv/bin/python bench/bench_parsing.py --events DIR/events.jsonl [--rounds 5] [--limit 20000]

Every candidate turns the same event bytes (one JSON line each, e.g. of
bench/firing_workload.py) into the `EventRecord` the core reads, as the route stage
does (`service.event_records.decode_event`: size check, `orjson.loads`, object check,
validation, record):

* pydantic: what route did before, `EventRecord.from_validated(parse_event(data), ...)`;
* route now: `service.event_records.decode_event` (`service.event_records.event_record`);
* msgspec (when installed): a `msgspec.Struct` of the fields the core reads, decoded
  from the bytes with the payload left undecoded (`msgspec.Raw`), plus the label rules
  msgspec cannot express.

Rounds alternate the candidates (A, B, C, A, B, C, ...) so the machine's noise falls on
all of them; each figure is the median round's process CPU time per event, and the
ratios are against the pydantic path of the same run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from service.core.records import EventRecord
from service.core.times import to_us
from service.errors import DecodeError
from service.event_records import _UUID, _may_be_too_deep, _timestamp, decode_event
from service.models.events import parse_event

MAX_BYTES = 1 << 20


def pydantic_path(raw: bytes) -> EventRecord:
    data = orjson.loads(raw)
    if not isinstance(data, dict):
        msg = "not an object"
        raise DecodeError(msg, "not_object")
    return EventRecord.from_validated(parse_event(data), data, raw)


def route_now(raw: bytes) -> EventRecord:
    return decode_event(raw, MAX_BYTES)


try:
    import msgspec
except ImportError:  # an optional candidate: not a dependency of Tripwire
    msgspec = None

if msgspec is not None:

    class MsgspecEvent(msgspec.Struct):
        """The fields the core reads; the payload stays bytes (`Raw`), extras are skipped."""

        id: str
        occurred: datetime
        event: Annotated[str, msgspec.Meta(max_length=1024)]
        resource: Annotated[dict[str, str], msgspec.Meta(max_length=500)]
        related: Annotated[list[dict[str, str]], msgspec.Meta(max_length=100)] = []  # noqa: RUF012
        payload: msgspec.Raw = msgspec.Raw(b"{}")
        follows: str | None = None
        received: datetime | None = None

    _DECODER = msgspec.json.Decoder(MsgspecEvent)

    class MsgspecFields(msgspec.Struct):
        """The same fields typed for `msgspec.convert` of orjson's dict; times as text."""

        id: str
        occurred: str
        event: Annotated[str, msgspec.Meta(max_length=1024)]
        resource: Annotated[dict[str, str], msgspec.Meta(max_length=500)]
        related: Annotated[
            list[Annotated[dict[str, str], msgspec.Meta(max_length=500)]],
            msgspec.Meta(max_length=100),
        ] = []  # noqa: RUF012
        follows: str | None = None
        received: str | None = None


def orjson_msgspec_convert(raw: bytes) -> EventRecord:
    """orjson's dict (exactly orjson's JSON), types and sizes checked by msgspec.convert."""
    data = orjson.loads(raw)
    fields = msgspec.convert(data, MsgspecFields)
    if not _UUID.match(fields.id) or not fields.resource.get("prefect.resource.id"):
        msg = "id"
        raise ValueError(msg)
    for labels in fields.related:
        if not labels.get("prefect.resource.id") or not labels.get("prefect.resource.role"):
            msg = "related"
            raise ValueError(msg)
    if type(data.get("payload", {})) is not dict or _may_be_too_deep(data, raw):
        msg = "payload"
        raise ValueError(msg)
    occurred = _timestamp(fields.occurred)
    received = _timestamp(fields.received) if fields.received is not None else None
    if occurred is None:
        msg = "occurred"
        raise ValueError(msg)
    record = EventRecord.from_json(data, occurred, received)
    record.raw = raw
    return record


def msgspec_path(raw: bytes) -> EventRecord:
    event = _DECODER.decode(raw)
    if not event.resource.get("prefect.resource.id"):
        msg = "resource id"
        raise ValueError(msg)
    for labels in event.related:
        if not labels.get("prefect.resource.id") or not labels.get("prefect.resource.role"):
            msg = "related"
            raise ValueError(msg)
        if len(labels) > 500:
            msg = "labels"
            raise ValueError(msg)
    received = event.received
    return EventRecord.from_raw(
        raw,
        (
            event.id,
            event.event,
            to_us(event.occurred),
            to_us(received) if received is not None else None,
            event.follows,
        ),
        event.resource,
        event.related,
    )


def per_event(decode: Callable[[bytes], EventRecord], lines: list[bytes]) -> float:
    started = time.process_time()
    for line in lines:
        decode(line)
    return (time.process_time() - started) / len(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=20_000)
    args = parser.parse_args(argv)
    lines = [ln for ln in args.events.read_bytes().splitlines() if ln.strip()][: args.limit]
    candidates: dict[str, Callable[[bytes], EventRecord]] = {
        "pydantic (route before)": pydantic_path,
        "route now (event_record)": route_now,
    }
    if msgspec is not None:
        candidates["orjson + msgspec.convert"] = orjson_msgspec_convert
        candidates["msgspec Struct from bytes (payload Raw)"] = msgspec_path
    samples: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.rounds):
        for name, decode in candidates.items():
            samples[name].append(per_event(decode, lines))
    base = statistics.median(samples["pydantic (route before)"])
    size = sum(map(len, lines)) / len(lines)
    print(f"{len(lines)} events of {size:.0f} bytes on average, {args.rounds} alternating rounds")
    print("| decoder | CPU µs/event (median round) | vs pydantic |")
    print("|---|---:|---:|")
    for name, values in samples.items():
        median = statistics.median(values)
        print(f"| {name} | {median * 1e6:.2f} | {median / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
