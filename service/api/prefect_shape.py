"""Tripwire's extensions in the shapes Prefect's client models accept, and back again."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from pydantic import TypeAdapter

from service.api.catalog import Stored
from service.models.actions import URL_BLOCK_NAMESPACE, URL_TARGET_TYPES, url_block_id
from service.models.automations import (
    METRIC_WINDOWS,
    PREFECT_MIN_METRIC_WINDOW,
    Action,
    Automation,
    CompoundTrigger,
    MetricTrigger,
    SequenceTrigger,
)

__all__ = [
    "UrlTarget",
    "block_document",
    "restored",
    "served",
    "url_targets",
]

# Ids of the one block type and schema the served documents name. Prefect's client
# finds the block class by the type's slug; the checksum is Prefect 3.9.1's own for its
# Webhook block (`Webhook._calculate_schema_checksum()`), so nothing mistakes the schema.
WEBHOOK_BLOCK_TYPE_ID = uuid.uuid5(URL_BLOCK_NAMESPACE, "block-type:webhook")
WEBHOOK_BLOCK_SCHEMA_ID = uuid.uuid5(URL_BLOCK_NAMESPACE, "block-schema:webhook")
WEBHOOK_SCHEMA_CHECKSUM = "sha256:58bb03f0d84592252ad568ed9a8c899792ae5d0ad2dd4a2428e99674f9050cf1"
# What Prefect's server shows for a secret field read without include_secrets.
_OBFUSCATED = "********"

_DURATION: TypeAdapter[timedelta] = TypeAdapter(timedelta)
_A = TypeVar("_A", bound=Automation)


@dataclass(frozen=True, slots=True)
class UrlTarget:
    """A `url` webhook or notification target of some stored automation."""

    url: str
    method: str
    headers: dict[str, str]
    created: datetime
    updated: datetime


def _url_target(action: dict[str, Any]) -> tuple[str, str, dict[str, str]] | None:
    if action.get("type") not in URL_TARGET_TYPES or not isinstance(action.get("url"), str):
        return None
    return action["url"], action.get("method") or "POST", action.get("headers") or {}


def _action_dicts(data: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
        yield from (a for a in data.get(key) or [] if isinstance(a, dict))


def _trigger_dicts(trigger: dict[str, Any]) -> Iterator[dict[str, Any]]:
    stack = [trigger]  # iterative: nesting is bounded, but no walk here needs recursion
    while stack:
        node = stack.pop()
        yield node
        stack.extend(t for t in node.get("triggers") or [] if isinstance(t, dict))


def served(stored: Stored) -> dict[str, Any]:
    """The automation as the API answers reads: Prefect's `Automation` shape.

    A URL target also gets the `block_document_id` its block document is served under,
    and a metric window under Prefect's 300 s minimum is served as 300 s with the real
    windows in `metric.tripwire`. Writing either shape back stores the original.
    """
    data = stored.to_json()
    for action in _action_dicts(data):
        target = _url_target(action)
        if target is not None:
            action["block_document_id"] = str(url_block_id(*target))
    for trigger in _trigger_dicts(data["trigger"]):
        metric = trigger.get("metric")
        if trigger.get("type") == "metric" and isinstance(metric, dict):
            windows = {key: _DURATION.validate_python(metric[key]) for key in METRIC_WINDOWS}
            if min(windows.values()) < PREFECT_MIN_METRIC_WINDOW:
                metric["tripwire"] = {key: metric[key] for key in METRIC_WINDOWS}
                for key, value in windows.items():
                    shown = max(value, PREFECT_MIN_METRIC_WINDOW)
                    metric[key] = _DURATION.dump_python(shown, mode="json")
    return data


def url_targets(automations: Iterable[Stored]) -> dict[uuid.UUID, UrlTarget]:
    """Every URL target the stored automations hold, by the block id it is served under."""
    targets: dict[uuid.UUID, UrlTarget] = {}
    for stored in automations:
        automation = stored.automation
        for model in [
            *automation.actions,
            *automation.actions_on_trigger,
            *automation.actions_on_resolve,
        ]:
            target = _url_target({"type": model.type, **(model.model_extra or {})})
            if target is None:
                continue
            block_id = url_block_id(*target)
            known = targets.get(block_id)
            created = min(stored.created, known.created) if known else stored.created
            updated = max(stored.updated, known.updated) if known else stored.updated
            targets[block_id] = UrlTarget(*target, created=created, updated=updated)
    return targets


def block_document(block_id: uuid.UUID, target: UrlTarget, include_secrets: bool) -> dict[str, Any]:
    """Prefect's `BlockDocument` of a `webhook` block for one URL target (read-only)."""
    block_type = {
        "id": str(WEBHOOK_BLOCK_TYPE_ID),
        "created": None,
        "updated": None,
        "name": "Webhook",
        "slug": "webhook",
        "logo_url": None,
        "documentation_url": None,
        "description": "A URL target of a Tripwire automation, served read-only.",
        "code_example": None,
        "is_protected": True,
    }
    url, headers = target.url, dict(target.headers)
    if not include_secrets:  # the Webhook block's secret fields: url and every header
        url, headers = _OBFUSCATED, dict.fromkeys(headers, _OBFUSCATED)
    return {
        "id": str(block_id),
        "created": target.created.isoformat(),
        "updated": target.updated.isoformat(),
        "name": f"tripwire-url-{block_id.hex[:12]}",
        "data": {
            "method": target.method,
            "url": url,
            "headers": headers,
            "allow_private_urls": True,
            "verify": True,
        },
        "block_schema_id": str(WEBHOOK_BLOCK_SCHEMA_ID),
        "block_schema": {
            "id": str(WEBHOOK_BLOCK_SCHEMA_ID),
            "created": None,
            "updated": None,
            "checksum": WEBHOOK_SCHEMA_CHECKSUM,
            "fields": {"title": "Webhook", "block_type_slug": "webhook", "type": "object"},
            "block_type_id": str(WEBHOOK_BLOCK_TYPE_ID),
            "block_type": block_type,
            "capabilities": [],
            "version": "3.9.1",
        },
        "block_type_id": str(WEBHOOK_BLOCK_TYPE_ID),
        "block_type_name": "Webhook",
        "block_type": block_type,
        "block_document_references": {},
        "is_anonymous": False,
    }


