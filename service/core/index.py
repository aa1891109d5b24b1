"""Find the triggers an event may concern without scanning every automation (design §3).

Each trigger is filed under one anchor, the most selective it has: an exact
`prefect.resource.id` in `match`, else an exact related resource id required by
`match_related`, else its event-name patterns (exact names in a dict, trailing
wildcards by prefix length, real globs in a short fallback list). An event looks up
each anchor kind once, so the cost stays flat as automations grow; every candidate
is then checked in full with `covers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from service.core.patterns import glob_kind
from service.core.records import EventRecord
from service.core.triggers import CompiledEventTrigger

__all__ = ["TriggerIndex"]

_RESOURCE_ID = "prefect.resource.id"


def _exact_values(patterns: str | Sequence[str] | None) -> list[str] | None:
    """The values if every pattern is a plain positive string, else None."""
    if patterns is None:
        return None
    items = [patterns] if isinstance(patterns, str) else list(patterns)
    if not items:
        return None
    for item in items:
        if item.startswith("!") or glob_kind(item)[0] != "eq":
            return None
    return items


class TriggerIndex:
    """Event triggers filed by anchor; `interested(event)` returns those that cover it."""

    def __init__(self, triggers: Iterable[CompiledEventTrigger] = ()) -> None:
        self._by_resource: dict[str, list[CompiledEventTrigger]] = {}
        self._by_related: dict[str, list[CompiledEventTrigger]] = {}
        self._by_name: dict[str, list[CompiledEventTrigger]] = {}
        self._by_prefix: dict[int, dict[str, list[CompiledEventTrigger]]] = {}
        self._fallback: list[CompiledEventTrigger] = []
        self._size = 0
        for trigger in triggers:
            self.add(trigger)

    def __len__(self) -> int:
        return self._size

    def add(self, trigger: CompiledEventTrigger) -> None:
        """File one trigger under its most selective anchor."""
        self._size += 1
        values = _exact_values(trigger.match.get(_RESOURCE_ID))
        if values is not None:
            for value in values:
                self._by_resource.setdefault(value, []).append(trigger)
            return
        related = _related_anchor(trigger.match_related)
        if related is not None:
            for value in related:
                self._by_related.setdefault(value, []).append(trigger)
            return
        self._file_by_name(trigger)

    def _file_by_name(self, trigger: CompiledEventTrigger) -> None:
        kinds = [glob_kind(p) for p in trigger.prefilter_patterns]
        if any(kind in ("any", "glob") for kind, _ in kinds):
            self._fallback.append(trigger)
            return
        for kind, arg in kinds:
            if kind == "eq":
                self._by_name.setdefault(arg, []).append(trigger)
            else:
                table = self._by_prefix.setdefault(len(arg), {})
                table.setdefault(arg, []).append(trigger)

    def candidates(self, event: EventRecord) -> list[CompiledEventTrigger]:
        """Triggers whose anchor the event hits, in load order, without duplicates."""
        found: dict[int, CompiledEventTrigger] = {}
        hits = self._by_resource.get(event.resource[_RESOURCE_ID])
        if hits:
            found.update((id(t), t) for t in hits)
        if self._by_related:
            for resource in event.related:
                hits = self._by_related.get(resource[_RESOURCE_ID])
                if hits:
                    found.update((id(t), t) for t in hits)
        name = event.name
        hits = self._by_name.get(name)
        if hits:
            found.update((id(t), t) for t in hits)
        for length, table in self._by_prefix.items():
            hits = table.get(name[:length]) if len(name) >= length else None
            if hits:
                found.update((id(t), t) for t in hits)
        if self._fallback:
            found.update((id(t), t) for t in self._fallback)
        if len(found) > 1:
            return sorted(found.values(), key=_order)
        return list(found.values())

    def interested(self, event: EventRecord) -> list[CompiledEventTrigger]:
        """`find_interested_triggers`: candidates that cover the event (spec §4)."""
        return [t for t in self.candidates(event) if t.covers(event)]


def _order(trigger: CompiledEventTrigger) -> int:
    return trigger.order


def _related_anchor(match_related: Any) -> list[str] | None:
    specs: list[Mapping[str, Any]] = (
        [match_related] if isinstance(match_related, Mapping) else list(match_related)
    )
    for spec in specs:
        values = _exact_values(spec.get(_RESOURCE_ID))
        if values is not None:
            return values
    return None
