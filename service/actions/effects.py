"""What each action type does: one coroutine per type, Prefect 3.9.1's semantics."""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson

from service.actions.delivery import ActionFailed
from service.actions.prefect_client import HttpApi, raise_for_response
from service.actions.render_pool import RenderPool
from service.actions.templates import TemplateFailed, maybe_template, objects_named
from service.models.actions import (
    ActionSpec,
    AutomationCommand,
    CallWebhook,
    ChangeFlowRunState,
    DeploymentCommand,
    DoNothing,
    EmitEvent,
    FlowRunCommand,
    RunDeployment,
    SendNotification,
    WorkPoolCommand,
    WorkQueueCommand,
)

__all__ = ["ActionRun", "Services", "perform"]


@dataclass
class Services:
    """The outside world an action can touch."""

    http: httpx.AsyncClient
    prefect: HttpApi
    tripwire: HttpApi
    emit: Callable[[bytes, bytes], Awaitable[None]]
    templates: RenderPool


@dataclass
class ActionRun:
    """One action of one firing: Prefect's TriggeredAction, from the firing record."""

    record: Mapping[str, Any]
    index: int
    spec: ActionSpec
    event: Mapping[str, Any] | None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def firing_id(self) -> str:
        return str(self.record["id"])

    @property
    def automation_id(self) -> str:
        return str(self.record["automation_id"])

    @property
    def key(self) -> str:
        """(firing id, action index): the unit that takes effect at most once."""
        return f"{self.firing_id}:{self.index}"

    def idempotency_key(self) -> str:
        # Prefect's TriggeredAction.idempotency_key, with the deterministic firing id as
        # the invocation, so a redelivered firing asks for the same flow run.
        return f"automation {self.automation_id}, action {self.index}, invocation {self.firing_id}"

    def prefect_headers(self) -> dict[str, str]:
        name = str(self.record["automation_name"]).encode()
        return {
            "Prefect-Automation-ID": self.automation_id,
            "Prefect-Automation-Name": base64.b64encode(name).decode(),
        }


# -- inference from the triggering event (actions.py: _id_of_first_resource_of_kind) -----


def _involved(event: Mapping[str, Any]) -> list[Mapping[str, str]]:
    return [event.get("resource") or {}, *(event.get("related") or [])]


def _id_from_resource_id(resource_id: str, kind: str) -> str | None:
    found, _, raw = resource_id.rpartition(".")
    if found != kind:
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        return None


def _id_of_first_resource_of_kind(event: Mapping[str, Any] | None, kind: str) -> str | None:
    # Prefect takes the FIRST resource of the kind (resource, then related in order)
    # and gives up if its id is not a UUID; it does not look further.
    if not event:
        return None
    for resource in _involved(event):
        resource_id = str(resource.get("prefect.resource.id", ""))
        if resource_id.rpartition(".")[0] == kind:
            return _id_from_resource_id(resource_id, kind)
    return None


def _target(run: ActionRun, source: str, selected: uuid.UUID | None, kind: str, noun: str) -> str:
    if source == "selected" and selected is not None:  # the model requires the id
        return str(selected)
    if not run.event:
        msg = f"No event to infer the {noun}"
        raise ActionFailed(msg)
    if found := _id_of_first_resource_of_kind(run.event, f"prefect.{kind}"):
        return found
    msg = f"No {noun} could be inferred"
    raise ActionFailed(msg)


def _flow_run(run: ActionRun) -> str:
    # Proactive triggers have no event but may bucket per flow run: labels first.
    labels = run.record.get("bucket") or {}
    resource_id = labels.get("prefect.resource.id")
    if resource_id and (found := _id_from_resource_id(resource_id, "prefect.flow-run")):
        return found
    if found := _id_of_first_resource_of_kind(run.event, "prefect.flow-run"):
        return found
    msg = "No flow run could be inferred"
    raise ActionFailed(msg)


# -- templates ------------------------------------------------------------------------


async def _render(
    run: ActionRun, services: Services, templates: list[str], *, objects: bool = True
) -> dict[str, str]:
    """Each distinct template of the action, rendered in a render process, by its text.

    A template error, one over the CPU, output or memory limits, or one touching an
    unsafe attribute fails the action for good (ActionFailed: dead-lettered, no retry).
    """
    unique = list(dict.fromkeys(templates))
    found = await _objects(run, services, unique) if objects else {}
    try:
        rendered = await services.templates.render(unique, run.record, run.event, found)
    except TemplateFailed as exc:
        run.details["template_error"] = str(exc)
        raise ActionFailed(str(exc)) from None
    return dict(zip(unique, rendered, strict=True))


