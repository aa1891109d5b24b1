"""The action worker against real HTTP servers and the real broker (docs/actions.md)."""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import httpx
import orjson
import pytest

from tests.integration.actions_harness import Actions, event, firing, metric
from tests.integration.harness import Cluster
from tests.integration.http_target import HANG, Target, always, failing_first, http_target


@pytest.fixture
def target() -> Iterator[Target]:
    with http_target() as server:
        yield server


def _webhook(target: Target, path: str, payload: str = "") -> dict[str, str]:
    return {"type": "call-webhook", "url": f"{target.url}{path}", "payload": payload}


def test_actions_run_on_their_states_with_prefects_template_context(
    cluster: Cluster, target: Target
) -> None:
    target.on("/hook", always(200))
    target.on("/notify", always(204))
    target.on("/resolved", always(200))
    # Stands in for Tripwire's automations API (Prefect's PATCH route).
    automation_id = str(uuid.uuid4())
    target.on(f"/api/automations/{automation_id}", always(204))
    actions = Actions(cluster, api_url=f"{target.url}/api")
    _, web = actions.start()
    flow_run = str(uuid.uuid4())
    triggering = event(
        "prefect.flow-run.Failed",
        {"prefect.resource.id": f"prefect.flow-run.{flow_run}", "prefect.resource.name": "etl"},
        [{"prefect.resource.id": "prefect.flow.f1", "prefect.resource.role": "flow"}],
    )
    payload = (
        '{"automation": "{{ automation.name }}", "run": "{{ event.resource.id }}", '
        '"name": "{{ event.resource.name }}", "flow": "{{ event.resource_in_role.flow.id }}", '
        '"label": "{{ labels.prefect.resource.id }}", "firing": "{{ firing.id }}", '
        '"states": {{ firing.trigger_states | tojson }}, "answer": {{ event.payload.answer }}, '
        '"events": {{ events | length }}}'
    )
    triggered = firing(
        [
            {"type": "do-nothing"},
            _webhook(target, "/hook", payload),
            {
                "type": "emit-event",
                "event": "tripwire.test.{{ event.resource.name }}",
                "resource": {"prefect.resource.id": "test.{{ firing.id }}"},
                "payload": {"from": "{{ automation.id }}"},
            },
        ],
        actions_on_trigger=[
            {
                "type": "send-notification",
                "url": f"{target.url}/notify",
                "subject": "{{ automation.name }} fired",
                "body": "{{ event.event }}",
            },
            # Inferred from the action's event: for actions_on_trigger that is the
            # firing's own prefect.automation.triggered event, so it pauses itself.
            {"type": "pause-automation", "source": "inferred"},
        ],
        actions_on_resolve=[_webhook(target, "/resolved")],
        event=triggering,
        bucket={"prefect.resource.id": f"prefect.flow-run.{flow_run}"},
        automation_id=automation_id,
        name="etl-failing",
    )
    actions.produce(triggered)

    (hook,) = target.wait_for("/hook", 1)
    body = orjson.loads(hook.body)
    assert body == {
        "automation": "etl-failing",
        "run": f"prefect.flow-run.{flow_run}",
        "name": "etl",
        "flow": "prefect.flow.f1",
        "label": f"prefect.flow-run.{flow_run}",
        "firing": triggered["id"],
        "states": ["Triggered"],
        "answer": 42,
        "events": 1,
    }
    assert hook.headers["Idempotency-Key"] == f"{triggered['id']}:1"
    assert hook.headers["X-Tripwire-Firing-Id"] == triggered["id"]

    (note,) = target.wait_for("/notify", 1)
    # The notification's event is the state event (Prefect's act()), not the flow run's.
    assert orjson.loads(note.body) == {
        "subject": "etl-failing fired",
        "body": "prefect.automation.triggered",
    }
    assert note.headers["Idempotency-Key"] == f"{triggered['id']}:3"
    (pause,) = target.wait_for(f"/api/automations/{automation_id}", 1)
    assert (pause.method, orjson.loads(pause.body)) == ("PATCH", {"enabled": False})

    emitted = cluster.read(
        cluster.settings.topic_events,
        lambda recs: any(b"tripwire.test.etl" in r.value for r in recs),
    )
    # The action outcome events share the topic (docs/actions.md).
    (record,) = [
        e for r in emitted if (e := orjson.loads(r.value))["event"].startswith("tripwire.")
    ]
    assert record["resource"] == {"prefect.resource.id": f"test.{triggered['id']}"}
    assert record["payload"] == {"from": automation_id}

    resolved = firing(
        [],
        state="Resolved",
        actions_on_trigger=[_webhook(target, "/hook")],
        actions_on_resolve=[_webhook(target, "/resolved", "{{ firing.trigger_states[0] }}")],
    )
    actions.produce(resolved)
    (done,) = target.wait_for("/resolved", 1)
    assert done.body == b"Resolved"
    assert len(target.to("/hook")) == 1  # actions_on_trigger does not run on Resolved
    assert metric(web, "tripwire_action_successes", "do-nothing") == 1
    assert httpx.get(f"{web}/healthz", timeout=5).status_code == 200


