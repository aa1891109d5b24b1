"""Prefect's event JSON, validated as Prefect's server validates it (spec §1.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.errors import ValidationFailed
from service.models.errors import validated

__all__ = [
    "MAX_EVENT_DEPTH",
    "MAX_EVENT_NAME_LENGTH",
    "MAX_LABELS_PER_RESOURCE",
    "MAX_RELATED_RESOURCES",
    "Event",
    "parse_event",
]

MAX_EVENT_NAME_LENGTH = 1024
MAX_LABELS_PER_RESOURCE = 500
MAX_RELATED_RESOURCES = 100
# Nesting levels of an event's JSON, the event object being level 1. Tripwire writes the
# event back inside match, state and firing records with orjson, which refuses more than
# 254 levels in all; 128 leaves the rest to the enclosing records (composite firings nest
# their children's events). Prefect sets no limit (docs/semantics.md).
MAX_EVENT_DEPTH = 128
# Fields whose shape the model checks (flat strings and label maps): never deep.
_SHALLOW_FIELDS = frozenset(
    {"id", "occurred", "event", "resource", "related", "follows", "received"}
)


def _check_labels(labels: dict[str, str]) -> dict[str, str]:
    if len(labels) > MAX_LABELS_PER_RESOURCE:
        msg = f"The maximum number of labels per resource is {MAX_LABELS_PER_RESOURCE}"
        raise ValueError(msg)
    return labels


class Event(BaseModel):
    """One Prefect event; extra top-level fields are ignored, as Prefect does."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: UUID
    occurred: datetime
    # Checked in a validator, for Prefect's own message (spec §1.1).
    event: str
    resource: dict[str, str]
    related: list[dict[str, str]] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    follows: UUID | None = None
    received: datetime | None = None

    @field_validator("occurred", "received")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        # A timestamp without a zone is UTC (spec §1.1).
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value

    @field_validator("event")
    @classmethod
    def _name_length(cls, value: str) -> str:
        if len(value) > MAX_EVENT_NAME_LENGTH:
            msg = f"Event name must be at most {MAX_EVENT_NAME_LENGTH} characters"
            raise ValueError(msg)
        return value

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: dict[str, str]) -> dict[str, str]:
        if "prefect.resource.id" not in value:
            msg = "Resources must include the prefect.resource.id label"
            raise ValueError(msg)
        if not value["prefect.resource.id"]:
            msg = "The prefect.resource.id label must be non-empty"
            raise ValueError(msg)
        return _check_labels(value)

    @field_validator("related")
    @classmethod
    def _related(cls, value: list[dict[str, str]]) -> list[dict[str, str]]:
        if len(value) > MAX_RELATED_RESOURCES:
            msg = f"The maximum number of related resources is {MAX_RELATED_RESOURCES}"
            raise ValueError(msg)
        for resource in value:
            if "prefect.resource.id" not in resource:
                msg = "Resources must include the prefect.resource.id label"
                raise ValueError(msg)
            if not resource["prefect.resource.id"]:
                msg = "The prefect.resource.id label must be non-empty"
                raise ValueError(msg)
            if "prefect.resource.role" not in resource:
                msg = "Related Resources must include the prefect.resource.role label"
                raise ValueError(msg)
            if not resource["prefect.resource.role"]:
                msg = "The prefect.resource.role label must be non-empty"
                raise ValueError(msg)
            _check_labels(resource)
        return value


def parse_event(data: Any) -> Event:
    """Validate one decoded event object; raise `ValidationFailed` naming field and rule."""
    event = validated(lambda: Event.model_validate(data))
    deep = _too_deep(data)
    if deep is not None:
        msg = f"nested more than {MAX_EVENT_DEPTH} levels deep"
        raise ValidationFailed([(deep, msg)])
    return event


def _too_deep(data: dict[str, Any]) -> str | None:
    """The top-level field nested past MAX_EVENT_DEPTH, if any; the payload and extras only.

    The whole event is kept and written back as it came, ignored extra fields included.
    """
    for name, value in data.items():
        if name in _SHALLOW_FIELDS or not isinstance(value, dict | list):
            continue
        stack: list[tuple[Any, int]] = [(value, 2)]
        while stack:
            node, level = stack.pop()
            if level > MAX_EVENT_DEPTH:
                return name
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, dict | list):
                    stack.append((child, level + 1))
    return None