async def _objects(run: ActionRun, services: Services, templates: list[str]) -> dict[str, Any]:
    """`flow_run`, `deployment`, ... from the Prefect API, when templates name them."""
    wanted = objects_named(templates)
    found: dict[str, Any] = {}
    if not wanted or not run.event or not services.prefect.base_url:
        return found
    for name in sorted(wanted):
        kind = "prefect." + name.replace("_", "-")
        object_id = _id_of_first_resource_of_kind(run.event, kind)
        if object_id is None:
            continue
        found[name] = await services.prefect.read_object(name, object_id)
    return found


# -- run-deployment parameters: Prefect's hydration, v1 templates upgraded -------------


def _upgrade_v1(parameters: dict[str, Any]) -> None:
    for key, value in parameters.items():
        if isinstance(value, dict):
            if "__prefect_kind" not in value:
                _upgrade_v1(value)
        elif isinstance(value, list):
            for i, item in enumerate(value):
                if isinstance(item, dict):
                    _upgrade_v1(item)
                elif isinstance(item, str) and maybe_template(item):
                    value[i] = _wrap_v1(item)
        elif isinstance(value, str) and maybe_template(value):
            parameters[key] = _wrap_v1(value)


def _wrap_v1(template: str) -> dict[str, Any]:
    stripped = template.strip()
    if stripped.startswith("{{") and stripped.endswith("}}") and stripped.count("{{") == 1:
        inner = stripped[2:-2].strip()
        return {
            "__prefect_kind": "json",
            "value": {"__prefect_kind": "jinja", "template": "{{ " + inner + " | tojson }}"},
        }
    return {"__prefect_kind": "jinja", "template": template}


_REMOVE = object()


def _hydrate(value: Any, rendered: Mapping[str, str], variables: dict[str, Any]) -> Any:
    if isinstance(value, dict) and "__prefect_kind" in value:
        kind = value["__prefect_kind"]
        if kind == "none":
            if "value" not in value:
                msg = "Missing 'value' key in __prefect object"
                raise ActionFailed(msg)
            return _hydrate(value["value"], rendered, variables)
        if kind == "json":
            if "value" not in value:
                return _REMOVE
            inner = value["value"]
            text = _hydrate(inner, rendered, variables) if isinstance(inner, dict) else inner
            if not isinstance(text, str):
                return text
            try:
                return json.loads(text)
            except ValueError as exc:
                msg = f"Unable to create flow run from deployment: invalid JSON: {exc}"
                raise ActionFailed(msg) from None
        if kind == "jinja":
            if "template" not in value:
                msg_0 = "Missing 'template' key in __prefect object"
                raise ActionFailed(msg_0)
            return rendered[str(value["template"])]
        if kind == "workspace_variable":
            name = value.get("variable_name")
            if name not in variables:
                msg = f"Variable '{name}' not found in workspace."
                raise ActionFailed(msg)
            return variables[name]
        return value.get("value")
    if isinstance(value, dict):
        out = {k: _hydrate(v, rendered, variables) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not _REMOVE}
    if isinstance(value, list):
        items = [_hydrate(v, rendered, variables) for v in value]
        return [v for v in items if v is not _REMOVE]
    return value


def _variable_names(value: Any) -> list[str]:
    if isinstance(value, dict):
        if value.get("__prefect_kind") == "workspace_variable":
            return [str(value.get("variable_name"))]
        return [n for v in value.values() for n in _variable_names(v)]
    if isinstance(value, list):
        return [n for v in value for n in _variable_names(v)]
    return []


def _templates_in(value: Any) -> list[str]:
    if isinstance(value, dict):
        if value.get("__prefect_kind") == "jinja":
            return [str(value.get("template", ""))]
        return [t for v in value.values() for t in _templates_in(v)]
    if isinstance(value, list):
        return [t for v in value for t in _templates_in(v)]
    return []


async def _parameters(run: ActionRun, spec: RunDeployment, services: Services) -> dict[str, Any]:
    parameters = copy.deepcopy(spec.parameters) or {}
    _upgrade_v1(parameters)
    rendered = await _render(run, services, _templates_in(parameters))
    names = _variable_names(parameters)
    variables = await services.prefect.read_variables(names) if names else {}
    hydrated: dict[str, Any] = _hydrate(parameters, rendered, variables)
    return hydrated


# -- the actions ----------------------------------------------------------------------


async def _do_nothing(run: ActionRun, spec: DoNothing, services: Services) -> None:
    return None


async def _run_deployment(run: ActionRun, spec: RunDeployment, services: Services) -> None:
    deployment_id = _target(run, spec.source, spec.deployment_id, "deployment", "deployment")
    run.details["deployment_id"] = deployment_id
    scheduled = datetime.now(UTC) + spec.schedule_after
    body = {
        "state": {
            "type": "SCHEDULED",
            "name": "Scheduled",
            "message": None,
            "state_details": {"scheduled_time": scheduled.isoformat()},
        },
        "parameters": await _parameters(run, spec, services),
        "idempotency_key": run.idempotency_key(),
        "job_variables": spec.job_variables,
    }
    response = await services.prefect.create_flow_run(deployment_id, body, run.prefect_headers())
    _answered(run, response, spec.type)
    flow_run = response.json()
    run.details["flow_run_id"] = flow_run.get("id")
    run.details["flow_run_name"] = flow_run.get("name")


