"""Prefect's event JSON, validated as Prefect's server validates it (spec §1.1)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from service.models.errors import validated

__all__ = [
    "MAX_EVENT_NAME_LENGTH",
    "MAX_LABELS_PER_RESOURCE",
    "MAX_RELATED_RESOURCES",
    "Event",
    "parse_event",
]

MAX_EVENT_NAME_LENGTH = 1024
MAX_LABELS_PER_RESOURCE = 500
MAX_RELATED_RESOURCES = 100


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
    return validated(lambda: Event.model_validate(data))
