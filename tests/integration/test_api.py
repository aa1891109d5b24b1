"""The automations API against a real broker and a real worker: routes, 422s, auth, explain."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.integration.actions_harness import Actions, firing
from tests.integration.api_harness import Api, run_cli, start_api, wait_worker_ready
from tests.integration.conftest import Broker
from tests.integration.harness import TRIPWIRE, Cluster, Worker, flow_run_event


@pytest.fixture(scope="module")
def world(
    broker: Broker, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Cluster, Worker, Api]]:
    cluster = Cluster(broker.bootstrap, tmp_path_factory.mktemp("api"))
    cluster.create_topics()
    try:
        worker = cluster.start_worker("w1")
        api = start_api(cluster, worker_urls=f"http://127.0.0.1:{worker.web_port}")
        wait_worker_ready(worker)
        yield cluster, worker, api
    finally:
        cluster.stop_all()


def wait_current(http: Any, automation_id: str, timeout: float = 30) -> dict[str, Any]:
    """Poll explain until a worker evaluates this very version of the automation."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        report: dict[str, Any] = http.get(f"/automations/{automation_id}/explain").json()
        if report["workers"]["current"]:
            return report
        time.sleep(0.05)
    msg = f"no worker picked automation {automation_id} up"
    raise AssertionError(msg)


def reactive(name: str, **trigger: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "posture": "Reactive",
        "expect": ["prefect.flow-run.Failed"],
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "threshold": 1,
        "within": 0,
    }
    body.update(trigger)
    return {"name": name, "trigger": body, "actions": [{"type": "do-nothing"}]}


def test_create_read_filter_update_pause_delete(world: tuple[Cluster, Worker, Api]) -> None:
    _, _, api = world
    with api.client() as http:
        created = http.post("/automations/", json={**reactive("crud-a"), "tags": ["team-a"]})
        assert created.status_code == 201, created.text
        automation = created.json()
        automation_id = automation["id"]
        assert automation["created"] and automation["updated"]
        assert automation["trigger"]["id"], "trigger ids are assigned"

        read = http.get(f"/automations/{automation_id}")
        assert read.status_code == 200
        assert read.json()["name"] == "crud-a"

        other = http.post("/automations/", json=reactive("crud-b")).json()
        by_tag = http.post(
            "/automations/filter", json={"automations": {"tags": {"all_": ["team-a"]}}}
        ).json()
        assert [a["id"] for a in by_tag] == [automation_id]
        by_name = http.post(
            "/automations/filter", json={"automations": {"name": {"any_": ["crud-b"]}}}
        ).json()
        assert [a["id"] for a in by_name] == [other["id"]]
        counted = http.post(
            "/automations/count",
            json={"automations": {"id": {"any_": [automation_id, other["id"]]}}},
        )
        assert counted.json() == 2

        replaced = http.put(f"/automations/{automation_id}", json=reactive("crud-a2", threshold=2))
        assert replaced.status_code == 204, replaced.text
        after = http.get(f"/automations/{automation_id}").json()
        assert after["name"] == "crud-a2"
        assert after["trigger"]["threshold"] == 2
        assert after["trigger"]["id"] == automation["trigger"]["id"], "stable trigger id"
        assert after["created"] == automation["created"]
        assert after["updated"] > automation["updated"]

        assert (
            http.patch(f"/automations/{automation_id}", json={"enabled": False}).status_code == 204
        )
        assert http.get(f"/automations/{automation_id}").json()["enabled"] is False
        assert (
            http.patch(f"/automations/{automation_id}", json={"enabled": True}).status_code == 204
        )
        assert http.get(f"/automations/{automation_id}").json()["enabled"] is True

        assert http.delete(f"/automations/{automation_id}").status_code == 204
        assert http.get(f"/automations/{automation_id}").status_code == 404
        assert http.delete(f"/automations/{automation_id}").status_code == 404
        missing = http.put(f"/automations/{uuid.uuid4()}", json=reactive("nobody"))
        assert missing.status_code == 404
        assert missing.json() == {"exception_message": "Automation not found"}
        http.delete(f"/automations/{other['id']}")


