"""Prefect 3.9.1's `EventFilter` for `POST /api/events/filter`, applied to stored events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["PAGE_SIZE", "EventFilter", "EventOrder", "EventsQuery", "automation_ids", "includes"]

# Prefect's INTERACTIVE_PAGE_SIZE: the route's largest (and default) page.
PAGE_SIZE = 50

Labels = dict[str, str | list[str]]


class _Strict(BaseModel):
    # Prefect's filters forbid unknown fields: a misspelt criterion is a 422, not ignored.
    model_config = ConfigDict(extra="forbid")


def _start_of_day_180_days_ago() -> datetime:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=180)


class EventOccurredFilter(_Strict):
    since: datetime = Field(default_factory=_start_of_day_180_days_ago)
    until: datetime = Field(default_factory=lambda: datetime.now(UTC))

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        # Prefect reads a time without an offset as UTC.
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class EventNameFilter(_Strict):
    prefix: list[str] | None = None
    exclude_prefix: list[str] | None = None
    name: list[str] | None = None
    exclude_name: list[str] | None = None


class EventResourceFilter(_Strict):
    id: list[str] | None = None
    id_prefix: list[str] | None = None
    labels: Labels | None = None
    distinct: bool = False


class EventRelatedFilter(_Strict):
    id: list[str] | None = None
    role: list[str] | None = None
    resources_in_roles: list[tuple[str, str]] | None = None
    labels: Labels | None = None


class EventAnyResourceFilter(_Strict):
    id: list[str] | None = None
    id_prefix: list[str] | None = None
    labels: Labels | None = None


class EventIDFilter(_Strict):
    id: list[str] | None = None


class EventTextFilter(_Strict):
    query: str = Field(max_length=200)


class EventOrder(StrEnum):
    ASC = "ASC"
    DESC = "DESC"


class EventFilter(_Strict):
    occurred: EventOccurredFilter = Field(default_factory=EventOccurredFilter)
    event: EventNameFilter | None = None
    resource: EventResourceFilter | None = None
    related: EventRelatedFilter | list[EventRelatedFilter] | None = None
    any_resource: EventAnyResourceFilter | list[EventAnyResourceFilter] | None = None
    id: EventIDFilter = Field(default_factory=EventIDFilter)
    text: EventTextFilter | None = None
    order: EventOrder = EventOrder.DESC


class EventsQuery(_Strict):
    """The body of `POST /api/events/filter`."""

    filter: EventFilter | None = None
    limit: int = Field(PAGE_SIZE, ge=0, le=PAGE_SIZE)


def _label_matches(value: str | None, wanted: str | list[str]) -> bool:
    # Prefect's ResourceSpecification: a trailing `*` is a prefix, `!` excludes.
    patterns = [wanted] if isinstance(wanted, str) else wanted
    positive = [p for p in patterns if not p.startswith("!")]
    negative = [p[1:] for p in patterns if p.startswith("!")]

    def hit(pattern: str) -> bool:
        if value is None:
            return False
        if pattern.endswith("*"):
            return value.startswith(pattern[:-1])
        return value == pattern

    if any(hit(p) for p in negative):
        return False
    return not positive or any(hit(p) for p in positive)


def _labels_match(resource: dict[str, Any], labels: Labels) -> bool:
    return all(_label_matches(resource.get(k), v) for k, v in labels.items())


def _related_includes(spec: EventRelatedFilter, related: list[dict[str, Any]]) -> bool:
    # Every criterion met by one related resource, as Prefect's query does.
    for resource in related:
        rid, role = resource.get("prefect.resource.id"), resource.get("prefect.resource.role")
        if spec.id and rid not in spec.id:
            continue
        if spec.role and role not in spec.role:
            continue
        if spec.resources_in_roles and (rid, role) not in spec.resources_in_roles:
            continue
        if spec.labels and not _labels_match(resource, spec.labels):
            continue
        return True
    return not (spec.id or spec.role or spec.resources_in_roles or spec.labels)


def _any_includes(spec: EventAnyResourceFilter, resources: list[dict[str, Any]]) -> bool:
    for resource in resources:
        rid = str(resource.get("prefect.resource.id", ""))
        if spec.id and rid not in spec.id:
            continue
        if spec.id_prefix and not any(rid.startswith(p) for p in spec.id_prefix):
            continue
        if spec.labels and not _labels_match(resource, spec.labels):
            continue
        return True
    return False


def includes(spec: EventFilter, event: dict[str, Any], occurred: datetime, text: bytes) -> bool:
    """Whether one stored event passes the filter (`text`: its JSON, for `text.query`)."""
    if not spec.occurred.since <= occurred <= spec.occurred.until:
        return False
    name = str(event.get("event", ""))
    names = spec.event
    if names is not None:
        if names.prefix and not any(name.startswith(p) for p in names.prefix):
            return False
        if names.exclude_prefix and any(name.startswith(p) for p in names.exclude_prefix):
            return False
        if names.name and name not in names.name:
            return False
        if names.exclude_name and name in names.exclude_name:
            return False
    resource: dict[str, Any] = event.get("resource") or {}
    rid = str(resource.get("prefect.resource.id", ""))
    if spec.resource is not None:
        if spec.resource.id and rid not in spec.resource.id:
            return False
        if spec.resource.id_prefix and not any(rid.startswith(p) for p in spec.resource.id_prefix):
            return False
        if spec.resource.labels and not _labels_match(resource, spec.resource.labels):
            return False
    related: list[dict[str, Any]] = event.get("related") or []
    for related_spec in _as_list(spec.related):
        if not _related_includes(related_spec, related):
            return False
    for any_spec in _as_list(spec.any_resource):
        if not _any_includes(any_spec, [resource, *related]):
            return False
    if spec.id.id and str(event.get("id")) not in spec.id.id:
        return False
    return spec.text is None or _text_includes(spec.text.query, text)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _text_includes(query: str, text: bytes) -> bool:
    # Prefect's text search, simplified: every term (without `-`) appears, no `-term` does.
    haystack = text.decode(errors="replace").lower()
    for term in query.lower().split():
        if term.startswith("-"):
            if term[1:] and term[1:] in haystack:
                return False
        elif term.lstrip("+").strip('"') not in haystack:
            return False
    return True


def automation_ids(spec: EventFilter) -> set[str] | None:
    """The automations a filter is confined to (by resource id), or None for any.

    Lets the store read those automations' keys alone instead of every stored event.
    """
    prefix = "prefect.automation."
    if spec.resource is not None and spec.resource.id:
        return {r[len(prefix) :] for r in spec.resource.id if r.startswith(prefix)}
    return None
