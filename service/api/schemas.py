"""Request bodies of the automations API, in the shapes Prefect's server accepts."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.models.automations import Automation

__all__ = [
    "AutomationCreate",
    "AutomationFilter",
    "AutomationPartialUpdate",
    "AutomationSort",
    "BacktestBody",
    "CountBody",
    "FilterBody",
]


class AutomationCreate(Automation):
    """Prefect's `AutomationCreate`: an automation and, optionally, the resource owning it."""

    owner_resource: str | None = None


class BacktestBody(BaseModel):
    """Tripwire's `POST /api/automations/backtest`: automations and the range of history."""

    model_config = ConfigDict(extra="forbid")

    automations: list[AutomationCreate] = Field(
        min_length=1, description="automations in Prefect's JSON, as the create route takes"
    )
    since: str | None = Field(
        None, description="events that occurred from then: a duration back (2h, 7d) or ISO 8601"
    )
    until: str | None = Field(None, description="events that occurred before then; same forms")
    against_deployed: bool = Field(
        False, description="also run the deployed versions (same id, else name) and diff"
    )
    max_events: int | None = Field(
        None, ge=1, description="evaluate at most this many (TRIPWIRE_BACKTEST_MAX_EVENTS caps it)"
    )


class AutomationPartialUpdate(BaseModel):
    """Prefect's `AutomationPartialUpdate`: pause (false) or resume (true)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True


class AutomationSort(StrEnum):
    CREATED_DESC = "CREATED_DESC"
    UPDATED_DESC = "UPDATED_DESC"
    NAME_ASC = "NAME_ASC"
    NAME_DESC = "NAME_DESC"


class _AnyOf(BaseModel):
    model_config = ConfigDict(extra="ignore")


class AutomationFilterId(_AnyOf):
    any_: list[uuid.UUID] | None = None


class AutomationFilterName(_AnyOf):
    any_: list[str] | None = None


class AutomationFilterCreated(_AnyOf):
    before_: datetime | None = None


class AutomationFilterTags(_AnyOf):
    operator: Literal["and_", "or_"] = "and_"
    all_: list[str] | None = None
    any_: list[str] | None = None
    is_null_: bool | None = None


class AutomationFilter(_AnyOf):
    """Prefect's `AutomationFilter`: criteria combined with `operator`."""

    operator: Literal["and_", "or_"] = "and_"
    id: AutomationFilterId | None = None
    name: AutomationFilterName | None = None
    created: AutomationFilterCreated | None = None
    tags: AutomationFilterTags | None = None


class FilterBody(BaseModel):
    """The body of `POST /automations/filter`."""

    # Prefect's client sends explicit nulls for the defaults.
    sort: AutomationSort | None = None
    limit: int | None = Field(None, ge=0)
    offset: int | None = Field(None, ge=0)
    automations: AutomationFilter | None = None


class CountBody(BaseModel):
    """The body of `POST /automations/count`."""

    automations: AutomationFilter | None = None
