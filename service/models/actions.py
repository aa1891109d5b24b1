"""Per-type fields of Prefect's actions, validated as Prefect 3.9.1's server does (docs/actions.md)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any, Literal

import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.models.templates import validate_template

__all__ = [
    "ACTION_MODEL_TYPES",
    "STATE_TYPES",
    "URL_BLOCK_NAMESPACE",
    "URL_TARGET_TYPES",
    "ActionSpec",
    "AutomationCommand",
    "CallWebhook",
    "ChangeFlowRunState",
    "DeploymentCommand",
    "DoNothing",
    "EmitEvent",
    "FlowRunCommand",
    "RunDeployment",
    "SendNotification",
    "WorkPoolCommand",
    "WorkQueueCommand",
    "action_spec",
    "url_block_id",
    "without_served_block_id",
]

STATE_TYPES = (
    "SCHEDULED",
    "PENDING",
    "RUNNING",
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "CRASHED",
    "PAUSED",
    "CANCELLING",
)


class _Spec(BaseModel):
    # Unknown fields are ignored, as Prefect's server models do.
    model_config = ConfigDict(extra="ignore", frozen=True)


def _selected_needs_id(source: str, value: uuid.UUID | None, field: str) -> None:
    # Prefect's selected_*_requires_id validators, message for message.
    if (source == "selected") != bool(value):
        msg = f"{field} is " + ("not allowed" if value else "required")
        raise ValueError(msg)


class DoNothing(_Spec):
    """`do-nothing`: logs and succeeds."""

    type: Literal["do-nothing"] = "do-nothing"


class DeploymentCommand(_Spec):
    """`pause-deployment`, `resume-deployment`: a selected or inferred deployment."""

    type: Literal["pause-deployment", "resume-deployment"]
    source: Literal["selected", "inferred"] = "selected"
    deployment_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _selected_requires_id(self) -> DeploymentCommand:
        _selected_needs_id(self.source, self.deployment_id, "deployment_id")
        return self


class RunDeployment(_Spec):
    """`run-deployment`: create a flow run of a deployment, parameters templated."""

    type: Literal["run-deployment"] = "run-deployment"
    source: Literal["selected", "inferred"] = "selected"
    deployment_id: uuid.UUID | None = None
    parameters: dict[str, Any] | None = None
    job_variables: dict[str, Any] | None = None
    schedule_after: timedelta = timedelta(0)

    @field_validator("schedule_after")
    @classmethod
    def _non_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            msg = "schedule_after must be at least 0 seconds"
            raise ValueError(msg)
        return value

    @field_validator("parameters")
    @classmethod
    def _parameter_templates(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for path, template in _string_leaves(value or {}, "parameters"):
            validate_template(template, path)
        return value

    @model_validator(mode="after")
    def _selected_requires_id(self) -> RunDeployment:
        _selected_needs_id(self.source, self.deployment_id, "deployment_id")
        return self


class FlowRunCommand(_Spec):
    """Flow-run actions without fields: the run comes from the firing (inferred)."""

    type: Literal["cancel-flow-run", "suspend-flow-run", "resume-flow-run", "delete-flow-run"]


class ChangeFlowRunState(_Spec):
    """`change-flow-run-state`: set the inferred flow run's state."""

    type: Literal["change-flow-run-state"] = "change-flow-run-state"
    name: str | None = None
    state: Literal[
        "SCHEDULED",
        "PENDING",
        "RUNNING",
        "COMPLETED",
        "FAILED",
        "CANCELLED",
        "CRASHED",
        "PAUSED",
        "CANCELLING",
    ]
    message: str | None = None
    force: bool = False


def _payload_string(value: Any) -> Any:
    # Prefect's ensure_payload_is_a_string: older clients send an object.
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode()


# The namespace of the block document ids a URL target is served under (docs/api.md):
# Prefect's client models require `block_document_id` on webhooks and notifications.
URL_BLOCK_NAMESPACE = uuid.UUID("6f1d1f0e-7a52-5c2b-9f3e-2a7d0c1b9e11")
URL_TARGET_TYPES = frozenset({"call-webhook", "send-notification"})


def url_block_id(
    url: str, method: str = "POST", headers: dict[str, str] | None = None
) -> uuid.UUID:
    """The stable block document id Tripwire serves for a URL target (url, method, headers)."""
    target = {"url": url, "method": method, "headers": headers or {}}
    return uuid.uuid5(
        URL_BLOCK_NAMESPACE, orjson.dumps(target, option=orjson.OPT_SORT_KEYS).decode()
    )


def without_served_block_id(data: dict[str, Any]) -> dict[str, Any]:
    """An action with `url` and the `block_document_id` served for that very target: the URL.

    What `tripwire automations get` printed can be applied back unchanged; a different
    block id next to a url is still refused (exactly one target).
    """
    if data.get("type") not in URL_TARGET_TYPES or not isinstance(data.get("url"), str):
        return data
    served = data.get("block_document_id")
    headers = data.get("headers")
    if served is None or not isinstance(headers, dict | None):
        return data
    if headers and not all(isinstance(v, str) for v in headers.values()):
        return data  # refused by the action's own model, with its message
    method = data.get("method", "POST")
    if not isinstance(method, str) or str(served) != str(
        url_block_id(data["url"], method, headers)
    ):
        return data
    return {key: value for key, value in data.items() if key != "block_document_id"}