def test_failures_are_retried_then_dead_lettered_and_bad_records_never_stop_the_worker(
    cluster: Cluster, target: Target
) -> None:
    target.on("/flaky", failing_first(2))  # 500, 500, then 200
    target.on("/broken", always(500))
    target.on("/hang", lambda _: (HANG, b""))
    target.on("/rejects", always(400))
    target.hang_seconds = 5.0
    actions = Actions(cluster, action_max_attempts="3", action_backoff="0.05", action_timeout="0.5")
    _, web = actions.start()
    record = firing(
        [
            _webhook(target, "/flaky"),
            _webhook(target, "/broken"),
            _webhook(target, "/hang"),
            _webhook(target, "/rejects"),
            _webhook(target, "/flaky", "[{{ event.nothing.at.all }}]"),
        ]
    )
    cluster.produce([(b"garbage", b"{not a firing")], cluster.settings.topic_firings)
    actions.produce(record)

    letters = actions.dead_letters(4)
    by_index: dict[object, dict[str, object]] = {}
    for letter in letters:
        document = orjson.loads(letter.value)
        by_index[document["action_index"]] = document
        headers = dict(letter.headers)
        assert headers["tripwire.reason"].decode() == document["error"]
    garbage = by_index.pop(None)
    assert str(garbage["error"]).startswith("bad firing record: not JSON")
    assert garbage["firing_raw"] == "{not a firing"
    assert sorted(by_index) == [1, 2, 3]
    assert by_index[1]["attempts"] == 3
    assert by_index[1]["error"] == "Unexpected status from 'call-webhook' action: 500"
    assert by_index[1]["firing"] == record
    assert by_index[1]["action"] == record["actions"][1]
    assert by_index[2]["attempts"] == 3
    assert "timed out" in str(by_index[2]["error"])
    assert by_index[3]["attempts"] == 1  # a 4xx is final
    assert len(target.to("/broken")) == 3
    assert len(target.to("/hang")) == 3
    assert len(target.to("/rejects")) == 1
    # /flaky: action 0 succeeded on its third attempt; action 4 rendered the missing
    # fields as nothing (ChainableUndefined, as in Prefect) and succeeded at once.
    flaky = target.wait_for("/flaky", 4)
    assert [r.headers["Idempotency-Key"] for r in flaky] == [
        f"{record['id']}:{i}" for i in (0, 0, 0, 4)
    ]
    assert flaky[-1].body == b"[]"
    assert metric(web, "tripwire_action_attempts", "call-webhook") == 11
    assert metric(web, "tripwire_action_dead_lettered", "call-webhook") == 3
    assert metric(web, "tripwire_action_failures", "call-webhook") == 2 + 3 + 3 + 1


def test_each_action_takes_effect_once_across_redelivery_and_a_kill_mid_firing(
    cluster: Cluster, target: Target
) -> None:
    target.on("/first", always(200))
    target.on("/slow", lambda seen: (HANG, b"") if seen == 0 else (200, b"{}"))
    target.on("/marker", always(200))
    target.hang_seconds = 60.0
    actions = Actions(cluster, action_timeout="30")
    worker, _ = actions.start("actions")
    record = firing([_webhook(target, "/first"), _webhook(target, "/slow")])
    actions.produce(record, partition=0)
    target.wait_for("/slow", 1)  # action 0 done and recorded, action 1 in flight
    assert worker.stop(signal.SIGKILL) == -signal.SIGKILL

    worker, _ = actions.start("actions")  # same data dir: same completion table
    slow = target.wait_for("/slow", 2)
    # The redelivered firing skipped action 0 and repeated the unfinished action 1,
    # with the same idempotency key for the target to drop it by.
    assert len(target.to("/first")) == 1
    assert {r.headers["Idempotency-Key"] for r in slow} == {f"{record['id']}:1"}

    marker = firing([_webhook(target, "/marker")])
    actions.produce(record, marker, partition=0)  # a plain redelivery, then a marker
    target.wait_for("/marker", 1)
    assert worker.stop() == 0  # finishes the batch in hand first
    assert len(target.to("/first")) == 1
    assert len(target.to("/slow")) == 2


