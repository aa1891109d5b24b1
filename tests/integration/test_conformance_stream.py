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
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from service.models.automations import Automation, parse_automations
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
