"""`tripwire replay` streams its events, computes ticks lazily, takes --ticks inline."""

from __future__ import annotations

import io
import os
import pty
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.core.records import EventRecord
from service.core.times import SECOND, micros
from service.models.automations import Automation, EventTrigger, parse_automations
from service.models.events import parse_event
from service.replay import (
    ReplayInput,
    TickSpec,
    TimedEvent,
    parse_ticks,
    read_ticks,
    run,
    timeline,
)
from tests.integration.harness import TRIPWIRE, failures_per_run

SCENARIOS = Path(__file__).resolve().parents[1] / "conformance"
HEARTBEAT = SCENARIOS / "22-proactive-no-after-heartbeat-direct"
START = datetime(2026, 1, 1, tzinfo=UTC)

ONE_FAILURE = failures_per_run("one-failure", threshold=1, within=0)


def _event(number: int, seconds: float, *, received: float | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "id": f"00000000-0000-4000-8000-{number:012d}",
        "occurred": (START + timedelta(seconds=seconds)).isoformat(),
        "event": "prefect.flow-run.Failed",
        "resource": {"prefect.resource.id": f"prefect.flow-run.run-{number}"},
    }
    if received is not None:
        event["received"] = (START + timedelta(seconds=received)).isoformat()
    return event


def _timed(events: list[dict[str, Any]]) -> list[TimedEvent]:
    out: list[TimedEvent] = []
    wall: int | None = None
    for number, data in enumerate(events, start=1):
        record = EventRecord(parse_event(data))
        arrival = record.received if record.received is not None else record.occurred
        wall = arrival if wall is None else max(wall, arrival)
        out.append(TimedEvent(number, wall, record))
    return out