class _HttpTarget(_Spec):
    """A Prefect block on the configured Prefect server, or (Tripwire) a plain URL."""

    block_document_id: uuid.UUID | None = None
    url: str | None = Field(None, description="Tripwire: call this URL instead of a block")
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            msg = "url must start with http:// or https://"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _one_target(self) -> _HttpTarget:
        if (self.block_document_id is None) == (self.url is None):
            msg = "exactly one of block_document_id or url is required"
            raise ValueError(msg)
        return self


class CallWebhook(_HttpTarget):
    """`call-webhook`: send the rendered `payload` to a webhook."""

    type: Literal["call-webhook"] = "call-webhook"
    payload: str = ""

    @field_validator("payload", mode="before")
    @classmethod
    def _as_string(cls, value: Any) -> Any:
        return _payload_string(value)

    @field_validator("payload")
    @classmethod
    def _template(cls, value: str) -> str:
        return validate_template(value, "payload") if value else value


class SendNotification(_HttpTarget):
    """`send-notification`: send the rendered `subject` and `body` to a notifier."""

    type: Literal["send-notification"] = "send-notification"
    subject: str = "Prefect automated notification"
    body: str

    @field_validator("subject", "body")
    @classmethod
    def _template(cls, value: str, info: ValidationInfo) -> str:
        return validate_template(value, str(info.field_name))


class WorkPoolCommand(_Spec):
    """`pause-work-pool`, `resume-work-pool`."""

    type: Literal["pause-work-pool", "resume-work-pool"]
    source: Literal["selected", "inferred"] = "selected"
    work_pool_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _selected_requires_id(self) -> WorkPoolCommand:
        _selected_needs_id(self.source, self.work_pool_id, "work_pool_id")
        return self


class WorkQueueCommand(_Spec):
    """`pause-work-queue`, `resume-work-queue`."""

    type: Literal["pause-work-queue", "resume-work-queue"]
    source: Literal["selected", "inferred"] = "selected"
    work_queue_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _selected_requires_id(self) -> WorkQueueCommand:
        _selected_needs_id(self.source, self.work_queue_id, "work_queue_id")
        return self


class AutomationCommand(_Spec):
    """`pause-automation`, `resume-automation`: against Tripwire's own API."""

    type: Literal["pause-automation", "resume-automation"]
    source: Literal["selected", "inferred"] = "selected"
    automation_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _selected_requires_id(self) -> AutomationCommand:
        _selected_needs_id(self.source, self.automation_id, "automation_id")
        return self


class EmitEvent(_Spec):
    """`emit-event` (Tripwire): publish an event, every string templated, to the events topic."""

    type: Literal["emit-event"] = "emit-event"
    event: str = Field(min_length=1)
    resource: dict[str, str]
    related: list[dict[str, str]] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)

    @field_validator("resource")
    @classmethod
    def _resource_id(cls, value: dict[str, str]) -> dict[str, str]:
        if not value.get("prefect.resource.id"):
            msg = "resource needs a non-empty prefect.resource.id"
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _templates(self) -> EmitEvent:
        validate_template(self.event, "event")
        doc = {"resource": self.resource, "related": self.related, "payload": self.payload}
        for path, template in _string_leaves(doc, ""):
            validate_template(template, path)
        return self


def _string_leaves(value: Any, path: str) -> list[tuple[str, str]]:
    if isinstance(value, str):
        return [(path, value)]
    if isinstance(value, dict):
        return [
            leaf
            for key, item in value.items()
            for leaf in _string_leaves(item, f"{path}.{key}" if path else str(key))
        ]
    if isinstance(value, list):
        return [
            leaf for i, item in enumerate(value) for leaf in _string_leaves(item, f"{path}[{i}]")
        ]
    return []


ActionSpec = (
    DoNothing
    | RunDeployment
    | DeploymentCommand
    | FlowRunCommand
    | ChangeFlowRunState
    | CallWebhook
    | SendNotification
    | WorkPoolCommand
    | WorkQueueCommand
    | AutomationCommand
    | EmitEvent
)

_MODELS: dict[str, type[_Spec]] = {
    "do-nothing": DoNothing,
    "run-deployment": RunDeployment,
    "pause-deployment": DeploymentCommand,
    "resume-deployment": DeploymentCommand,
    "cancel-flow-run": FlowRunCommand,
    "suspend-flow-run": FlowRunCommand,
    "resume-flow-run": FlowRunCommand,
    "delete-flow-run": FlowRunCommand,
    "change-flow-run-state": ChangeFlowRunState,
    "call-webhook": CallWebhook,
    "send-notification": SendNotification,
    "pause-work-pool": WorkPoolCommand,
    "resume-work-pool": WorkPoolCommand,
    "pause-work-queue": WorkQueueCommand,
    "resume-work-queue": WorkQueueCommand,
    "pause-automation": AutomationCommand,
    "resume-automation": AutomationCommand,
    "emit-event": EmitEvent,
}

ACTION_MODEL_TYPES = frozenset(_MODELS)


def action_spec(data: dict[str, Any]) -> ActionSpec:
    """The typed action of one action object; raises pydantic's ValidationError.

    Error locations are relative to the action (`deployment_id`), so a caller
    validating inside a larger document gets `actions[0].deployment_id`.
    """
    model = _MODELS.get(str(data.get("type")))
    if model is None:
        msg = f"unknown action type {data.get('type')!r}"
        raise ValueError(msg)
    return model.model_validate(data)  # type: ignore[return-value]