async def _deployment_command(run: ActionRun, spec: DeploymentCommand, services: Services) -> None:
    deployment_id = _target(run, spec.source, spec.deployment_id, "deployment", "deployment")
    run.details["deployment_id"] = deployment_id
    verb = "pause_deployment" if spec.type == "pause-deployment" else "resume_deployment"
    response = await services.prefect.request(
        "POST", f"/deployments/{deployment_id}/{verb}", headers=run.prefect_headers()
    )
    _answered(run, response, spec.type)


async def _set_state(
    run: ActionRun, services: Services, what: str, state: dict[str, Any], force: bool = False
) -> None:
    flow_run_id = _flow_run(run)
    run.details["flow_run_id"] = flow_run_id
    response = await services.prefect.set_flow_run_state(
        flow_run_id, state, force, run.prefect_headers()
    )
    _answered(run, response, what)
    _accepted(response, "Failed to set state")


def _answered(run: ActionRun, response: httpx.Response, what: str) -> None:
    """Record the target's status code with the run, then fail on an error answer."""
    run.details["status_code"] = response.status_code
    raise_for_response(response, what)


def _accepted(response: httpx.Response, prefix: str) -> None:
    try:
        details = response.json().get("details") or {}
    except (ValueError, AttributeError):
        details = {}
    if details.get("type") != "accept_details":
        msg = f"{prefix}: {details.get('reason')}"
        raise ActionFailed(msg)


async def _change_state(run: ActionRun, spec: ChangeFlowRunState, services: Services) -> None:
    message = spec.message or f"State changed by Automation {run.automation_id}"
    state = {"type": spec.state, "name": spec.name, "message": message}
    await _set_state(run, services, spec.type, state, force=spec.force)


async def _flow_run_command(run: ActionRun, spec: FlowRunCommand, services: Services) -> None:
    automation = run.automation_id
    state: dict[str, Any]
    if spec.type == "cancel-flow-run":
        state = {"type": "CANCELLING", "message": f"Cancelled by Automation {automation}"}
        await _set_state(run, services, spec.type, state)
        return
    if spec.type == "suspend-flow-run":
        timeout = datetime.now(UTC) + timedelta(seconds=3600)
        state = {
            "type": "PAUSED",
            "name": "Suspended",
            "message": f"Suspended by Automation {automation}",
            "state_details": {"pause_timeout": timeout.isoformat(), "pause_reschedule": True},
        }
        await _set_state(run, services, spec.type, state)
        return
    flow_run_id = _flow_run(run)
    run.details["flow_run_id"] = flow_run_id
    headers = run.prefect_headers()
    if spec.type == "resume-flow-run":
        response = await services.prefect.request(
            "POST", f"/flow_runs/{flow_run_id}/resume", headers=headers
        )
        _answered(run, response, spec.type)
        _accepted(response, "Failed to resume flow run")
        return
    response = await services.prefect.request(
        "DELETE", f"/flow_runs/{flow_run_id}", headers=headers
    )
    _answered(run, response, spec.type)


def _webhook_headers(run: ActionRun) -> dict[str, str]:
    # The receiver can drop repeats: a crash between the call and recording it, or a
    # retry after a lost answer, sends the same key again.
    return {
        "Idempotency-Key": run.key,
        "X-Tripwire-Firing-Id": run.firing_id,
        "X-Tripwire-Automation-Id": run.automation_id,
        "X-Tripwire-Action-Index": str(run.index),
    }


async def _endpoint(
    run: ActionRun, spec: CallWebhook | SendNotification, services: Services
) -> tuple[str, str, dict[str, str], str]:
    """(url, method, headers, block type slug) of the action's webhook or block."""
    if spec.url is not None:
        return spec.url, spec.method, dict(spec.headers), "url"
    document = await services.prefect.read_block_document(
        str(spec.block_document_id), run.prefect_headers()
    )
    slug = str((document.get("block_type") or {}).get("slug") or "")
    data = document.get("data") or {}
    url = data.get("url")
    if not isinstance(url, str) or not url:
        msg = f"The block {spec.block_document_id} has no url (block type {slug!r})"
        raise ActionFailed(msg)
    method = str(data.get("method") or "POST")
    headers = {str(k): str(v) for k, v in (data.get("headers") or {}).items()}
    return url, method, headers, slug


async def _send(
    run: ActionRun, services: Services, url: str, method: str, headers: dict[str, str], body: str
) -> None:
    response = await services.http.request(
        method, url, content=body.encode(), headers={**headers, **_webhook_headers(run)}
    )
    run.details["response_body"] = response.text[:1000]
    _answered(run, response, run.spec.type)


