"""Find the triggers an event may concern without scanning every automation (design §3).

Each trigger is filed under one anchor, the most selective it has: an exact
`prefect.resource.id` in `match`, else an exact related resource id required by
`match_related`, else nothing. Under its anchor it is filed by event-name pattern:
exact names in a dict, trailing wildcards by prefix length, real globs (and an empty
`expect`, which admits every name) in a short list. An event looks up its own resource
id, each related resource id and the anchorless table, each by its name, so the cost
follows the triggers that could match, not how many automations are loaded. Every
candidate is then checked in full with `covers`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from service.core.metrics import CompiledMetricTrigger
from service.core.patterns import glob_kind
from service.core.records import EventRecord
from service.core.triggers import CompiledEventTrigger

__all__ = ["Indexed", "TriggerIndex"]

# Metric triggers are filed like event triggers: their names are flow-run states.
Indexed = CompiledEventTrigger | CompiledMetricTrigger

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


class _NameTable:
    """Triggers of one anchor, filed by their event-name patterns."""

    __slots__ = ("by_name", "by_prefix", "other")

    def __init__(self) -> None:
        self.by_name: dict[str, list[Indexed]] = {}
        self.by_prefix: dict[int, dict[str, list[Indexed]]] = {}
        self.other: list[Indexed] = []

    def add(self, trigger: Indexed) -> None:
        kinds = [glob_kind(p) for p in trigger.prefilter_patterns]
        if any(kind in ("any", "glob") for kind, _ in kinds):
            self.other.append(trigger)
            return
        for kind, arg in kinds:
            if kind == "eq":
                self.by_name.setdefault(arg, []).append(trigger)
            else:
                table = self.by_prefix.setdefault(len(arg), {})
                table.setdefault(arg, []).append(trigger)

    def collect(
        self,
        name: str,
        verified: list[list[Indexed]],
        unverified: list[list[Indexed]],
    ) -> None:
        # An exact hit, or a prefix hit with at least one more character (Prefect's
        # `*` needs one, spec §4.1), passes both name checks of `covers` by itself.
        hits = self.by_name.get(name)
        if hits:
            verified.append(hits)
        size = len(name)
        for length, table in self.by_prefix.items():
            if size > length:
                hits = table.get(name[:length])
                if hits:
                    verified.append(hits)
        if self.other:
            unverified.append(self.other)


class TriggerIndex:
    """Event triggers filed by anchor; `interested(event)` returns those that cover it."""

    def __init__(self, triggers: Iterable[Indexed] = ()) -> None:
        self._by_resource: dict[str, _NameTable] = {}
        self._by_related: dict[str, _NameTable] = {}
        self._unanchored = _NameTable()
        self._size = 0
        for trigger in triggers:
            self.add(trigger)

    def __len__(self) -> int:
        return self._size

    def add(self, trigger: Indexed) -> None:
        """File one trigger under its most selective anchor."""
        self._size += 1
        values = _exact_values(trigger.match.get(_RESOURCE_ID))
        table = self._by_resource
        if values is None:
            values = _related_anchor(trigger.match_related)
            table = self._by_related
        if values is None:
            self._unanchored.add(trigger)
            return
        for value in dict.fromkeys(values):
            names = table.get(value)
            if names is None:
                names = table[value] = _NameTable()
            names.add(trigger)

    def _collect(self, event: EventRecord) -> tuple[list[list[Indexed]], list[list[Indexed]]]:
        name = event.name
        verified: list[list[Indexed]] = []
        unverified: list[list[Indexed]] = []
        table = self._by_resource.get(event.resource[_RESOURCE_ID])
        if table is not None:
            table.collect(name, verified, unverified)
        by_related = self._by_related
        if by_related:
            for resource in event.related:
                table = by_related.get(resource[_RESOURCE_ID])
                if table is not None:
                    table.collect(name, verified, unverified)
        self._unanchored.collect(name, verified, unverified)
        return verified, unverified

    def candidates(self, event: EventRecord) -> list[Indexed]:
        """Triggers whose anchor and name the event hits, in load order, once each."""
        verified, unverified = self._collect(event)
        found = {t.order: t for hits in verified + unverified for t in hits}
        return [found[order] for order in sorted(found)]

    def interested(self, event: EventRecord) -> list[Indexed]:
        """`find_interested_triggers`: candidates that cover the event (spec §4)."""
        verified, unverified = self._collect(event)
        if not unverified and len(verified) == 1:
            return [t for t in verified[0] if t.covers_resources(event)]
        found: dict[int, Indexed] = {}
        for hits in verified:
            for trigger in hits:
                if trigger.order not in found and trigger.covers_resources(event):
                    found[trigger.order] = trigger
        for hits in unverified:
            for trigger in hits:
                if trigger.order not in found and trigger.covers(event):
                    found[trigger.order] = trigger
        if len(found) > 1:
            return [found[order] for order in sorted(found)]
        return list(found.values())


def _related_anchor(match_related: Any) -> list[str] | None:
    specs: list[Mapping[str, Any]] = (
        [match_related] if isinstance(match_related, Mapping) else list(match_related)
    )
    for spec in specs:
        values = _exact_values(spec.get(_RESOURCE_ID))
        if values is not None:
            return values
    return None
