"""`tripwire events produce`, `tripwire firings tail` and the README's kcat recipes, for real."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from aiokafka.admin import AIOKafkaAdminClient

from service.models.automations import parse_automations
from tests.integration.harness import TRIPWIRE, Cluster, flow_run_event

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "docs" / "examples" / "quickstart"
AT = datetime(2026, 1, 1, 12, tzinfo=UTC)
TESTED = "<!-- tested: tests/integration/test_kafka_cli.py runs this block verbatim -->"


def _readme_recipe(cluster: Cluster, block: str) -> subprocess.CompletedProcess[str]:
    """Run one of the README's shell blocks as written, against this test's cluster."""
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=ROOT,
        env=cluster.env("kcat"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _readme_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    blocks = re.findall(re.escape(TESTED) + r"\n```sh\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 2, "the README's two tested kcat blocks"
    return blocks


def _tripwire(
    cluster: Cluster, *args: str, stdin: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [str(TRIPWIRE), *args],
        input=stdin.decode() if stdin is not None else None,
        env=cluster.env("cli"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result


def _firing(firing_id: str, automation: str) -> dict[str, Any]:
    return {"schema_version": 1, "id": firing_id, "automation_name": automation, "bucket": {}}


def _topics(bootstrap: str) -> set[str]:
    async def names() -> set[str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            return set(await admin.list_topics())
        finally:
            await admin.close()

    return asyncio.run(names())


@contextmanager
def _tail(cluster: Cluster, *args: str) -> Iterator[subprocess.Popen[str]]:
    """A running `firings tail --follow`, positioned (its start line read)."""
    process = subprocess.Popen(
        [str(TRIPWIRE), "firings", "tail", "--follow", *args],
        env=cluster.env("tail"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Not a timed assertion: only keeps a broken tail from hanging the suite.
    guard = threading.Timer(120, process.kill)
    guard.start()
    try:
        assert process.stderr is not None
        started = process.stderr.readline()
        assert started.startswith(f"following {cluster.settings.topic_firings} from "), started
        yield process
    finally:
        guard.cancel()
        if process.poll() is None:
            process.kill()
        process.wait()


def _lines(process: subprocess.Popen[str], count: int) -> list[dict[str, Any]]:
    assert process.stdout is not None
    return [orjson.loads(process.stdout.readline()) for _ in range(count)]


def test_produce_reports_bad_lines_and_keys_the_rest_by_resource(
    cluster: Cluster, tmp_path: Path
) -> None:
    good_a = flow_run_event("a", "Failed", AT, number=1)
    good_b = flow_run_event("b", "Running", AT, number=2)
    no_resource = flow_run_event("c", "Failed", AT, number=3)
    del no_resource["resource"]
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        b"\n".join(
            [
                orjson.dumps(good_a),
                b"",
                b"{not json",
                orjson.dumps(good_b),
                orjson.dumps(no_resource),
                b"[1, 2]",
            ]
        )
        + b"\n"
    )
    result = _tripwire(cluster, "events", "produce", str(events))
    assert result.returncode == 1
    assert result.stdout == "produced 2, refused 3\n"
    refused = result.stderr.splitlines()
    assert [line.split(": refused: ")[0] for line in refused] == [
        f"{events}:3",
        f"{events}:5",
        f"{events}:6",
    ]
    assert "resource" in refused[1]

    good_d = flow_run_event("d", "Failed", AT, number=4)
    piped = _tripwire(cluster, "events", "produce", stdin=orjson.dumps(good_d) + b"\n")
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == "produced 1, refused 0\n"

    records = cluster.read(cluster.settings.topic_events, lambda r: len(r) >= 3, settle=1)
    produced = {r.key: orjson.loads(r.value)["id"] for r in records}
    assert produced == {
        b"prefect.flow-run.a": good_a["id"],
        b"prefect.flow-run.b": good_b["id"],
        b"prefect.flow-run.d": good_d["id"],
    }


def test_a_missing_topic_is_an_error_and_is_not_created(cluster: Cluster) -> None:
    prefix = cluster.prefix
    missing_events, missing_firings = f"{prefix}.no-events", f"{prefix}.no-firings"
    env = cluster.env("cli")
    env["TRIPWIRE_TOPIC_EVENTS"] = missing_events
    env["TRIPWIRE_TOPIC_FIRINGS"] = missing_firings
    for args, topic in (
        (["events", "produce", str(QUICKSTART / "events.jsonl")], missing_events),
        (["firings", "tail", "--from-beginning"], missing_firings),
    ):
        result = subprocess.run(
            [str(TRIPWIRE), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert result.returncode == 2
        assert f"topic {topic!r} does not exist" in result.stderr
        assert result.stdout == ""
    # Asking for an unknown topic by name would have made Tansu create it (gap 5).
    assert not {missing_events, missing_firings} & _topics(cluster.bootstrap)


def test_tail_starts_at_the_end_filters_and_stops_quietly(cluster: Cluster) -> None:
    firings = cluster.settings.topic_firings
    # One key, one batch, one partition: a start from ListOffsets(LATEST) (seek_to_end)
    # would land inside this batch on the embedded broker and print old-2 and old-3.
    old = [_firing(f"old-{i}", "a") for i in range(1, 4)]
    cluster.produce([(b"same", orjson.dumps(f)) for f in old], topic=firings)

    with _tail(cluster) as process:
        new = [_firing("new-1", "a"), _firing("new-2", "b")]
        cluster.produce([(b"same", orjson.dumps(f)) for f in new], topic=firings)
        assert _lines(process, 2) == new
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0
        assert out == ""
        assert err == ""

    with _tail(cluster, "--from-beginning", "--automation", "a") as process:
        assert [f["id"] for f in _lines(process, 4)] == ["old-1", "old-2", "old-3", "new-1"]
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0
        assert (out, err) == ("", "")

    # Without --follow: up to the end found at the start, then exit.
    everything = _tripwire(cluster, "firings", "tail", "--from-beginning")
    assert everything.returncode == 0
    assert [orjson.loads(line)["id"] for line in everything.stdout.splitlines()] == [
        "old-1",
        "old-2",
        "old-3",
        "new-1",
        "new-2",
    ]
    nothing = _tripwire(cluster, "firings", "tail")
    assert (nothing.returncode, nothing.stdout) == (0, "")


def test_quickstart_and_readme_kcat_recipes_through_a_worker(cluster: Cluster) -> None:
    automations = parse_automations(orjson.loads((QUICKSTART / "automation.json").read_bytes()))
    cluster.publish(automations)
    cluster.start_worker("w1")
    cluster.wait_loaded("w1", {str(a.id) for a in automations})

    produced = _tripwire(cluster, "events", "produce", str(QUICKSTART / "events.jsonl"))
    assert produced.returncode == 0, produced.stderr
    assert produced.stdout == "produced 3, refused 0\n"

    produce_block, consume_block = _readme_blocks()
    kcat_produce = _readme_recipe(cluster, produce_block)
    assert kcat_produce.returncode == 0, kcat_produce.stderr
    # kcat keyed the event by its resource id, as the README says.
    events = cluster.read(cluster.settings.topic_events, lambda r: len(r) >= 4, settle=0.5)
    assert b"prefect.flow-run.kcat-1" in {r.key for r in events}

    expected = {f"prefect.flow-run.{run}" for run in ("quickstart-1", "quickstart-2", "kcat-1")}

    def fired(records: list[dict[str, Any]]) -> bool:
        return {r["bucket"]["prefect.resource.id"] for r in records} >= expected

    firings = cluster.firings(fired, timeout=90)
    ids = {f["id"] for f in firings}
    assert {f["bucket"]["prefect.resource.id"] for f in firings} == expected

    tailed = _tripwire(
        cluster, "firings", "tail", "--from-beginning", "--automation", "flow-run-failed"
    )
    assert tailed.returncode == 0
    assert {orjson.loads(line)["id"] for line in tailed.stdout.splitlines()} == ids
    other = _tripwire(cluster, "firings", "tail", "--from-beginning", "--automation", "other")
    assert (other.returncode, other.stdout) == (0, "")

    kcat_consume = _readme_recipe(cluster, consume_block)
    assert kcat_consume.returncode == 0, kcat_consume.stderr
    assert {orjson.loads(line)["id"] for line in kcat_consume.stdout.splitlines()} == ids