# Inside Prefect's limits (two loops, nested two deep, no range()): about 10**10 empty
# iterations that no sandbox check stops; only the render's CPU budget does.
NESTED_LOOPS = "{% for a in 'x' * 100000 %}{% for b in 'x' * 100000 %}{% endfor %}{% endfor %}"
BUDGET = 8.0


def test_bad_templates_fail_alone_while_other_webhooks_and_healthz_keep_going(
    cluster: Cluster, target: Target
) -> None:
    target.on("/ok", always(200))
    target.on("/bad", always(200))
    actions = Actions(cluster, template_cpu_seconds=str(BUDGET))
    triggering = event("prefect.flow-run.Failed", {"prefect.resource.id": "prefect.flow-run.r1"})
    triggering["payload"]["text"] = "x" * 200
    bad_templates = {
        "cpu": NESTED_LOOPS,
        "power": "{{ (9 ** (9 ** 8)) % 7 }}",
        "repeat": "{{ 'A' * 50000000 }}",
        # 10,000 x 200 characters: over the 1,000,000 default without a `*` to refuse.
        "output": (
            "{% for i in range(100) %}{% for j in range(100) %}{{ event.payload.text }}"
            "{% endfor %}{% endfor %}"
        ),
        "globals": "{{ range.__globals__ }}",
    }
    bad = {
        name: firing([_webhook(target, "/bad", template)], event=triggering)
        for name, template in bad_templates.items()
    }
    healthy = firing([_webhook(target, "/ok", "{{ event.resource.id }}")], event=triggering)
    # One partition, bad firings first, all written before the worker starts: its first
    # batch holds them all, so the healthy firing runs beside the bad renders. (A later
    # batch waits for the slowest firing of the one before, at most the budget.)
    actions.produce(*bad.values(), healthy, partition=0)
    _, web = actions.start()
    ready = time.time()

    (ok,) = target.wait_for("/ok", 1, timeout=60)
    assert ok.body == b"prefect.flow-run.r1"
    health: list[float] = []
    for _ in range(5):
        asked = time.time()
        # Before the render processes, the event loop computed the template and this
        # timed out for as long as the render ran.
        assert httpx.get(f"{web}/healthz", timeout=2).status_code == 200
        health.append(time.time() - asked)
        time.sleep(0.2)
    answered = time.time()

    letters = actions.dead_letters(len(bad), timeout=120)
    documents = {orjson.loads(letter.value)["firing"]["id"]: letter for letter in letters}
    assert set(documents) == {record["id"] for record in bad.values()}
    reasons: dict[str, str] = {}
    for name, record in bad.items():
        letter = documents[record["id"]]
        document = orjson.loads(letter.value)
        assert document["attempts"] == 1, name  # a template failure is final: no retry
        assert dict(letter.headers)["tripwire.reason"].decode() == document["error"]
        assert document["details"]["template_error"] == document["error"]
        reasons[name] = document["error"]
    assert reasons["cpu"] == (
        "Template rendering failed: it used more than its 8 s of CPU time "
        "(TRIPWIRE_TEMPLATE_CPU_SECONDS)"
    )
    assert "9 ** 43046721 would be a number of about" in reasons["power"]
    assert "would be 50,000,000 characters" in reasons["repeat"]
    assert "over the limit of 1,000,000 characters" in reasons["output"]
    assert "access to attribute '__globals__'" in reasons["globals"]
    assert target.to("/bad") == []  # no empty (or any) body went out for a bad template

    cpu_over = datetime.fromisoformat(
        orjson.loads(documents[bad["cpu"]["id"]].value)["dead_lettered_at"]
    ).timestamp()
    # The CPU-heavy render ran for its whole budget, and the healthy webhook and every
    # health check were answered well inside it, not after it.
    assert ok.at < cpu_over - BUDGET / 2
    assert answered < cpu_over

    # The killed render process was replaced: templates still render.
    later = firing([_webhook(target, "/ok", "{{ firing.id }}")])
    actions.produce(later)
    assert target.wait_for("/ok", 2, timeout=60)[1].body == later["id"].encode()
    print(
        "TEMPLATES",
        {
            "healthy_webhook_after_ready_s": round(ok.at - ready, 2),
            "cpu_render_dead_lettered_after_ready_s": round(cpu_over - ready, 2),
            "healthz_slowest_s": round(max(health), 3),
        },
    )