def test_related_to_and_owned_by(world: tuple[Cluster, Worker, Api]) -> None:
    _, _, api = world
    deployment = str(uuid.uuid4())
    body = reactive("owned", owner_resource="prefect.work-pool.pool-1")
    body["owner_resource"] = "prefect.work-pool.pool-1"
    body["actions"] = [
        {"type": "run-deployment", "source": "selected", "deployment_id": deployment}
    ]
    body["trigger"]["expect"] = ["prefect.work-pool.not-ready"]
    body["trigger"]["match"] = {"prefect.resource.id": "prefect.work-pool.*"}
    del body["trigger"]["owner_resource"]
    with api.client() as http:
        created = http.post("/automations/", json=body)
        assert created.status_code == 201, created.text
        automation_id = created.json()["id"]
        related = http.get(f"/automations/related-to/prefect.deployment.{deployment}").json()
        assert [a["id"] for a in related] == [automation_id]
        owned = http.get("/automations/related-to/prefect.work-pool.pool-1").json()
        assert [a["id"] for a in owned] == [automation_id]
        assert http.delete("/automations/owned-by/prefect.work-pool.pool-1").status_code == 202
        assert http.get(f"/automations/{automation_id}").status_code == 404


INVALID: list[tuple[str, dict[str, Any], str, str]] = [
    (
        "unknown trigger type",
        {**reactive("bad"), "trigger": {"type": "telepathy", "posture": "Reactive"}},
        "trigger",
        "",
    ),
    (
        "proactive within under 10 s",
        reactive("bad", posture="Proactive", within=5),
        "trigger.within",
        "greater than or equal to 10 seconds",
    ),
    (
        "bad metric operator",
        {
            "name": "bad",
            "trigger": {
                "type": "metric",
                "metric": {"name": "duration", "threshold": 10, "operator": "!=", "range": 300},
            },
            "actions": [{"type": "do-nothing"}],
        },
        "trigger.metric.operator",
        "",
    ),
    (
        "require larger than the children",
        {
            "name": "bad",
            "trigger": {
                "type": "compound",
                "require": 3,
                "within": 60,
                "triggers": [reactive("x")["trigger"], reactive("y")["trigger"]],
            },
            "actions": [{"type": "do-nothing"}],
        },
        "trigger",
        "require must be less than or equal to the number of triggers",
    ),
    (
        "unparsable pattern",
        reactive("bad", match={"prefect.resource.id": 42}),
        "trigger.match",
        "",
    ),
    (
        "unknown action type",
        {**reactive("bad"), "actions": [{"type": "launch-rocket"}]},
        "actions[0].type",
        "unknown action type",
    ),
    (
        "run-deployment without its deployment",
        {**reactive("bad"), "actions": [{"type": "run-deployment", "source": "selected"}]},
        "actions[0]",
        "deployment_id is required",
    ),
    (
        "missing name",
        {k: v for k, v in reactive("bad").items() if k != "name"},
        "name",
        "Field required",
    ),
]


@pytest.mark.parametrize(
    ("body", "field", "rule"), [c[1:] for c in INVALID], ids=[c[0] for c in INVALID]
)
def test_invalid_automations_get_422_naming_field_and_rule(
    world: tuple[Cluster, Worker, Api], body: dict[str, Any], field: str, rule: str
) -> None:
    _, _, api = world
    with api.client() as http:
        before = http.post("/automations/count").json()
        response = http.post("/automations/", json=body)
        assert response.status_code == 422, response.text
        error = response.json()
        assert error["exception_message"] == "Invalid request received."
        assert error["request_body"] == body
        details = error["exception_detail"]
        assert details, "at least one error"
        assert any(d["field"].startswith(field) for d in details), details
        assert all(d["loc"][0] == "body" for d in details)
        assert any(rule in d["msg"] for d in details), details
        assert http.post("/automations/count").json() == before, "nothing stored"