async def _call_webhook(run: ActionRun, spec: CallWebhook, services: Services) -> None:
    url, method, headers, slug = await _endpoint(run, spec, services)
    if slug not in ("url", "webhook"):
        msg = "The referenced block was not a webhook block"
        raise ActionFailed(msg)
    payload = (await _render(run, services, [spec.payload]))[spec.payload]
    await _send(run, services, url, method, headers, payload)


async def _send_notification(run: ActionRun, spec: SendNotification, services: Services) -> None:
    url, method, headers, slug = await _endpoint(run, spec, services)
    rendered = await _render(run, services, [spec.subject, spec.body])
    subject, body = rendered[spec.subject], rendered[spec.body]
    if slug == "slack-webhook":
        document = {"text": f"*{subject}*\n{body}"}
    elif slug in ("url", "webhook"):
        document = {"subject": subject, "body": body}
    else:
        msg = f"notification block type {slug!r} is not supported by Tripwire"
        raise ActionFailed(msg)
    headers = {"Content-Type": "application/json", **headers}
    await _send(run, services, url, method, headers, orjson.dumps(document).decode())


async def _work_pool_command(run: ActionRun, spec: WorkPoolCommand, services: Services) -> None:
    pool_id = _target(run, spec.source, spec.work_pool_id, "work-pool", "work pool")
    pool = await services.prefect.read_work_pool(pool_id, run.prefect_headers())
    run.details["work_pool_id"] = pool_id
    response = await services.prefect.patch_work_pool(
        str(pool["name"]), {"is_paused": spec.type == "pause-work-pool"}, run.prefect_headers()
    )
    _answered(run, response, spec.type)


async def _work_queue_command(run: ActionRun, spec: WorkQueueCommand, services: Services) -> None:
    queue_id = _target(run, spec.source, spec.work_queue_id, "work-queue", "work queue")
    run.details["work_queue_id"] = queue_id
    response = await services.prefect.request(
        "PATCH",
        f"/work_queues/{queue_id}",
        json={"is_paused": spec.type == "pause-work-queue"},
        headers=run.prefect_headers(),
    )
    _answered(run, response, spec.type)


async def _automation_command(run: ActionRun, spec: AutomationCommand, services: Services) -> None:
    automation_id = _target(run, spec.source, spec.automation_id, "automation", "automation")
    run.details["automation_id"] = automation_id
    response = await services.tripwire.request(
        "PATCH",
        f"/automations/{automation_id}",
        json={"enabled": spec.type == "resume-automation"},
        headers=run.prefect_headers(),
    )
    _answered(run, response, spec.type)


def _strings_in(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings_in(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings_in(v)]
    return []


def _render_tree(value: Any, rendered: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return rendered[value]
    if isinstance(value, dict):
        return {k: _render_tree(v, rendered) for k, v in value.items()}
    if isinstance(value, list):
        return [_render_tree(v, rendered) for v in value]
    return value


async def _emit_event(run: ActionRun, spec: EmitEvent, services: Services) -> None:
    tree = [spec.resource, spec.related, spec.payload]
    # emit-event never read Prefect objects for its templates; it still does not.
    rendered = await _render(run, services, [spec.event, *_strings_in(tree)], objects=False)
    event = {
        # Derived from (firing, action): a redelivered emit carries the same event id,
        # which Tripwire's router drops as a repeat.
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"tripwire:emit:{run.key}")),
        "occurred": datetime.now(UTC).isoformat(),
        "event": rendered[spec.event],
        "resource": _render_tree(spec.resource, rendered),
        "related": _render_tree(spec.related, rendered),
        "payload": _render_tree(spec.payload, rendered),
    }
    run.details["emitted_event"] = event["id"]
    key = str(event["resource"].get("prefect.resource.id", "")).encode()
    await services.emit(key, orjson.dumps(event))


_PERFORMERS: dict[type[Any], Callable[[ActionRun, Any, Services], Awaitable[None]]] = {
    DoNothing: _do_nothing,
    RunDeployment: _run_deployment,
    DeploymentCommand: _deployment_command,
    ChangeFlowRunState: _change_state,
    FlowRunCommand: _flow_run_command,
    CallWebhook: _call_webhook,
    SendNotification: _send_notification,
    WorkPoolCommand: _work_pool_command,
    WorkQueueCommand: _work_queue_command,
    AutomationCommand: _automation_command,
    EmitEvent: _emit_event,
}


async def perform(run: ActionRun, services: Services) -> None:
    """Do the action once; raise ActionFailed (final) or Retriable/transport errors."""
    await _PERFORMERS[type(run.spec)](run, run.spec, services)
    await asyncio.sleep(0)