def _eager_step_ticks(
    spec: str, events: list[TimedEvent], automations: list[Automation]
) -> list[int]:
    """The step ticks as replay computed them before streaming: every event in memory."""
    parsed = parse_ticks(spec, "test")
    assert parsed.step is not None
    if (parsed.start is None or parsed.until is None) and not events:
        return []
    start = parsed.start if parsed.start is not None else events[0].wall
    until = parsed.until
    if until is None:
        longest = max(
            (
                micros(a.trigger.within)
                for a in automations
                if isinstance(a.trigger, EventTrigger) and a.trigger.posture == "Proactive"
            ),
            default=0,
        )
        until = events[-1].wall + longest + 60 * SECOND
    return [start + i * parsed.step for i in range((until - start) // parsed.step + 1)]


SPECS = [
    "step:5",
    "step:7.5",
    "step:5,from=2025-12-31T23:59:00Z",
    "step:5,until=2026-01-01T00:00:30Z",
    "step:5,from=2026-01-01T00:00:10Z,until=2026-01-01T00:02:00Z",
    "step:60,from=2026-01-01T00:05:00Z",
]


@pytest.mark.parametrize("spec", SPECS)
@pytest.mark.parametrize("count", [0, 1, 40])
def test_lazy_step_ticks_equal_the_eager_ones(tmp_path: Path, spec: str, count: int) -> None:
    automations = parse_automations(orjson.loads((HEARTBEAT / "automations.json").read_bytes()))
    # Out-of-order arrival times, so processing time is not simply `occurred`.
    events = _timed([_event(i, i * 3.3 - (i % 4) * 2) for i in range(count)])
    expected = _eager_step_ticks(spec, events, automations)
    ticks_file = tmp_path / "ticks"
    ticks_file.write_text(spec + "\n")
    assert read_ticks(ticks_file, events, automations) == expected
    # And the timeline interleaves them by the contract: a tick at T after every p <= T.
    order = list(timeline(ReplayInput(automations, iter(events), parse_ticks(spec, "test"))))
    ticks = [item for item in order if isinstance(item, int)]
    assert ticks == expected
    for position, item in enumerate(order):
        if isinstance(item, int):
            assert all(e.wall <= item for e in order[:position] if isinstance(e, TimedEvent))
            assert all(e.wall > item for e in order[position:] if isinstance(e, TimedEvent))


def test_events_are_consumed_as_they_are_replayed() -> None:
    """A firing is written while later events are still unread: nothing is read ahead."""
    automations = parse_automations([ONE_FAILURE])
    consumed = 0

    def events() -> Iterator[TimedEvent]:
        nonlocal consumed
        for timed in _timed([_event(i, i) for i in range(1, 101)]):
            consumed += 1
            yield timed

    seen_at_write: list[int] = []

    class Out(io.StringIO):
        def write(self, text: str) -> int:
            seen_at_write.append(consumed)
            return super().write(text)

    fired = run(ReplayInput(automations, events(), TickSpec()), Out())
    assert fired == 100
    assert seen_at_write[:3] == [1, 2, 3]


def _replay(*args: str, **options: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRIPWIRE), "replay", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        **options,
    )


def test_inline_step_ticks_equal_the_same_ticks_file() -> None:
    spec = (HEARTBEAT / "ticks").read_text().strip()
    assert spec.startswith("step:")
    common = ["--automations", str(HEARTBEAT / "automations.json")]
    common += ["--events", str(HEARTBEAT / "events.jsonl")]
    from_file = _replay(*common, "--ticks", str(HEARTBEAT / "ticks"))
    inline = _replay(*common, "--ticks", spec)
    assert from_file.returncode == 0, from_file.stderr
    assert inline.returncode == 0, inline.stderr
    assert inline.stdout == from_file.stdout
    assert "proactive" in (HEARTBEAT / "automations.json").read_text().lower()
    assert inline.stdout.strip(), "the scenario fires at ticks"


@pytest.mark.parametrize(
    ("ticks", "says"),
    [
        ("step:0", "the step must be positive"),
        ("step:5,to=2026-01-01T00:00:00Z", "unknown tick bound 'to'"),
        ("step:five", "could not convert"),
        ("no-such-ticks-file", "cannot read ticks file"),
    ],
)
def test_bad_ticks_fail_before_any_event_is_read(tmp_path: Path, ticks: str, says: str) -> None:
    # The events path does not exist: an error about ticks proves they were checked first.
    result = _replay(
        "--automations",
        str(HEARTBEAT / "automations.json"),
        "--events",
        str(tmp_path / "missing.jsonl"),
        "--ticks",
        ticks,
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert says in result.stderr
    assert "events file" not in result.stderr
    assert result.stderr.count("\n") == 1


def test_missing_events_file_is_one_line(tmp_path: Path) -> None:
    result = _replay(
        "--automations",
        str(HEARTBEAT / "automations.json"),
        "--events",
        str(tmp_path / "missing.jsonl"),
        "--ticks",
        "step:5",
    )
    assert result.returncode == 2
    assert f"cannot read events file {str(tmp_path / 'missing.jsonl')!r}" in result.stderr


def _write_events(path: Path, count: int) -> None:
    lines = [orjson.dumps(_event(i, i)) for i in range(1, count + 1)]
    lines.insert(2, b"{not json")
    path.write_bytes(b"\n".join(lines) + b"\n")


def test_progress_only_on_a_terminal(tmp_path: Path) -> None:
    automations = tmp_path / "automations.json"
    automations.write_bytes(orjson.dumps([ONE_FAILURE]))
    events = tmp_path / "events.jsonl"
    _write_events(events, 50)
    args = ["--automations", str(automations), "--events", str(events)]

    piped = _replay(*args)
    assert piped.returncode == 0, piped.stderr
    assert len(piped.stdout.splitlines()) == 50
    # Not a terminal: only the skipped line's report, no bar.
    assert piped.stderr.splitlines() == [
        f"{events}:3: skipped: not valid JSON: "
        + piped.stderr.split("not valid JSON: ", 1)[1].splitlines()[0]
    ]
    assert "\r" not in piped.stderr

    leader, follower = pty.openpty()
    try:
        on_tty = subprocess.run(
            [str(TRIPWIRE), "replay", *args],
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
            check=False,
        )
        os.close(follower)
        follower = -1
        drawn = b""
        while True:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the terminal has no writer left
                break
            if not chunk:
                break
            drawn += chunk
    finally:
        if follower >= 0:
            os.close(follower)
        os.close(leader)
    assert on_tty.returncode == 0
    assert len(on_tty.stdout.splitlines()) == 50
    assert b"100% 50 events" in drawn
    assert b"skipped: not valid JSON" in drawn
