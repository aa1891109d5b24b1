"""Action validation, planning, templates and retry policy: the pure parts of the action worker."""

from __future__ import annotations

import ast
import asyncio
import random
import re
import subprocess
import sys
import time
from typing import Any

import pytest

from service.actions.delivery import ActionFailed, Retriable, RetryPolicy, deliver
from service.actions.effects import (
    _hydrate,
    _id_of_first_resource_of_kind,
    _templates_in,
    _upgrade_v1,
)
from service.actions.runner import plan
from service.actions.templates import (
    Sandbox,
    TemplateFailed,
    render,
    render_all,
    template_context,
)
from service.errors import ValidationFailed
from service.models.automations import parse_automation

BUSY, REFUSED = "503", "400"
DEPLOYMENT = "3fa85f64-5717-4562-b3fc-2c963f66afa6"


def _errors(actions: list[dict[str, Any]]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_automation({"name": "a", "trigger": {"posture": "Reactive"}, "actions": actions})
    return caught.value.errors


@pytest.mark.parametrize(
    ("action", "location", "message"),
    [
        ({"type": "run-deployment"}, "actions[0]", "deployment_id is required"),
        (
            {"type": "pause-deployment", "source": "inferred", "deployment_id": DEPLOYMENT},
            "actions[0]",
            "deployment_id is not allowed",
        ),
        ({"type": "pause-work-pool"}, "actions[0]", "work_pool_id is required"),
        ({"type": "resume-work-queue"}, "actions[0]", "work_queue_id is required"),
        ({"type": "pause-automation"}, "actions[0]", "automation_id is required"),
        ({"type": "change-flow-run-state"}, "actions[0].state", "Field required"),
        ({"type": "send-notification", "url": "http://x"}, "actions[0].body", "Field required"),
        (
            {"type": "call-webhook"},
            "actions[0]",
            "exactly one of block_document_id or url is required",
        ),
        (
            {"type": "run-deployment", "deployment_id": DEPLOYMENT, "schedule_after": -1},
            "actions[0].schedule_after",
            "schedule_after must be at least 0 seconds",
        ),
    ],
)
def test_each_action_type_checks_its_fields_at_creation(
    action: dict[str, Any], location: str, message: str
) -> None:
    ((loc, msg),) = _errors([action])
    assert (loc, msg) == (location, message)


def test_templates_are_checked_at_creation_with_prefects_limits() -> None:
    ((loc, msg),) = _errors([{"type": "call-webhook", "url": "http://x", "payload": "{{ a"}])
    assert loc == "actions[0].payload"
    assert msg.startswith("'payload' is not a valid template")
    loops = "{% for a in x %}{% for b in a %}{% for c in b %}{% endfor %}{% endfor %}{% endfor %}"
    ((_, msg),) = _errors([{"type": "call-webhook", "url": "http://x", "payload": loops}])
    assert "nested for loops at a depth of 3" in msg


def test_models_import_nothing_from_the_worker_packages() -> None:
    # Issue 18: the API and replay validate automations without the action worker's code.
    code = (
        "import sys, service.models.automations, service.models.actions; "
        "print(sorted(m for m in sys.modules if m.startswith('service.')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = ast.literal_eval(out.stdout)
    assert [m for m in loaded if not m.startswith(("service.models", "service.errors"))] == []


def test_unknown_action_types_are_refused() -> None:
    ((loc, msg),) = _errors([{"type": "launch-rocket"}])
    assert loc == "actions[0].type"
    assert "unknown action type 'launch-rocket'" in msg


def test_the_sandbox_refuses_internals() -> None:
    context = template_context(_record(), None)
    with pytest.raises(TemplateFailed, match="SecurityError"):
        render("{{ automation.actions.append(1) }}", context)
    with pytest.raises(TemplateFailed, match="Range too big"):
        render("{% for i in range(1000) %}{% endfor %}", context)


@pytest.mark.parametrize(
    "template",
    [
        "{{ automation.__class__.__mro__ }}",
        "{{ range.__globals__ }}",
        "{{ automation['__class__'] }}",
        "{{ event.__init__.__globals__['os'] }}",
        "{{ labels._labels }}",
    ],
)
def test_unsafe_attributes_fail_the_render_instead_of_rendering_nothing(template: str) -> None:
    # Jinja's sandbox renders these as "": an empty webhook body went out without a word.
    context = template_context(_record(), {"id": "e", "event": "x"})
    with pytest.raises(TemplateFailed, match=r"access to attribute '_\w+' of a '\w+' object"):
        render(template, context)


def test_missing_names_still_render_as_nothing_as_in_prefect() -> None:
    context = template_context(_record(), None)
    assert render("[{{ nothing.here }}][{{ event.resource.id }}]", context) == "[][]"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("{{ (9 ** (9 ** 8)) % 7 }}", "9 ** 43046721 would be a number of about"),
        ("{{ 'A' * 50000000 }}", "would be 50,000,000 characters"),
        ("{{ 50000000 * 'A' }}", "would be 50,000,000 characters"),
        ("{{ [0] * 10 ** 9 }}", "would be 1,000,000,000 items"),
    ],
)
def test_the_sandbox_refuses_huge_powers_and_repeats_before_computing_them(
    template: str, reason: str
) -> None:
    started = time.process_time()
    with pytest.raises(TemplateFailed, match=re.escape(reason)):
        render(template, template_context(_record(), None))
    # Computing 9 ** (9 ** 8) took 58 s of CPU; refusing it is arithmetic on its size.
    assert time.process_time() - started < 0.5


