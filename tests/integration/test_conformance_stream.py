"""The public conformance scenarios without ticks, through Kafka and a real worker.

Each scenario's timestamps are shifted to the present; the firings on the firings
topic must equal what `tripwire replay` gives on the same shifted input (on every
compared field but `fired_at`, which is wall-clock time in the service).
"""

from __future__ import annotations

import subprocess
from collections import Counter
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import orjson

from service.models.automations import parse_automations
from tests.integration.harness import TRIPWIRE, Cluster

SCENARIOS = Path(__file__).resolve().parents[1] / "conformance"
COMPARED = ("automation", "trigger_id", "state", "bucket", "triggering_event", "child_firings")


def _scenarios() -> list[Path]:
    return sorted(
        p
        for p in SCENARIOS.iterdir()
        if (p / "expected.jsonl").is_file() and not (p / "ticks").exists()
    )


def _shift(events: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    last = max(datetime.fromisoformat(e["occurred"].replace("Z", "+00:00")) for e in events)
    delta = now - last
    out = []
    for event in events:
        occurred = datetime.fromisoformat(event["occurred"].replace("Z", "+00:00")) + delta
        # Every event is received "now", as the service stamps them: processing times
        # then agree between replay and the stream.
        out.append({**event, "occurred": occurred.isoformat(), "received": now.isoformat()})
    return out


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


def _ours(records: list[dict[str, Any]], ids: set[str]) -> list[dict[str, Any]]:
    return [r for r in records if r["automation_id"] in ids]


def _has_ours(records: list[dict[str, Any]], *, ids: set[str], wanted: int) -> bool:
    return len(_ours(records, ids)) >= wanted


def _replay(folder: Path, events: list[dict[str, Any]], tmp: Path) -> list[dict[str, Any]]:
    path = tmp / f"{folder.name}.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(e) for e in events))
    done = subprocess.run(
        [
            str(TRIPWIRE),
            "replay",
            "--automations",
            str(folder / "automations.json"),
            "--events",
            str(path),
        ],
        capture_output=True,
        check=True,
    )
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


def test_scenarios_without_ticks_fire_the_same_through_kafka(
    cluster: Cluster, tmp_path: Path
) -> None:
    worker = cluster.start_worker("w1")
    previous: set[str] = set()
    seen_ids: set[str] = set()
    failures: list[str] = []
    checked = 0
    for folder in _scenarios():
        automations = parse_automations(orjson.loads((folder / "automations.json").read_bytes()))
        ids = {str(a.id) for a in automations}
        names = {str(a.id): a.name for a in automations}
        raw = [
            orjson.loads(line)
            for line in (folder / "events.jsonl").read_text().splitlines()
            if line.strip() and not line.startswith(("#", "//"))
        ]
        # Event ids are unique across scenarios, so the worker's 30-minute
        # de-duplication cannot mix them up.
        assert not {e["id"] for e in raw} & seen_ids
        seen_ids |= {e["id"] for e in raw}
        events = _shift(raw, datetime.now(UTC) - timedelta(seconds=1))
        expected = Counter(_comparable(line) for line in _replay(folder, events, tmp_path))

        cluster.publish(automations, deleted=previous - ids)
        cluster.wait_loaded("w1", ids)
        previous = ids
        mark = cluster.marks(cluster.settings.topic_firings)
        cluster.produce_events(events, key=folder.name.encode())

        wanted = sum(expected.values())
        records = cluster.firings(
            partial(_has_ours, ids=ids, wanted=wanted), timeout=30, settle=1.5, since=mark
        )
        actual = Counter(_comparable(_from_record(r, names)) for r in _ours(records, ids))
        checked += 1
        if actual != expected:
            failures.append(f"{folder.name}: expected {expected}, got {actual}")
    worker.stop()
    assert checked >= 10
    assert not failures, "\n".join(failures)
