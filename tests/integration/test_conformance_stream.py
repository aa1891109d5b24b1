"""The public conformance scenarios through Kafka and a real worker, as replay gives them.

Events are produced keyed by resource id, as `tripwire events produce` does, so a
scenario's events spread over every events partition and the worker must merge them
in event time (service/core/hold.py) to fire as `tripwire replay` does on the same
input. Compared: every field of the conformance contract but `fired_at`, which is the
service's wall clock.

Scenarios without ticks: each runs in its own topics with a fresh worker that starts
on the scenario's events as a backlog. One worker for every scenario in turn would
read each scenario's events behind the stream time the previous one left (they are
minutes old): late for ordering, applied in the order they arrive from each partition
(docs/architecture.md, "Stream time"), which is no order replay could know.
"""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from service.models.automations import PROACTIVE_MIN_WITHIN, Automation, parse_automations
from tests.integration.api_harness import wait_worker_ready
from tests.integration.conftest import Broker
from tests.integration.harness import TRIPWIRE, Cluster

SCENARIOS = Path(__file__).resolve().parents[1] / "conformance"
COMPARED = ("automation", "trigger_id", "state", "bucket", "triggering_event", "child_firings")


def _scenarios(*, ticks: bool) -> list[Path]:
    return sorted(
        p
        for p in SCENARIOS.iterdir()
        if (p / "expected.jsonl").is_file() and (p / "ticks").exists() == ticks
    )


