"""docs/firings.md holds: the records match the model, the documented consumer and kcat work."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from service.models.automations import Automation, parse_automations
from service.models.firings import FiringRecord
from tests.integration.harness import Cluster, failures_per_run, flow_run_event

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"

FAILED_RUN = {
    **failures_per_run("failed-run", threshold=1, within=0),
    "actions": [{"type": "cancel-flow-run"}],
    "actions_on_trigger": [{"type": "do-nothing"}],
}

FAILED_AND_CRASHED = {
    "name": "failed-and-crashed",
    "trigger": {
        "type": "compound",
        "require": "all",
        "within": 600,
        "triggers": [
            {
                "type": "event",
                "posture": "Reactive",
                "expect": ["prefect.flow-run.Failed"],
                "match": {"prefect.resource.id": "prefect.flow-run.*"},
            },
            {
                "type": "event",
                "posture": "Reactive",
                "expect": ["prefect.flow-run.Crashed"],
                "match": {"prefect.resource.id": "prefect.flow-run.*"},
            },
        ],
    },
    "actions": [{"type": "do-nothing"}],
}


def _fire(cluster: Cluster, *, dead_letter: bool = False) -> list[Automation]:
    """Start a worker and make both automations fire (3 simple firings, 1 composite)."""
    automations = parse_automations([FAILED_RUN, FAILED_AND_CRASHED])
    cluster.publish(automations)
    cluster.start_worker("w1")
    cluster.wait_loaded("w1", {str(a.id) for a in automations})
    now = datetime.now(UTC)
    events = [flow_run_event(f"run-{i}", "Failed", now, number=i) for i in range(1, 4)]
    events.append(flow_run_event("run-4", "Crashed", now, number=4))
    cluster.produce_events(events)
    if dead_letter:
        cluster.produce([(b"bad-key", b"{not json")])
    return automations


def _firing_records(cluster: Cluster, automations: list[Automation]) -> list[Any]:
    """The raw records on the firings topic once every expected firing is there."""
    simple, composite = (str(a.id) for a in automations)

    def done(records: list[Any]) -> bool:
        owners = [orjson.loads(r.value)["automation_id"] for r in records]
        return owners.count(simple) >= 3 and owners.count(composite) >= 1

    return cluster.read(cluster.settings.topic_firings, done, timeout=90, settle=2)


def _env(cluster: Cluster) -> dict[str, str]:
    settings = cluster.settings
    return {
        **os.environ,
        "TRIPWIRE_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "TRIPWIRE_TOPIC_FIRINGS": settings.topic_firings,
        "TRIPWIRE_TOPIC_EVENTS_DLQ": settings.topic_events_dlq,
    }


def test_firing_records_match_the_model_and_the_example_consumer_prints_them(
    cluster: Cluster,
) -> None:
    automations = _fire(cluster)
    records = _firing_records(cluster, automations)

    # (b) every record validates against the documented model; its key is its id
    firings = [FiringRecord.model_validate(orjson.loads(r.value)) for r in records]
    for record, firing in zip(records, firings, strict=True):
        assert record.key == firing.id.encode()
    simple = [f for f in firings if f.automation_id == str(automations[0].id)]
    composite = [f for f in firings if f.automation_id == str(automations[1].id)]
    assert {f.bucket["prefect.resource.id"] for f in simple} == {
        f"prefect.flow-run.run-{i}" for i in range(1, 4)
    }
    for firing in simple:
        assert firing.state == "Triggered"
        assert firing.window is not None
        assert firing.triggering_event is not None
        assert firing.triggering_event["resource"] == {
            "prefect.resource.id": firing.bucket["prefect.resource.id"],
            "prefect.resource.name": firing.bucket["prefect.resource.id"].rsplit(".", 1)[1],
            "prefect.state-name": "Failed",
        }
        assert firing.actions == [{"type": "cancel-flow-run"}]
        assert firing.actions_on_trigger == [{"type": "do-nothing"}]
        assert firing.state_event["event"] == "prefect.automation.triggered"
    assert composite
    for firing in composite:
        assert firing.window is None
        assert len(firing.child_firings) == 2
        assert {
            c.triggering_event["event"] for c in firing.child_firings if c.triggering_event
        } == {
            "prefect.flow-run.Failed",
            "prefect.flow-run.Crashed",
        }

    # (a) the documented consumer prints each firing once, however often it was delivered
    ids = {f.id for f in firings}
    result = subprocess.run(
        [
            sys.executable,
            str(EXAMPLES / "consume_firings.py"),
            f"{cluster.prefix}-docs",
            "--max",
            str(len(ids)),
        ],
        env=_env(cluster),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    printed = [line.split()[0] for line in lines]
    assert sorted(printed) == sorted(ids)
    by_id = {f.id: f for f in firings}
    for line in lines:
        firing = by_id[line.split()[0]]
        assert f"automation={firing.automation_name!r}" in line
        assert firing.state in line


def test_kcat_and_its_librdkafka_are_installed_by_make_test() -> None:
    # `make test` installs kcat (Debian) and confluent-kafka (dev extras), whose newer
    # librdkafka talks to Tansu; the documented commands are tested below, never skipped.
    assert shutil.which("kcat") is not None
    assert importlib.util.find_spec("confluent_kafka") is not None


def test_the_documented_kcat_commands_show_firings_and_dead_letters(
    cluster: Cluster, tmp_path: Path
) -> None:
    automations = _fire(cluster, dead_letter=True)
    records = _firing_records(cluster, automations)
    ids = {orjson.loads(r.value)["id"] for r in records}
    env = {**_env(cluster), "PYTHON": sys.executable, "KCAT_LIB_DIR": str(tmp_path / "kcat-lib")}

    def kcat(command: str) -> str:
        result = subprocess.run(
            ["bash", str(EXAMPLES / "kcat.sh"), command],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    envelopes = [orjson.loads(line) for line in kcat("firings").splitlines()]
    assert {e["key"] for e in envelopes} == ids
    for envelope in envelopes:
        assert orjson.loads(envelope["payload"])["id"] == envelope["key"]
        assert isinstance(envelope["partition"], int)
        assert isinstance(envelope["offset"], int)

    lines = kcat("firing-lines").splitlines()
    assert {line.split()[2].removeprefix("key=") for line in lines} == ids

    dead = cluster.read(cluster.settings.topic_events_dlq, lambda recs: len(recs) >= 1)
    assert len(dead) == 1
    headers = {k: v.decode() for k, v in dead[0].headers}
    assert headers["tripwire.topic"] == cluster.settings.topic_events
    out = kcat("dlq")
    assert out.startswith(f"partition={dead[0].partition} offset={dead[0].offset} key=bad-key ")
    for name in ("tripwire.reason", "tripwire.topic", "tripwire.partition", "tripwire.offset"):
        assert f"{name}={headers[name]}" in out
    assert headers["tripwire.reason"].startswith("invalid event: not JSON")
    assert "value={not json" in out
