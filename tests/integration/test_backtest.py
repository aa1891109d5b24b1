"""`tripwire backtest` and `POST /api/automations/backtest` on a real broker and API."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.api_harness import Api, start_api
from tests.integration.fault_proxy import FaultProxy, proxied_cluster
from tests.integration.harness import (
    TRIPWIRE,
    Cluster,
    failures_per_run,
    flow_run_event,
    scrape,
    stuck_runs,
    until,
)

START = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
TICK = 5


def _history() -> list[dict[str, Any]]:
    """Flow runs over several partitions: failures across runs, runs that never finish.

    Occurred times increase in production order, so each partition (a run's events
    share its key) is in event-time order, and runs interleave across partitions.
    """
    events: list[dict[str, Any]] = []
    number = 0
    for run in range(30):
        started = START + timedelta(seconds=7 * run)
        number += 1
        events.append(flow_run_event(f"r{run}", "Running", started, number=number))
        if run % 5 == 4:
            continue  # never finishes: the stuck-run automation's deadline passes
        number += 1
        state = "Failed" if run % 3 == 0 else "Completed"
        ended = started + timedelta(seconds=3 + run % 4)
        events.append(flow_run_event(f"r{run}", state, ended, number=number))
    events.sort(key=lambda e: e["occurred"])
    events.append(dict(events[3]))  # a redelivery: de-duplicated by id
    return events


def _automations() -> list[dict[str, Any]]:
    across = failures_per_run("failures across runs", threshold=2, within=60)
    across["trigger"]["for_each"] = []
    return [across, stuck_runs("stuck runs", within=30)]


def _env(cluster: Cluster, **extra: str) -> dict[str, str]:
    return {**cluster.env("backtest"), "TRIPWIRE_TICK_INTERVAL": str(TICK), **extra}


def _tripwire(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRIPWIRE), *args], env=env, capture_output=True, text=True, check=False, timeout=120
    )


def _lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def _merged_export(cluster: Cluster, count: int) -> list[bytes]:
    """The topic's records in the stream's order, computed apart from the backtest's merge.

    Every partition is in event-time order here, so the k-way merge is a sort by
    (occurred, partition, offset).
    """
    records = cluster.read(cluster.settings.topic_events, lambda recs: len(recs) >= count)
    readable = []
    for record in records:
        try:
            event = orjson.loads(record.value)
        except orjson.JSONDecodeError:
            continue
        occurred = datetime.fromisoformat(event["occurred"])
        readable.append((occurred, record.partition, record.offset, record.value))
    readable.sort(key=lambda r: r[:3])
    return [value for *_, value in readable]


def test_a_backtest_of_the_topic_equals_replay_of_the_same_events_in_stream_order(
    cluster: Cluster, tmp_path: Path
) -> None:
    events = _history()
    cluster.produce_events(events)
    cluster.produce([(b"prefect.flow-run.r1", b"{not json")])  # unreadable: counted, not fatal
    automations = tmp_path / "automations.json"
    automations.write_bytes(orjson.dumps(_automations()))
    spread = {r.partition for r in cluster.read(cluster.settings.topic_events, lambda r: True)}
    assert len(spread) > 1, "the events must span several partitions"

    args = ["backtest", "--automations", str(automations), "--from-topic", "--json"]
    first = _tripwire(_env(cluster), *args)
    assert first.returncode == 0, first.stderr
    second = _tripwire(_env(cluster), *args)
    assert second.stdout == first.stdout  # deterministic run to run
    backtest = _lines(first.stdout)
    assert "1 unreadable record(s) skipped (not_json 1)" in first.stderr
    assert f"{len(events)} events from" in first.stderr  # the Router drops the duplicate

    exported = tmp_path / "events.jsonl"
    exported.write_bytes(b"\n".join(_merged_export(cluster, len(events) + 1)) + b"\n")
    # Replay numbers automations' ids as the backtest does (the same file, with_ids).
    replay = _tripwire(
        _env(cluster),
        "replay",
        "--automations",
        str(automations),
        "--events",
        str(exported),
        "--ticks",
        f"step:{TICK}",
    )
    assert replay.returncode == 0, replay.stderr
    expected = _lines(replay.stdout)
    assert {line["automation"] for line in expected} == {"failures across runs", "stuck runs"}
    assert [{k: v for k, v in line.items() if k != "path"} for line in backtest] == expected

    # The same from the file, with an unreadable line: counted, never fatal.
    exported.write_bytes(exported.read_bytes() + b"{not json\n")
    from_file = _tripwire(_env(cluster), *args[:3], "--events", str(exported), "--json")
    assert from_file.returncode == 0, from_file.stderr
    assert _lines(from_file.stdout) == backtest
    assert "1 unreadable record(s) skipped (not_json 1)" in from_file.stderr


def test_since_and_until_bound_the_events_by_their_occurred_time(
    cluster: Cluster, tmp_path: Path
) -> None:
    events = _history()
    cluster.produce_events(events)
    automations = tmp_path / "automations.json"
    automations.write_bytes(orjson.dumps(_automations()[:1]))
    since, end = START + timedelta(seconds=70), START + timedelta(seconds=140)
    result = _tripwire(
        _env(cluster),
        "backtest",
        "--automations",
        str(automations),
        "--from-topic",
        "--json",
        "--since",
        since.isoformat(),
        "--until",
        end.isoformat(),
    )
    assert result.returncode == 0, result.stderr
    inside = [e for e in events if since <= datetime.fromisoformat(e["occurred"]) < end]
    assert f"{len(inside)} events from" in result.stderr
    assert f"{len(events) - len(inside)} event(s) outside --since/--until" in result.stderr
    by_id = {e["id"]: e for e in events}
    for line in _lines(result.stdout):
        assert since <= datetime.fromisoformat(by_id[line["triggering_event"]]["occurred"]) < end


def _create(api: Api, automation: dict[str, Any]) -> str:
    with api.client() as client:
        response = client.post("/automations/", json=automation)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_against_deployed_shows_the_firings_a_tightened_threshold_loses(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.produce_events(_history())
    api = start_api(cluster)
    deployed = failures_per_run("failures across runs", threshold=2, within=60)
    deployed["trigger"]["for_each"] = []
    _create(api, deployed)
    tightened = {**deployed, "trigger": {**deployed["trigger"], "threshold": 3}}
    new_file = tmp_path / "new.json"
    new_file.write_bytes(orjson.dumps([tightened]))
    old_file = tmp_path / "old.json"
    old_file.write_bytes(orjson.dumps([deployed]))
    env = {**_env(cluster), **api.env()}

    alone = {}
    for name, path in (("new", new_file), ("old", old_file)):
        run = _tripwire(env, "backtest", "--automations", str(path), "--from-topic", "--json")
        assert run.returncode == 0, run.stderr
        alone[name] = {line["triggering_event"] for line in _lines(run.stdout)}
    assert alone["old"] - alone["new"], "the workload must lose firings when tightened"

    compared = _tripwire(
        env, "backtest", "--automations", str(new_file), "--from-topic", "--against", "deployed",
        "--json",
    )  # fmt: skip
    assert compared.returncode == 0, compared.stderr
    lines = _lines(compared.stdout)
    marked = {d: {x["triggering_event"] for x in lines if x["diff"] == d} for d in
              ("only_new", "only_deployed", "both")}  # fmt: skip
    assert marked["only_deployed"] == alone["old"] - alone["new"]
    assert marked["only_new"] == alone["new"] - alone["old"]
    assert marked["both"] == alone["new"] & alone["old"]
    assert f"only in the deployed: {len(marked['only_deployed'])} (-)" in compared.stderr

    readable = _tripwire(
        env, "backtest", "--automations", str(new_file), "--from-topic", "--against", "deployed"
    )
    assert readable.returncode == 0, readable.stderr
    minus = [line for line in readable.stdout.splitlines() if line.startswith("- ")]
    assert len(minus) == len(marked["only_deployed"])


def _post_backtest(api: Api, body: dict[str, Any]) -> httpx.Response:
    with api.client() as client:
        return client.post("/automations/backtest", json=body, timeout=120)


def test_the_api_route_answers_what_the_cli_prints_and_refuses_as_create_does(
    cluster: Cluster, tmp_path: Path
) -> None:
    cluster.produce_events(_history())
    api = start_api(cluster, extra_env={"TRIPWIRE_TICK_INTERVAL": str(TICK)})
    automations = _automations()
    path = tmp_path / "automations.json"
    path.write_bytes(orjson.dumps(automations))
    cli = _tripwire(_env(cluster), "backtest", "--automations", str(path), "--from-topic", "--json")
    assert cli.returncode == 0, cli.stderr

    response = _post_backtest(api, {"automations": automations})
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["firings"] == _lines(cli.stdout)
    assert answer["summary"]["cut"] is None
    assert answer["summary"]["events"] == len(_history())

    cut = _post_backtest(api, {"automations": automations, "max_events": 5}).json()
    assert cut["summary"]["cut"] == "max_events"
    assert cut["summary"]["events"] == 5

    bad = {**automations[0], "trigger": {**automations[0]["trigger"], "posture": "Sideways"}}
    own_events = {
        "expect": ["prefect.automation.triggered"],
        "match": {"prefect.resource.id": "prefect.automation.*"},
    }
    looping = {**automations[0], "trigger": {**automations[0]["trigger"], **own_events}}
    for invalid in (bad, looping):
        with api.client() as client:
            created = client.post("/automations/", json=invalid)
        refused = _post_backtest(api, {"automations": [automations[1], invalid]})
        assert created.status_code == refused.status_code == 422
        want = [(d["msg"], d["type"], d["loc"][1:]) for d in created.json()["exception_detail"]]
        got = [(d["msg"], d["type"], d["loc"]) for d in refused.json()["exception_detail"]]
        assert got == [(msg, kind, ["body", "automations", 1, *loc]) for msg, kind, loc in want]


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Cluster, FaultProxy]]:
    """A broker of its own behind a proxy that can hold the events topic's fetches."""
    with proxied_cluster(tmp_path) as world:
        yield world