def test_run_deployment_parameters_render_with_prefect_objects_in_the_render_process(
    cluster: Cluster, target: Target
) -> None:
    # The HTTP target stands in for the Prefect API: the flow run the templates name,
    # and the create_flow_run route that receives the rendered parameters.
    deployment, flow_run = str(uuid.uuid4()), str(uuid.uuid4())
    target.on(f"/api/flow_runs/{flow_run}", always(200, b'{"name": "etl-7"}'))
    target.on(
        f"/api/deployments/{deployment}/create_flow_run",
        always(201, b'{"id": "fr-1", "name": "new"}'),
    )
    actions = Actions(cluster, prefect_api_url=f"{target.url}/api")
    actions.start()
    parameters = {
        "n": "{{ event.payload.answer }}",
        "text": "after {{ flow_run.name }}",
        "raw": {"__prefect_kind": "json", "value": '{"a": 1}'},
    }
    record = firing(
        [{"type": "run-deployment", "deployment_id": deployment, "parameters": parameters}],
        event=event(
            "prefect.flow-run.Failed", {"prefect.resource.id": f"prefect.flow-run.{flow_run}"}
        ),
    )
    actions.produce(record)
    (created,) = target.wait_for(f"/api/deployments/{deployment}/create_flow_run", 1)
    assert orjson.loads(created.body)["parameters"] == {
        "n": 42,
        "text": "after etl-7",
        "raw": {"a": 1},
    }


def _action_events(records: list[Any], firing_id: str) -> list[dict[str, Any]]:
    events = [orjson.loads(r.value) for r in records]
    return [
        e
        for e in events
        if e["event"].startswith("prefect.automation.action.")
        and e["payload"]["invocation"] == firing_id
    ]


def test_outcome_events_are_published_once_per_outcome_with_ids_a_redelivery_repeats(
    cluster: Cluster, target: Target
) -> None:
    target.on("/ok", always(200))
    target.on("/refused", always(404))
    actions = Actions(cluster)
    actions.start()
    automation_id = str(uuid.uuid4())
    flow_run = event("prefect.flow-run.Failed", {"prefect.resource.id": "prefect.flow-run.o"})
    record = firing(
        [_webhook(target, "/ok"), _webhook(target, "/refused")],
        event=flow_run,
        automation_id=automation_id,
    )
    actions.produce(record, partition=0)
    topic = cluster.settings.topic_events
    first = cluster.read(topic, lambda recs: len(_action_events(recs, record["id"])) >= 4)
    events = _action_events(first, record["id"])
    by_name = {(e["payload"]["action_index"], e["event"].rsplit(".", 1)[1]): e for e in events}
    assert sorted(by_name) == [(0, "executed"), (0, "triggered"), (1, "failed"), (1, "triggered")]
    failed = by_name[(1, "failed")]
    assert failed["payload"]["reason"] == "Unexpected status from 'call-webhook' action: 404"
    assert failed["payload"]["status_code"] == 404
    assert failed["resource"]["prefect.resource.id"] == f"prefect.automation.{automation_id}"
    assert failed["follows"] == by_name[(1, "triggered")]["id"]
    related = {r["prefect.resource.role"]: r["prefect.resource.id"] for r in failed["related"]}
    assert related == {
        "automation-triggered-event": f"prefect.event.{record['state_event']['id']}",
        "triggering-event": f"prefect.event.{flow_run['id']}",
    }
    keys = {r.key for r in first if orjson.loads(r.value)["id"] in {e["id"] for e in events}}
    assert keys == {f"prefect.automation.{automation_id}".encode()}

    # The same firing again (a redelivery), then a marker behind it in the same partition:
    # once the marker's events are out, the redelivery was handled.
    marker = firing([{"type": "do-nothing"}])
    actions.produce(record, marker, partition=0)
    again = cluster.read(topic, lambda recs: len(_action_events(recs, marker["id"])) >= 2)
    repeated = _action_events(again, record["id"])
    assert len(repeated) == 8, "announced again..."
    assert {e["id"] for e in repeated} == {e["id"] for e in events}, "...under the same ids"
    assert len(target.to("/ok")) == 1, "and the action was not run again"