def test_self_triggering_automation_needs_an_opt_in(world: tuple[Cluster, Worker, Api]) -> None:
    _, _, api = world
    looping = reactive(
        "loop", expect=["prefect.automation.triggered"], match={"prefect.resource.id": "*"}
    )
    with api.client() as http:
        before = http.post("/automations/count").json()
        refused = http.post("/automations/", json=looping)
        assert refused.status_code == 422
        detail = refused.json()["exception_detail"][0]
        assert detail["field"] == "trigger"
        assert "its own firings" in detail["msg"]
        assert "allow_self_trigger" in detail["msg"]
        assert http.post("/automations/count").json() == before

        accepted = http.post("/automations/?allow_self_trigger=true", json=looping)
        assert accepted.status_code == 201, accepted.text
        automation_id = accepted.json()["id"]
        # Resuming a paused looping automation is the same decision, asked again.
        http.patch(f"/automations/{automation_id}", json={"enabled": False})
        resumed = http.patch(f"/automations/{automation_id}", json={"enabled": True})
        assert resumed.status_code == 422
        http.delete(f"/automations/{automation_id}")

        # Watching *other* automations is not a loop.
        other = reactive(
            "watch-others",
            expect=["prefect.automation.triggered"],
            match={"prefect.resource.id": f"prefect.automation.{uuid.uuid4()}"},
        )
        created = http.post("/automations/", json=other)
        assert created.status_code == 201, created.text
        http.delete(f"/automations/{created.json()['id']}")


def test_a_change_through_the_api_reaches_the_worker(world: tuple[Cluster, Worker, Api]) -> None:
    cluster, _, api = world
    run = f"r-{uuid.uuid4().hex[:8]}"
    with api.client() as http:
        created = http.post(
            "/automations/",
            json=reactive("reload", match={"prefect.resource.id": f"prefect.flow-run.{run}"}),
        ).json()
        automation_id = created["id"]
        wait_current(http, automation_id)
        now = datetime.now(UTC)
        cluster.produce_events([flow_run_event(run, "Failed", now, number=9_001)])
        first = cluster.firings(lambda fs: any(f["automation_id"] == automation_id for f in fs))
        assert [
            f["triggering_event"]["id"] for f in first if f["automation_id"] == automation_id
        ] == [str(uuid.UUID(int=9_001))]

        changed = reactive(
            "reload",
            expect=["prefect.flow-run.Crashed"],
            match={"prefect.resource.id": f"prefect.flow-run.{run}"},
        )
        assert http.put(f"/automations/{automation_id}", json=changed).status_code == 204
        report = wait_current(http, automation_id)
        assert report["triggers"][0]["expect"] == ["prefect.flow-run.Crashed"]
        # One key, one partition: the Crashed firing proves the Failed event before it
        # was evaluated under the new version, which no longer expects it.
        cluster.produce_events(
            [
                flow_run_event(run, "Failed", now, number=9_002),
                flow_run_event(run, "Crashed", now, number=9_003),
            ]
        )
        fired = cluster.firings(
            lambda fs: any(f["triggering_event"]["id"] == str(uuid.UUID(int=9_003)) for f in fs)
        )
        ids = [f["triggering_event"]["id"] for f in fired if f["automation_id"] == automation_id]
        assert ids == [str(uuid.UUID(int=9_001)), str(uuid.UUID(int=9_003))]
        http.delete(f"/automations/{automation_id}")