def test_ordinary_arithmetic_and_repeats_still_work() -> None:
    context = template_context(_record(), None)
    assert render("{{ 2 ** 10 }} {{ 'ab' * 3 }} {{ 3 * 4 }} {{ 2.5 * 2 }}", context) == (
        "1024 ababab 12 5.0"
    )
    assert render("{{ (2 ** 1000) % 7 }}", context) == str((2**1000) % 7)


def test_the_output_limit_counts_every_template_of_the_action_as_it_renders() -> None:
    sandbox = Sandbox(max_output=1_000)
    context = template_context(_record(), None)
    loop = "{% for i in range(100) %}{{ 'x' * 9 }}{% endfor %}"  # 900 characters
    assert render_all([loop], context, sandbox) == ["x" * 900]
    with pytest.raises(TemplateFailed, match=r"over the limit of 1,000 characters"):
        render_all([loop, loop], context, sandbox)
    # A loop that keeps writing stops at the limit, not after building its whole text.
    nested = (
        "{% for i in range(100) %}{% for j in range(100) %}{{ 'y' * 900 }}{% endfor %}{% endfor %}"
    )
    with pytest.raises(TemplateFailed, match="TRIPWIRE_TEMPLATE_MAX_OUTPUT"):
        render_all([nested], context, sandbox)


def _record(state: str = "Triggered") -> dict[str, Any]:
    return {
        "id": "f1",
        "automation_id": "a1",
        "automation_name": "n",
        "trigger_id": "t1",
        "state": state,
        "bucket": {"prefect.resource.id": "prefect.flow-run.x"},
        "triggering_event": {"id": "e1", "event": "x", "resource": {}, "related": []},
        "fired_at": "2026-01-01T00:00:00Z",
        "child_firings": [],
        "state_event": {"id": "s1", "event": f"prefect.automation.{state.lower()}"},
        "actions": [{"type": "do-nothing"}],
        "actions_on_trigger": [{"type": "a"}],
        "actions_on_resolve": [{"type": "b"}],
    }


def test_plan_numbers_actions_across_lists_and_picks_their_event() -> None:
    triggered = plan(_record("Triggered"))
    assert [(p.index, p.action["type"], p.event["id"]) for p in triggered] == [  # type: ignore[index]
        (0, "do-nothing", "e1"),
        (1, "a", "s1"),
    ]
    resolved = plan(_record("Resolved"))
    assert [(p.index, p.action["type"], p.event["id"]) for p in resolved] == [  # type: ignore[index]
        (0, "do-nothing", "e1"),
        (1, "b", "s1"),
    ]


def test_inference_takes_the_first_resource_of_the_kind_only() -> None:
    event = {
        "resource": {"prefect.resource.id": "prefect.flow-run.not-a-uuid"},
        "related": [{"prefect.resource.id": f"prefect.flow-run.{DEPLOYMENT}"}],
    }
    assert _id_of_first_resource_of_kind(event, "prefect.flow-run") is None
    event["resource"] = {"prefect.resource.id": "other.thing"}
    assert _id_of_first_resource_of_kind(event, "prefect.flow-run") == DEPLOYMENT


def test_run_deployment_parameters_keep_their_json_types() -> None:
    parameters: dict[str, Any] = {
        "n": "{{ event.payload.n }}",
        "text": "run {{ event.payload.n }}",
        "raw": {"__prefect_kind": "json", "value": '{"a": 1}'},
        "fixed": 3,
    }
    _upgrade_v1(parameters)
    context = template_context(_record(), {"id": "e", "event": "x", "payload": {"n": 7}})
    templates = _templates_in(parameters)
    rendered = dict(zip(templates, render_all(templates, context), strict=True))
    assert _hydrate(parameters, rendered, {}) == {
        "n": 7,
        "text": "run 7",
        "raw": {"a": 1},
        "fixed": 3,
    }


def test_backoff_is_bounded_jittered_and_stops_on_final_errors() -> None:
    policy = RetryPolicy(max_attempts=4, max_seconds=60, backoff=0.001, backoff_max=0.002)
    rng = random.Random(1)  # noqa: S311 - jitter
    assert all(0 <= policy.delay(n, rng) <= 0.002 for n in range(10))
    calls: list[int] = []

    async def flaky() -> None:
        calls.append(1)
        if len(calls) < 3:
            raise Retriable(BUSY)

    outcome = asyncio.run(deliver(flaky, policy))
    assert (outcome.ok, outcome.attempts) == (True, 3)

    async def broken() -> None:
        raise Retriable(BUSY)

    outcome = asyncio.run(deliver(broken, policy))
    assert (outcome.ok, outcome.attempts, outcome.error) == (False, 4, "503")

    async def refused() -> None:
        raise ActionFailed(REFUSED)

    outcome = asyncio.run(deliver(refused, policy))
    assert (outcome.ok, outcome.attempts, outcome.error) == (False, 1, "400")