def _events(folder: Path) -> list[dict[str, Any]]:
    return [
        orjson.loads(line)
        for line in (folder / "events.jsonl").read_text().splitlines()
        if line.strip() and not line.startswith(("#", "//"))
    ]


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _shift(events: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    delta = now - max(_time(e["occurred"]) for e in events)
    # Every event is received "now", as the service stamps them: processing times
    # then agree between replay and the stream.
    return [
        {**e, "occurred": (_time(e["occurred"]) + delta).isoformat(), "received": now.isoformat()}
        for e in events
    ]


def _comparable(line: dict[str, Any]) -> str:
    fields = {k: line[k] for k in COMPARED if k in line}
    for child in fields.get("child_firings", []):
        child.pop("fired_at", None)
        child.pop("id", None)
        if not child.get("child_firings"):
            child.pop("child_firings", None)
        if child.get("triggering_event") is not None and isinstance(
            child["triggering_event"], dict
        ):
            child["triggering_event"] = child["triggering_event"]["id"]
    return orjson.dumps(fields, option=orjson.OPT_SORT_KEYS).decode()


def _from_record(record: dict[str, Any], names: dict[str, str]) -> dict[str, Any]:
    event = record["triggering_event"]
    return {
        "automation": names[record["automation_id"]],
        "trigger_id": record["trigger_id"],
        "state": record["state"],
        "bucket": record["bucket"],
        "triggering_event": event["id"] if event else None,
        **({"child_firings": record["child_firings"]} if record["child_firings"] else {}),
    }


def _replay(
    automations: Path, events: list[dict[str, Any]], path: Path, ticks: str | None = None
) -> list[dict[str, Any]]:
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    command = [str(TRIPWIRE), "replay", "--automations", str(automations), "--events", str(path)]
    if ticks is not None:
        ticks_path = path.with_suffix(".ticks")
        ticks_path.write_text(ticks)
        command += ["--ticks", str(ticks_path)]
    done = subprocess.run(command, capture_output=True, check=True)
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _load(folder: Path) -> tuple[list[Automation], dict[str, str]]:
    automations = parse_automations(orjson.loads((folder / "automations.json").read_bytes()))
    return automations, {str(a.id): a.name for a in automations}


def _has(records: list[dict[str, Any]], *, wanted: int) -> bool:
    return len(records) >= wanted


@dataclass
class _Run:
    """One scenario's own topics and worker, started on its events as a backlog."""

    folder: Path
    cluster: Cluster
    names: dict[str, str]
    expected: Counter[str]


def _start(broker: Broker, folder: Path, tmp: Path) -> _Run:
    automations, names = _load(folder)
    events = _shift(_events(folder), datetime.now(UTC) - timedelta(seconds=1))
    replayed = _replay(folder / "automations.json", events, tmp / f"{folder.name}.jsonl")
    (tmp / folder.name).mkdir()
    cluster = Cluster(broker.bootstrap, tmp / folder.name)
    cluster.create_topics()
    cluster.publish(automations)
    # Keyed by resource id, over every partition, before the worker starts.
    cluster.produce_events(events)
    cluster.start_worker("w1")
    return _Run(folder, cluster, names, Counter(_comparable(line) for line in replayed))


def test_scenarios_without_ticks_fire_the_same_through_kafka(
    broker: Broker, tmp_path: Path
) -> None:
    folders = _scenarios(ticks=False)
    failures: list[str] = []
    runs: list[_Run] = []
    try:
        # The next scenario's worker starts while this one's firings are read.
        runs.append(_start(broker, folders[0], tmp_path))
        for n in range(len(folders)):
            if n + 1 < len(folders):
                runs.append(_start(broker, folders[n + 1], tmp_path))
            run = runs[n]
            records = run.cluster.firings(
                partial(_has, wanted=sum(run.expected.values())), timeout=60, settle=1.5
            )
            run.cluster.stop_all()
            actual = Counter(_comparable(_from_record(r, run.names)) for r in records)
            if actual != run.expected:
                failures.append(f"{run.folder.name}: expected {run.expected}, got {actual}")
    finally:
        for run in runs:
            run.cluster.stop_all()
    assert len(runs) >= 10
    assert not failures, "\n".join(failures)


# -- Scenarios with ticks: paced live, on a scaled timeline ---------------------------

ALLOWANCE = 2.0  # TRIPWIRE_DISORDER_ALLOWANCE of these workers
SHORTEST_WITHIN = PROACTIVE_MIN_WITHIN.total_seconds()  # Prefect's minimum proactive within
SWEPT_SCALE = 1 / 9  # a scenario without a proactive trigger (06): see the docstring
LEAD = 5.0  # firings decided this soon after the scaled origin are left out (see below)
MARGIN = 2.0  # no firing of any replay variant lies this close to an end of the range


@dataclass
class _Paced:
    """One scenario with ticks, scaled: its automations, events (offsets) and range."""

    folder: Path
    automations: list[dict[str, Any]]
    offsets: list[tuple[float, dict[str, Any]]]  # seconds after the scaled origin
    proactive: set[str]  # names of the automations whose trigger is proactive
    until: float  # firings decided after this (seconds after the origin) are left out


def _scaled(folder: Path) -> _Paced:
    automations = orjson.loads((folder / "automations.json").read_bytes())
    proactive = [a for a in automations if a["trigger"].get("posture") == "Proactive"]
    shortest = min((a["trigger"]["within"] for a in proactive), default=None)
    scale = SHORTEST_WITHIN / shortest if shortest else SWEPT_SCALE
    for automation in proactive:
        automation["trigger"]["within"] = (
            automation["trigger"]["within"] * SHORTEST_WITHIN / shortest
        )
    spec = dict(
        part.split("=", 1) for part in (folder / "ticks").read_text().strip().split(",")[1:]
    )
    origin = _time(spec["from"])
    offsets = [
        ((_time(e["occurred"]) - origin).total_seconds() * scale, e) for e in _events(folder)
    ]
    last = max(offset for offset, _ in offsets)
    # Past the last event: a proactive trigger without `after` fires again every window
    # for as long as the stream runs, so the range ends between two of its firings.
    until = last + (2.5 * SHORTEST_WITHIN if proactive else MARGIN + 1)
    return _Paced(folder, automations, offsets, {a["name"] for a in proactive}, until)


def _replay_variants(paced: _Paced, tmp: Path) -> list[tuple[str, list[tuple[float, str]]]]:
    """Replay's firings (offset, comparable) under every tick phase and lag the worker may have.

    The worker ticks every second at its stream time, which lags the events it has
    already applied by the allowance and the route's report delay. Events received
    `lag` before they occurred make replay do the same: a tick at T judges as_of = T
    after every event that occurred by T + lag. The ticks start before the origin, as
    the worker's do, at several phases.
    """
    origin = datetime(2030, 1, 1, tzinfo=UTC)
    automations = tmp / f"{paced.folder.name}.automations.json"
    automations.write_bytes(orjson.dumps(paced.automations))
    variants = []
    for lag in (ALLOWANCE, ALLOWANCE + 1):
        events = [
            {
                **event,
                "occurred": (origin + timedelta(seconds=offset)).isoformat(),
                "received": (origin + timedelta(seconds=offset - lag)).isoformat(),
            }
            for offset, event in paced.offsets
        ]
        for phase in (0.0, 0.5, 3.0, 6.5):
            start = origin - timedelta(seconds=SHORTEST_WITHIN - phase)
            end = origin + timedelta(seconds=paced.until + 4 * SHORTEST_WITHIN)
            lines = _replay(
                automations,
                events,
                tmp / f"{paced.folder.name}-{lag}-{phase}.jsonl",
                ticks=f"step:1,from={start.isoformat()},until={end.isoformat()}",
            )
            fired = [
                ((_time(line["fired_at"]) - origin).total_seconds(), _comparable(line))
                for line in lines
            ]
            variants.append((f"lag {lag} s, phase {phase} s", fired))
    return variants


def _in_range(fired: list[tuple[float, str]], until: float) -> Counter[str]:
    return Counter(line for at, line in fired if LEAD < at <= until)


def _decided_at(record: dict[str, Any], proactive: bool, origin: datetime) -> float:
    """When a worker's firing was decided, in event time: its deadline or its event's time."""
    if proactive and record["window"]:
        at = _time(record["window"]["end"])
    else:
        at = _time(record["triggering_event"]["occurred"])
    return (at - origin).total_seconds()


def _worker_in_range(
    records: list[dict[str, Any]], *, paced: _Paced, names: dict[str, str], origin: datetime
) -> Counter[str]:
    return Counter(
        _comparable(_from_record(r, names))
        for r in records
        if LEAD
        < _decided_at(r, names[r["automation_id"]] in paced.proactive, origin)
        <= paced.until
    )


def _covers(
    records: list[dict[str, Any]],
    *,
    count: Callable[[list[dict[str, Any]]], Counter[str]],
    wanted: int,
) -> bool:
    return sum(count(records).values()) >= wanted


def test_scenarios_with_ticks_fire_the_same_through_kafka_paced(
    broker: Broker, tmp_path: Path
) -> None:
    """The proactive and sweep scenarios (those with ticks), paced live through Kafka.

    Each runs in its own topics with its own worker (ticking every second), all four at
    once, its events produced at their own times, keyed by resource id. Their 3-20
    minutes of event time are scaled: every time and every proactive `within` shrink by
    the factor that brings the shortest proactive `within` to Prefect's minimum, 10 s
    (19: 1/6, 22: 1/3, 24: 1/9). The expected firings are `tripwire replay`'s on the
    same scaled input with one-second ticks, compared on every field but `fired_at`;
    replay must give the same under every tick phase and lag tried (`_replay_variants`),
    so the comparison does not rest on when the worker happens to tick.

    Compared: the firings decided (deadline, or event time for a firing at an event)
    more than 5 s after the scaled origin and by `until`: 22's trigger (no `after`, no
    `for_each`) opens a window at every tick from the worker's start, so what fires
    before its first heartbeat depends on when the worker started, and it fires again
    every window for as long as the stream runs, so the range ends between two of
    those firings; no replay variant has a firing within 2 s of either end.

    06 has no proactive trigger: its point is the expired-bucket sweep, whose 60 s
    buffer (EXPIRED_BUCKET_BUFFER) is a constant that does not scale, and unscaled it
    needs 17 minutes. It runs at 1/9 (2 minutes): the first two failures are then
    67 s apart, so the sweep deletes the first one's within-0 bucket before the second
    arrives, while the next two, 44 s apart, still fire together; the Pending/Completed
    pairs all fall inside the buffer. It proves the sweep acts at the stream's time, as
    replay's does at its ticks, rather than pinning Prefect's own output for 06.
    """
    tick_scenarios = [_scaled(folder) for folder in _scenarios(ticks=True)]
    assert len(tick_scenarios) >= 4
    clusters: list[Cluster] = []
    try:
        for paced in tick_scenarios:
            (tmp_path / paced.folder.name).mkdir()
            cluster = Cluster(broker.bootstrap, tmp_path / paced.folder.name)
            cluster.create_topics()
            cluster.publish(parse_automations(paced.automations))
            cluster.start_worker("w1", {"TRIPWIRE_DISORDER_ALLOWANCE": str(ALLOWANCE)})
            clusters.append(cluster)
        # While the workers start: what replay fires, the same under every variant.
        expected: list[Counter[str]] = []
        for paced in tick_scenarios:
            variants = _replay_variants(paced, tmp_path)
            for name, fired in variants:
                near = [
                    at
                    for at, _ in fired
                    if abs(at - LEAD) < MARGIN or abs(at - paced.until) < MARGIN
                ]
                assert not near, f"{paced.folder.name}, {name}: firings at {near} s"
            first = _in_range(variants[0][1], paced.until)
            for name, fired in variants[1:]:
                assert _in_range(fired, paced.until) == first, f"{paced.folder.name}: {name}"
            assert first, f"{paced.folder.name}: nothing fires in range, nothing is proven"
            expected.append(first)
        for cluster in clusters:
            wait_worker_ready(cluster.workers[0])

        origin = datetime.now(UTC) + timedelta(seconds=3)
        schedule = sorted(
            ((offset, n, i), event)
            for n, paced in enumerate(tick_scenarios)
            for i, (offset, event) in enumerate(paced.offsets)
        )
        for (offset, n, _), event in schedule:
            occurred = origin + timedelta(seconds=offset)
            time.sleep(max(0.0, (occurred - datetime.now(UTC)).total_seconds()))
            # No `received`: the worker stamps its own, as for any live event.
            clusters[n].produce_events([{**event, "occurred": occurred.isoformat()}])
        # Past every range's end (in stream time, which lags the clock by the allowance).
        end = origin + timedelta(seconds=max(p.until for p in tick_scenarios) + ALLOWANCE + 2)
        time.sleep(max(0.0, (end - datetime.now(UTC)).total_seconds()))

        failures = []
        for paced, cluster, want in zip(tick_scenarios, clusters, expected, strict=True):
            names = {str(a.id): a.name for a in parse_automations(paced.automations)}
            worker_in_range = partial(_worker_in_range, paced=paced, names=names, origin=origin)
            records = cluster.firings(
                partial(_covers, count=worker_in_range, wanted=sum(want.values())),
                timeout=60,
                settle=2,
            )
            got = worker_in_range(records)
            if got != want:
                failures.append(f"{paced.folder.name}: expected {want}, got {got}")
    finally:
        for cluster in clusters:
            cluster.stop_all()
    assert not failures, "\n".join(failures)
