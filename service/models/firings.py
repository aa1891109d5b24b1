"""The firing record: Tripwire's output contract on the firings topic (docs/firings.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["SCHEMA_VERSION", "ChildFiringRecord", "FiringRecord", "Window"]

SCHEMA_VERSION = 1


class Window(BaseModel):
    """The bucket window `[start, end)` that fired."""

    start: datetime
    end: datetime


class ChildFiringRecord(BaseModel):
    """A child firing consumed by a composite trigger."""

    model_config = ConfigDict(extra="ignore")

    id: str
    trigger_id: str
    bucket: dict[str, str]
    triggering_event: dict[str, Any] | None
    fired_at: datetime
    child_firings: list[ChildFiringRecord] = Field(default_factory=list)


class FiringRecord(BaseModel):
    """Everything an action worker needs to act on a firing, with no other lookup."""

    model_config = ConfigDict(extra="ignore")

    schema_version: Literal[1] = 1
    id: str = Field(description="deterministic: a redelivered firing carries the same id")
    automation_id: str
    automation_name: str
    trigger_id: str = Field(description="the root trigger of the automation")
    state: Literal["Triggered", "Resolved"]
    bucket: dict[str, str] = Field(description="the for_each labels of the bucket that fired")
    triggering_event: dict[str, Any] | None
    triggering_value: float | None = None
    window: Window | None = None
    fired_at: datetime
    child_firings: list[ChildFiringRecord] = Field(default_factory=list)
    state_event: dict[str, Any] = Field(
        description="the prefect.automation.triggered/resolved event of this firing"
    )
    actions: list[dict[str, Any]]
    actions_on_trigger: list[dict[str, Any]] = Field(default_factory=list)
    actions_on_resolve: list[dict[str, Any]] = Field(default_factory=list)