def test_explain_shows_buckets_per_key_and_why(world: tuple[Cluster, Worker, Api]) -> None:
    cluster, _, api = world
    tag = uuid.uuid4().hex[:8]
    body = reactive(
        "explain-me",
        threshold=3,
        within=3600,
        for_each=["prefect.resource.id"],
        match={"prefect.resource.id": f"prefect.flow-run.{tag}-*"},
    )
    with api.client() as http:
        automation_id = http.post("/automations/", json=body).json()["id"]
        empty = wait_current(http, automation_id)
        assert empty["triggers"][0]["buckets"] == []
        assert "No open bucket" in empty["triggers"][0]["explanation"]

        now = datetime.now(UTC)
        cluster.produce_events(
            [
                flow_run_event(f"{tag}-a", "Failed", now, number=9_101),
                flow_run_event(f"{tag}-a", "Failed", now, number=9_102),
                flow_run_event(f"{tag}-b", "Failed", now, number=9_103),
            ]
        )
        report: dict[str, Any] = {}
        for _ in range(100):
            report = http.get(f"/automations/{automation_id}/explain").json()
            counts = {b["key"]: b["count"] for b in report["triggers"][0]["buckets"]}
            if counts == {f"prefect.flow-run.{tag}-a": 2, f"prefect.flow-run.{tag}-b": 1}:
                break
            time.sleep(0.2)
        trigger = report["triggers"][0]
        buckets = {b["key"]: b for b in trigger["buckets"]}
        assert {k: b["count"] for k, b in buckets.items()} == {
            f"prefect.flow-run.{tag}-a": 2,
            f"prefect.flow-run.{tag}-b": 1,
        }
        a = buckets[f"prefect.flow-run.{tag}-a"]
        assert a["threshold"] == 3
        assert a["labels"] == {"prefect.resource.id": f"prefect.flow-run.{tag}-a"}
        assert "2 of 3 events so far" in a["explanation"]
        assert "1 more" in a["explanation"]
        assert report["workers"]["loaded_by"] and not report["workers"]["unreachable"]

        one = http.get(
            f"/automations/{automation_id}/explain", params={"key": f"prefect.flow-run.{tag}-b"}
        ).json()
        assert [b["count"] for b in one["triggers"][0]["buckets"]] == [1]
        http.delete(f"/automations/{automation_id}")


def test_prefect_start_up_routes(world: tuple[Cluster, Worker, Api]) -> None:
    _, _, api = world
    with api.client() as http:
        assert http.get("/health").json() is True
        assert http.get("/admin/version").json() == "3.9.1"
        csrf = http.get("/csrf-token", params={"client": "x"})
        assert csrf.status_code == 422
        assert "CSRF protection is disabled." in csrf.text
        schema = http.get("/openapi.json").json()
        assert "/api/automations/" in schema["paths"]
        assert "/api/automations/{id}/explain" in schema["paths"]


def test_bearer_token_guards_every_route_but_health(broker: Broker, cluster: Cluster) -> None:
    api = start_api(cluster, name="locked", token=uuid.uuid4().hex)
    with api.client(token="") as anonymous:
        assert anonymous.get("/health").status_code == 200
        denied = anonymous.post("/automations/filter", json={})
        assert denied.status_code == 401
        assert "Bearer" in denied.json()["exception_message"]
        assert anonymous.get("/openapi.json").status_code == 401
    with api.client(token="not-" + api.token) as wrong:
        assert wrong.post("/automations/filter", json={}).status_code == 401
    with api.client() as allowed:
        assert allowed.post("/automations/filter", json={}).status_code == 200
        assert allowed.post("/automations/", json=reactive("locked")).status_code == 201


def test_cli_apply_is_idempotent_and_manages_automations(
    world: tuple[Cluster, Worker, Api], tmp_path: Path
) -> None:
    _, _, api = world
    name = f"cli-{uuid.uuid4().hex[:8]}"
    path = tmp_path / "automations.yaml"
    path.write_text(yaml.safe_dump([reactive(name), reactive(f"{name}-2")]))
    first = run_cli(api, "automations", "apply", str(path))
    assert first.returncode == 0, first.stderr
    created = dict(line.split()[1:3][::-1] for line in first.stdout.splitlines())
    assert [line.split()[0] for line in first.stdout.splitlines()] == ["created", "created"]

    path.write_text(yaml.safe_dump([reactive(name, threshold=4), reactive(f"{name}-2")]))
    again = run_cli(api, "automations", "apply", str(path))
    assert again.returncode == 0, again.stderr
    assert [line.split()[:2] for line in again.stdout.splitlines()] == [
        ["updated", created[name]],
        ["unchanged", created[f"{name}-2"]],  # not written again
    ]
    shown = json.loads(run_cli(api, "automations", "get", name).stdout)
    assert shown["id"] == created[name]
    assert shown["trigger"]["threshold"] == 4

    assert run_cli(api, "automations", "pause", name).returncode == 0
    listed = run_cli(api, "automations", "ls").stdout
    # The "last fired" column: this automation never fired.
    assert f"{created[name]}  paused    {'never':20}  {name}" in listed
    assert run_cli(api, "automations", "resume", created[name]).returncode == 0
    listed = run_cli(api, "automations", "ls").stdout
    assert f"{created[name]}  enabled   {'never':20}  {name}" in listed

    removed = run_cli(api, "automations", "rm", name, f"{name}-2")
    assert removed.returncode == 0, removed.stderr
    assert name not in run_cli(api, "automations", "ls").stdout
    missing = run_cli(api, "automations", "get", name)
    assert missing.returncode == 2
    assert f"no automation with id or name '{name}'" in missing.stderr


