"""`tripwire backtest` on the command line: arguments in, firings and a summary out."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TextIO

import orjson

from service.api_client import ApiClient
from service.automations_cli import read_file
from service.backtest import Backtest, Summary, file_records, over_topic, prepare, run_backtest
from service.config import Settings
from service.core.times import since_time, to_us
from service.errors import ValidationFailed
from service.models.automations import Automation
from service.models.errors import validated
from service.progress import Progress
from service.replay import open_events

__all__ = ["main"]


def _read_automations(path: str) -> list[Automation]:
    items = read_file(path)
    out = []
    for index, item in enumerate(items):
        try:
            out.append(validated(partial(Automation.model_validate, item)))
        except ValidationFailed as exc:
            if len(items) == 1:
                raise
            raise ValidationFailed(
                [(f"[{index}].{loc}" if loc else f"[{index}]", msg) for loc, msg in exc.errors]
            ) from None
    return out


def _deployed(settings: Settings) -> list[Automation]:
    with ApiClient(settings.api_url, settings.api_token) as api:
        served = api.list()
    return [validated(partial(Automation.model_validate, d)) for d in served]


def _time_arg(value: str | None, now: datetime) -> int | None:
    return to_us(since_time(value, now)) if value else None


def _readable(line: dict[str, Any], compared: bool) -> str:
    mark = {"only_new": "+ ", "only_deployed": "- ", "both": "  "}.get(line.get("diff", ""), "")
    labels = ", ".join(f"{k}={v}" for k, v in line["bucket"].items()) or "-"
    event = line["triggering_event"] or "(none: a tick)"
    shown = f"{mark}{line['fired_at']}  {line['state']}  {line['automation']}"
    shown += f"  [{labels}]  event {event}"
    moved = line.get("deployed")
    if compared and moved and moved["fired_at"] != line["fired_at"]:
        shown += f"  (deployed fired at {moved['fired_at']})"
    return shown


def main(args: Any, settings: Settings) -> int:
    """The `tripwire backtest` command; returns the exit status."""
    errors: TextIO = sys.stderr
    out = sys.stdout
    now = datetime.now(UTC)
    try:
        since, until = _time_arg(args.since, now), _time_arg(args.until, now)
        automations = _read_automations(args.automations)
        deployed = _deployed(settings) if args.against == "deployed" else None
        new, old, pairs = prepare(automations, deployed)
    except ValidationFailed as exc:
        print(f"tripwire backtest: invalid automation: {exc}", file=errors)
        return 2
    if since is not None and until is not None and until <= since:
        print("tripwire backtest: --until must be after --since", file=errors)
        return 2

    # Records (or bytes of a file) read, told in events; only on a terminal.
    progress = Progress(1, "events", enabled=errors.isatty(), stream=errors, items=True)

    def emit(line: dict[str, Any]) -> None:
        progress.clear()
        out.write(orjson.dumps(line).decode() if args.json else _readable(line, False))
        out.write("\n")

    from aiokafka.errors import KafkaError

    try:
        result = _run(args, settings, new, old, pairs, since, until, progress, emit)
    except KafkaError as exc:
        print(f"tripwire backtest: Kafka error: {exc}", file=errors)
        return 2
    if old is not None:
        for line in result.firings:
            out.write(orjson.dumps(line).decode() if args.json else _readable(line, True))
            out.write("\n")
    out.flush()
    for text in result.summary.lines():
        print(text, file=errors)
    return 0


def _run(
    args: Any,
    settings: Settings,
    new: list[Automation],
    old: list[Automation] | None,
    pairs: dict[str, str],
    since: int | None,
    until: int | None,
    progress: Progress,
    emit: Callable[[dict[str, Any]], None],
) -> Backtest:
    with progress:
        if args.events:
            return _over_file(args.events, settings, new, old, pairs, since, until, progress, emit)
        return over_topic(
            settings, new, old, pairs, since=since, until=until, progress=progress, emit=emit
        )


def _over_file(
    name: str,
    settings: Settings,
    new: list[Automation],
    old: list[Automation] | None,
    pairs: dict[str, str],
    since: int | None,
    until: int | None,
    progress: Progress,
    emit: Callable[[dict[str, Any]], None],
) -> Backtest:
    summary = Summary(f"file {name}", since=since, until=until)
    with open_events(Path(name)) as stream:
        progress.total = max(1, os.fstat(stream.fileno()).st_size)
        records = file_records(stream, name, summary, settings.max_event_bytes, progress)
        return run_backtest(
            new,
            old,
            records,
            summary,
            tick_interval=settings.tick_interval,
            pairs=pairs,
            emit=emit,
        )