def restored(automation: _A, existing: Stored | None, targets: dict[uuid.UUID, UrlTarget]) -> _A:
    """A written automation with what `served` changed put back.

    A `block_document_id` Tripwire serves for a URL target becomes that URL target
    again (Prefect's client sends only the id). A metric query equal to what was served
    for the stored version at the same trigger path gets the stored windows back:
    writing back what was read changes nothing.
    """
    update: dict[str, Any] = {}
    for key in ("actions", "actions_on_trigger", "actions_on_resolve"):
        actions: list[Action] = getattr(automation, key)
        before: list[Action] = getattr(existing.automation, key) if existing else []
        update[key] = [
            _url_action(action, targets, before[i] if i < len(before) else None)
            for i, action in enumerate(actions)
        ]
    if existing is not None:
        update["trigger"] = _restored_trigger(automation.trigger, existing.automation.trigger)
    return automation.model_copy(update=update)


def _url_action(
    action: Action, targets: dict[uuid.UUID, UrlTarget], before: Action | None
) -> Action:
    extra = action.model_extra or {}
    if action.type not in URL_TARGET_TYPES or extra.get("url") is not None:
        return action
    try:
        block_id = uuid.UUID(str(extra.get("block_document_id")))
    except ValueError:
        return action
    target = targets.get(block_id)
    if target is None:
        return action  # a block on the Prefect server (TRIPWIRE_PREFECT_API_URL)
    # The stored action at the same place, when it is this target, says it exactly as
    # it was written (a default `method` given or not), so a round trip changes nothing.
    old = {"type": before.type, **(before.model_extra or {})} if before else {}
    if before is not None and _url_target(old) == (target.url, target.method, target.headers):
        fields = {k: old[k] for k in ("url", "method", "headers") if k in old}
    else:
        fields = {"url": target.url, "method": target.method, "headers": dict(target.headers)}
        fields = {k: v for k, v in fields.items() if v not in ("POST", {})}
    data = action.model_dump(exclude={"block_document_id"})
    return Action.model_validate({**data, **fields})


def _restored_trigger(trigger: Any, old: Any) -> Any:
    if isinstance(trigger, MetricTrigger) and isinstance(old, MetricTrigger):
        shown = old.metric.model_copy(
            update={
                key: max(getattr(old.metric, key), PREFECT_MIN_METRIC_WINDOW)
                for key in METRIC_WINDOWS
            }
        )
        if shown != old.metric and trigger.metric == shown:
            return trigger.model_copy(update={"metric": old.metric})
        return trigger
    composite = CompoundTrigger | SequenceTrigger
    if isinstance(trigger, composite) and type(trigger) is type(old):
        children = [
            _restored_trigger(child, old.triggers[i]) if i < len(old.triggers) else child
            for i, child in enumerate(trigger.triggers)
        ]
        return trigger.model_copy(update={"triggers": children})
    return trigger