def test_other_routes_answer_while_a_backtest_runs(held: tuple[Cluster, FaultProxy]) -> None:
    cluster, proxy = held
    cluster.produce_events(_history())
    api = start_api(cluster, extra_env={"TRIPWIRE_TICK_INTERVAL": str(TICK)})
    deployed_id = _create(api, _automations()[1])
    proxy.hold = cluster.settings.topic_events.encode()
    answer: list[httpx.Response] = []
    running = threading.Thread(
        target=lambda: answer.append(_post_backtest(api, {"automations": _automations()}))
    )
    running.start()
    try:
        # The backtest is inside its route, its reads held at the proxy: it cannot finish.
        until(
            lambda: scrape(api.port).get(("tripwire_api_backtests_running", ())) == 1,
            what="the backtest to start",
        )
        with api.client() as client:
            assert client.get("/health").status_code == 200
            assert client.get(f"/automations/{deployed_id}").status_code == 200
            listed = client.post("/automations/filter", json={})
            assert [a["id"] for a in listed.json()] == [deployed_id]
        assert not answer, "the backtest answered while its reads were held"
    finally:
        proxy.hold = None
        running.join(120)
    assert answer[0].status_code == 200, answer[0].text
    assert answer[0].json()["summary"]["events"] == len(_history())
