"""Prefect's automation filters and sorts, applied to the API's in-memory view."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from service.api.catalog import Stored
from service.api.schemas import AutomationFilter, AutomationFilterTags, AutomationSort

__all__ = ["select", "sort_key"]


def _combine(operator: str, checks: list[bool]) -> bool:
    if not checks:
        return True
    return any(checks) if operator == "or_" else all(checks)


def _tags(spec: AutomationFilterTags, tags: list[str]) -> bool:
    checks = []
    if spec.all_ is not None:
        checks.append(set(spec.all_) <= set(tags))
    if spec.any_ is not None:
        checks.append(bool(set(spec.any_) & set(tags)))
    if spec.is_null_ is not None:
        checks.append(not tags if spec.is_null_ else bool(tags))
    return _combine(spec.operator, checks)


def matches(stored: Stored, spec: AutomationFilter | None) -> bool:
    """Whether one automation passes Prefect's `AutomationFilter`."""
    if spec is None:
        return True
    automation = stored.automation
    checks = []
    if spec.id is not None and spec.id.any_ is not None:
        checks.append(stored.id in spec.id.any_)
    if spec.name is not None and spec.name.any_ is not None:
        checks.append(automation.name in spec.name.any_)
    if spec.created is not None and spec.created.before_ is not None:
        checks.append(stored.created <= spec.created.before_)
    if spec.tags is not None:
        checks.append(_tags(spec.tags, automation.tags))
    return _combine(spec.operator, checks)


def sort_key(sort: AutomationSort) -> tuple[Callable[[Stored], Any], bool]:
    """The key and direction of Prefect's sort (name sorts break ties by id)."""
    if sort is AutomationSort.CREATED_DESC:
        return (lambda s: (s.created, str(s.id))), True
    if sort is AutomationSort.UPDATED_DESC:
        return (lambda s: (s.updated, str(s.id))), True
    if sort is AutomationSort.NAME_DESC:
        return (lambda s: (s.automation.name, str(s.id))), True
    return (lambda s: (s.automation.name, str(s.id))), False


def select(
    automations: Iterable[Stored],
    spec: AutomationFilter | None,
    sort: AutomationSort = AutomationSort.NAME_ASC,
    offset: int = 0,
    limit: int | None = None,
) -> list[Stored]:
    """Filter, sort and page, as `POST /automations/filter` does."""
    key, reverse = sort_key(sort)
    chosen = sorted((s for s in automations if matches(s, spec)), key=key, reverse=reverse)
    end = None if limit is None else offset + limit
    return chosen[offset:end]