def test_cli_shows_the_apis_validation_errors(
    world: tuple[Cluster, Worker, Api], tmp_path: Path
) -> None:
    _, _, api = world
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(reactive("bad-cli", posture="Proactive", within=3)))
    result = run_cli(api, "automations", "apply", str(path))
    assert result.returncode == 2
    assert (
        "tripwire automations apply: bad-cli: trigger.within: `within` for Proactive "
        "triggers must be greater than or equal to 10 seconds"
    ) in result.stderr.splitlines()
    assert "Traceback" not in result.stderr

    unreachable = subprocess.run(
        [str(TRIPWIRE), "automations", "ls"],
        env={**os.environ, "TRIPWIRE_API_URL": "http://127.0.0.1:9/api"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert unreachable.returncode == 2
    assert "cannot reach the Tripwire API at http://127.0.0.1:9/api" in unreachable.stderr


PREFECT_PYTHON = Path(__file__).resolve().parents[2] / ".venv-prefect" / "bin" / "python"
DRIVER = Path(__file__).with_name("prefect") / "drive_automations.py"


def drive_with_prefect_client(api: Api, tmp_path: Path, name: str) -> dict[str, Any]:
    assert PREFECT_PYTHON.exists(), "run `make prefect-env` (make test does)"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api.url,
        "PREFECT_API_KEY": api.token,
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
    }
    result = subprocess.run(
        [str(PREFECT_PYTHON), str(DRIVER), name],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr
    seen: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return seen


def test_prefects_own_client_works_unchanged(
    world: tuple[Cluster, Worker, Api], tmp_path: Path
) -> None:
    _, _, api = world
    name = f"prefect-client-{uuid.uuid4().hex[:8]}"
    seen = drive_with_prefect_client(api, tmp_path, name)
    assert seen["healthy"] is True
    assert seen["read_name"] == name
    assert seen["read_threshold"] == 2
    assert seen["read_within"] == 300.0
    assert seen["updated_threshold"] == 5
    assert seen["updated_description"] == "updated by prefect's client"
    assert seen["paused_enabled"] is False
    assert seen["resumed_enabled"] is True
    assert seen["by_name"] == [seen["id"]]
    assert seen["found"] == seen["id"]
    assert seen["after_delete"] == 404
    with api.client() as http:
        assert http.get(f"/automations/{seen['id']}").status_code == 404


def test_prefects_client_authenticates_with_its_api_key(
    broker: Broker, cluster: Cluster, tmp_path: Path
) -> None:
    api = start_api(cluster, name="keyed", token=uuid.uuid4().hex)
    seen = drive_with_prefect_client(api, tmp_path, "keyed")
    assert seen["read_name"] == "keyed"
    assert seen["after_delete"] == 404


def test_pause_and_resume_automation_actions_go_through_the_api(
    world: tuple[Cluster, Worker, Api],
) -> None:
    cluster, _, api = world
    with api.client() as http:
        target_id = http.post("/automations/", json=reactive("to-be-paused")).json()["id"]
    actions = Actions(cluster, api_url=api.url)
    actions.start()
    actions.produce(
        firing([{"type": "pause-automation", "source": "selected", "automation_id": target_id}])
    )
    with api.client() as http:
        deadline = time.monotonic() + 60
        while http.get(f"/automations/{target_id}").json()["enabled"]:
            assert time.monotonic() < deadline, "the action worker did not pause it"
            time.sleep(0.2)
        actions.produce(
            firing(
                [{"type": "resume-automation", "source": "selected", "automation_id": target_id}]
            )
        )
        while not http.get(f"/automations/{target_id}").json()["enabled"]:
            assert time.monotonic() < deadline, "the action worker did not resume it"
            time.sleep(0.2)
        http.delete(f"/automations/{target_id}")


def test_a_body_that_is_not_utf8_json_is_a_422_in_prefects_shape(
    world: tuple[Cluster, Worker, Api],
) -> None:
    # Found by tests/reliability/test_api_fuzz.py: FastAPI's own answer was a bare 400.
    _, _, api = world
    with api.client() as http:
        before = http.post("/automations/count").json()
        for method, path in [
            ("POST", "/automations/"),
            ("POST", "/automations/filter"),
            ("PUT", f"/automations/{uuid.uuid4()}"),
        ]:
            response = http.request(
                method, path, content=b"\xb8T2", headers={"Content-Type": "application/json"}
            )
            assert response.status_code == 422, (path, response.text)
            (detail,) = response.json()["exception_detail"]
            assert detail["loc"] == ["body"]
            assert detail["type"] == "json_invalid"
        assert http.post("/automations/count").json() == before


def stored_named(api: Api, name: str) -> list[dict[str, Any]]:
    with api.client() as http:
        found: list[dict[str, Any]] = http.post(
            "/automations/filter", json={"automations": {"name": {"any_": [name]}}}
        ).json()
    return found


def test_cli_apply_takes_prefects_file_shapes_dry_run_and_all_or_nothing(
    world: tuple[Cluster, Worker, Api], tmp_path: Path
) -> None:
    _, _, api = world
    tag = uuid.uuid4().hex[:8]
    one, two, three = f"shape-{tag}-1", f"shape-{tag}-2", f"shape-{tag}-3"
    path = tmp_path / "prefect-shape.yaml"
    path.write_text(yaml.safe_dump({"automations": [reactive(one), reactive(two)]}))

    dry = run_cli(api, "automations", "apply", "--dry-run", str(path))
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines() == [
        f"would create - {one}",
        f"would create - {two}",
        "dry run: 2 to create, 0 to update, 0 unchanged; nothing was written",
    ]
    assert stored_named(api, one) == [] and stored_named(api, two) == []

    applied = run_cli(api, "automations", "apply", str(path))
    assert applied.returncode == 0, applied.stderr
    ids = {line.split()[2]: line.split()[1] for line in applied.stdout.splitlines()}
    assert [line.split()[0] for line in applied.stdout.splitlines()] == ["created", "created"]

    # A bare JSON list on stdin: one changed, one the same.
    bare = json.dumps([reactive(one, threshold=3), reactive(two)])
    dry = run_cli(api, "automations", "apply", "--dry-run", "-", stdin=bare)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[:2] == [
        f"would update {ids[one]} {one}",
        f"unchanged {ids[two]} {two}",
    ]
    assert stored_named(api, one)[0]["trigger"]["threshold"] == 1, "a dry run wrote"

    # All or nothing: one valid change and two invalid automations write nothing.
    bad = {
        "automations": [
            reactive(one, threshold=5),
            reactive(three, posture="Proactive", within=3),
            {"trigger": {"posture": "Reactive"}, "actions": []},
        ]
    }
    path.write_text(yaml.safe_dump(bad))
    refused = run_cli(api, "automations", "apply", str(path))
    assert refused.returncode == 2
    assert refused.stdout == ""
    errors = refused.stderr.splitlines()
    assert (
        f"tripwire automations apply: {three}: trigger.within: `within` for Proactive "
        "triggers must be greater than or equal to 10 seconds"
    ) in errors
    assert "tripwire automations apply: item 2: name: Field required" in errors
    assert errors[-1] == (
        "tripwire automations apply: 2 of 3 automations are invalid; nothing was written"
    )
    assert "Traceback" not in refused.stderr
    assert stored_named(api, one)[0]["trigger"]["threshold"] == 1
    assert stored_named(api, three) == []

    # Two automations of one name in one file: the second would overwrite the first.
    path.write_text(yaml.safe_dump([reactive(three), reactive(three, threshold=2)]))
    twice = run_cli(api, "automations", "apply", str(path))
    assert twice.returncode == 2
    assert f"{three}: the file has two automations with name '{three}' (item 0)" in twice.stderr
    assert stored_named(api, three) == []

    # One object, as JSON on stdin.
    single = run_cli(api, "automations", "apply", "-", stdin=json.dumps(reactive(three)))
    assert single.returncode == 0, single.stderr
    assert single.stdout.split()[0] == "created"
    assert len(stored_named(api, three)) == 1
    assert run_cli(api, "automations", "rm", one, two, three).returncode == 0


READER = Path(__file__).with_name("prefect") / "read_automations.py"


def prefect_env(api: Api, tmp_path: Path) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PREFECT_HOME": str(tmp_path / "prefect-home"),
        "PREFECT_API_URL": api.url,
        "PREFECT_API_KEY": api.token,
        "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
        "COLUMNS": "400",  # the ls table would cut names in a narrow terminal
    }


def run_prefect(api: Api, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert PREFECT_PYTHON.exists(), "run `make prefect-env` (make test does)"
    return subprocess.run(
        [str(PREFECT_PYTHON), *args],
        env=prefect_env(api, tmp_path),
        capture_output=True,
        text=True,
        check=False,
        timeout=180,
    )


def mixed_automations(tag: str) -> list[dict[str, Any]]:
    """One of each Tripwire extension Prefect's client models would refuse as stored."""
    metric = {"name": "successes", "threshold": 0.5, "operator": "<", "range": 60}
    return [
        reactive(f"mixed-{tag}-plain"),
        {
            **reactive(f"mixed-{tag}-webhook"),
            "actions": [
                {
                    "type": "call-webhook",
                    "url": "http://127.0.0.1:9/hook",
                    "method": "PUT",
                    "headers": {"X-Token": "s3cret"},
                    "payload": "{{ event.id }}",
                },
                {"type": "send-notification", "url": "http://127.0.0.1:9/notify", "body": "b"},
            ],
        },
        {
            **reactive(f"mixed-{tag}-emit"),
            "actions": [
                {
                    "type": "emit-event",
                    "event": "tripwire.test",
                    "resource": {"prefect.resource.id": "tripwire.test"},
                }
            ],
        },
        {
            "name": f"mixed-{tag}-metric",
            "trigger": {"posture": "Metric", "metric": {**metric, "firing_for": 0}},
            "actions": [{"type": "do-nothing"}],
        },
        {
            "name": f"mixed-{tag}-compound",
            "trigger": {
                "type": "compound",
                "require": "any",
                "within": 60,
                "triggers": [
                    reactive("child")["trigger"],
                    {"posture": "Metric", "metric": {**metric, "firing_for": 600}},
                ],
            },
            "actions": [{"type": "do-nothing"}],
        },
    ]


def test_prefects_client_and_cli_read_every_automation(
    world: tuple[Cluster, Worker, Api], tmp_path: Path
) -> None:
    _, _, api = world
    tag = uuid.uuid4().hex[:8]
    mixed = mixed_automations(tag)
    names = [a["name"] for a in mixed]
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps({"automations": mixed}))
    applied = run_cli(api, "automations", "apply", str(path))
    assert applied.returncode == 0, applied.stderr
    with api.client() as http:
        before = {n: stored_named(api, n)[0] for n in names}
        webhook = before[f"mixed-{tag}-webhook"]["actions"][0]
        hook_block = webhook["block_document_id"]
        assert webhook["url"] == "http://127.0.0.1:9/hook", "the URL is served as well"
        metric = before[f"mixed-{tag}-metric"]["trigger"]["metric"]
        assert (metric["range"], metric["firing_for"]) == ("PT5M", "PT5M")
        assert metric["tripwire"] == {"range": "PT1M", "firing_for": "PT0S"}
        hidden = http.get(f"/block_documents/{hook_block}").json()
        assert hidden["data"]["url"] == "********"
        assert hidden["data"]["headers"] == {"X-Token": "********"}
        missing = http.get(f"/block_documents/{uuid.uuid4()}")
        assert missing.status_code == 404
        assert missing.json() == {"exception_message": "Block document not found"}

    # Prefect's client reads all of them, resolves the webhook blocks, and writes the
    # webhook and metric automations back unchanged.
    written_back = [f"mixed-{tag}-webhook", f"mixed-{tag}-metric", f"mixed-{tag}-compound"]
    reader = run_prefect(api, tmp_path, str(READER), *written_back)
    assert reader.returncode == 0, reader.stderr
    seen = json.loads(reader.stdout.strip().splitlines()[-1])
    assert set(names) <= set(seen["automations"])
    assert seen["automations"][f"mixed-{tag}-emit"]["actions"] == ["Emit event"]
    assert seen["automations"][f"mixed-{tag}-metric"]["trigger"] == (
        "Metric: successes < 0.5 for 0:05:00"
    )
    assert seen["blocks"][hook_block] == {
        "block": "Webhook",
        "url": "http://127.0.0.1:9/hook",
        "method": "PUT",
        "headers": {"X-Token": "s3cret"},
    }
    for name in written_back:
        after = stored_named(api, name)[0]
        assert after["updated"] > before[name]["updated"], f"{name} was not written back"
        assert {**after, "updated": None} == {**before[name], "updated": None}, name

    # Tripwire's own round trip: what `get` prints applies back as unchanged.
    shown = run_cli(api, "automations", "get", f"mixed-{tag}-webhook", f"mixed-{tag}-metric")
    path.write_text(json.dumps([json.loads(part) for part in _objects(shown.stdout)]))
    again = run_cli(api, "automations", "apply", "--dry-run", str(path))
    assert again.returncode == 0, again.stderr
    assert [line.split()[0] for line in again.stdout.splitlines()[:2]] == ["unchanged"] * 2

    # Prefect's CLI: ls, inspect and create --from-file in its `automations:` shape.
    listed = run_prefect(api, tmp_path, "-m", "prefect", "automation", "ls")
    assert listed.returncode == 0, listed.stderr
    for name in names:
        assert name in listed.stdout
    inspected = run_prefect(
        api, tmp_path, "-m", "prefect", "automation", "inspect", f"mixed-{tag}-webhook", "--json"
    )
    assert inspected.returncode == 0, inspected.stderr
    (shown_by_prefect,) = json.loads(inspected.stdout)
    assert shown_by_prefect["actions"][0]["block_document_id"] == hook_block
    created_by_prefect = f"mixed-{tag}-by-prefect"
    yaml_path = tmp_path / "prefect.yaml"
    yaml_path.write_text(
        yaml.safe_dump({"automations": [{**mixed[2], "name": created_by_prefect}]})
    )
    created = run_prefect(
        api, tmp_path, "-m", "prefect", "automation", "create", "--from-file", str(yaml_path)
    )
    assert created.returncode == 0, created.stdout + created.stderr
    (stored,) = stored_named(api, created_by_prefect)
    assert stored["actions"][0]["type"] == "emit-event"
    assert stored["actions"][0]["event"] == "tripwire.test"
    assert run_cli(api, "automations", "rm", *names, created_by_prefect).returncode == 0


def _objects(text: str) -> list[str]:
    """The JSON objects `tripwire automations get` prints one after another."""
    decoder, out, at = json.JSONDecoder(), [], 0
    while at < len(text.rstrip()):
        obj, end = decoder.raw_decode(text, at)
        out.append(json.dumps(obj))
        at = end + 1
    return out
