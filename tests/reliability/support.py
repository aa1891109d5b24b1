"""The oracle (`tripwire replay`) and readers of what a reliability run wrote."""

from __future__ import annotations

import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from tests.integration.harness import TRIPWIRE, Cluster
from tests.reliability.workload import Workload


@dataclass
class Expected:
    """Replay's firings of a workload: id -> automation name, split by what decides them."""

    by_id: dict[str, str]
    proactive: set[str]
    # The bucket (flow run) of each proactive firing, by id.
    proactive_runs: dict[str, str]

    @property
    def reactive(self) -> set[str]:
        return set(self.by_id) - self.proactive


def replay(workload: Workload, tmp: Path) -> Expected:
    """`tripwire replay` over the workload's automations and events, ticking every second.

    The ticks run from the first event until the "never-started" trigger's last
    deadline has passed, long before any hour-long window ends.
    """
    automations, events = tmp / "automations.json", tmp / "events.jsonl"
    automations.write_bytes(orjson.dumps([a.model_dump(mode="json") for a in workload.automations]))
    events.write_bytes(b"\n".join(orjson.dumps(e) for e in workload.events))
    last = max(datetime.fromisoformat(e["occurred"]) for e in workload.events)
    until = last + timedelta(seconds=workload.never_started_within + 5)
    ticks = tmp / "ticks"
    ticks.write_text(f"step:1,until={until.isoformat()}")
    out = subprocess.run(
        [
            str(TRIPWIRE),
            "replay",
            "--automations",
            str(automations),
            "--events",
            str(events),
            "--ticks",
            str(ticks),
        ],
        capture_output=True,
        check=True,
    ).stdout
    (tmp / "replay.jsonl").write_bytes(out)
    firings = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    proactive_names = {
        a.name for a in workload.automations if getattr(a.trigger, "posture", None) == "Proactive"
    }
    return Expected(
        {f["id"]: f["automation"] for f in firings},
        {f["id"] for f in firings if f["automation"] in proactive_names},
        {
            f["id"]: f["bucket"]["prefect.resource.id"]
            for f in firings
            if f["automation"] in proactive_names
        },
    )


def firing_ids(
    cluster: Cluster, want: set[str], timeout: float, settle: float = 3.0, quiet: float = 30.0
) -> list[str]:
    """Ids (record keys) of the firings topic, read until they cover `want`, then `settle` s.

    A run that lost a firing would wait for the whole `timeout`: reading also stops once
    nothing new arrived for `quiet` s, and the caller's comparison says what is missing.
    """
    seen: set[str] = set()
    counted = [0]
    last_new = [time.monotonic()]

    def done(records: list[Any]) -> bool:
        if len(records) > counted[0]:
            last_new[0] = time.monotonic()
        for record in records[counted[0] :]:
            seen.add(record.key.decode())
        counted[0] = len(records)
        return want <= seen or time.monotonic() - last_new[0] > quiet

    records = cluster.read(cluster.settings.topic_firings, done, timeout, settle)
    return [r.key.decode() for r in records]


def report(name: str, ids: list[str], expected: Expected, **figures: Any) -> dict[str, Any]:
    """One line of figures for docs/reliability.md; printed, and returned for asserts."""
    counts = Counter(ids)
    duplicated = {i: n for i, n in counts.items() if n > 1}
    line = {
        "run": name,
        "firings_expected": len(expected.by_id),
        "reactive_and_composite": len(expected.reactive),
        "proactive": len(expected.proactive),
        "records_on_topic": len(ids),
        "distinct_ids": len(counts),
        "ids_redelivered": len(duplicated),
        "redelivered_copies": sum(n - 1 for n in duplicated.values()),
        **figures,
    }
    print(f"\nRELIABILITY {orjson.dumps(line).decode()}")
    return line


def missing_by_automation(expected: Expected, got: set[str]) -> dict[str, int]:
    """Names of the automations whose expected firings did not arrive (for failure text)."""
    return dict(Counter(expected.by_id[i] for i in set(expected.by_id) - got))
