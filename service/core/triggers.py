"""Automations compiled for evaluation: every predicate and constant precomputed once."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from service.core.metrics import CompiledMetricTrigger
from service.core.patterns import (
    NamePredicate,
    compile_name_patterns,
    compile_related_specs,
    compile_resource_spec,
    covers_name_regex,
    covers_related,
)
from service.core.records import EventRecord
from service.core.times import micros
from service.models.automations import (
    Automation,
    CompoundTrigger,
    EventTrigger,
    MetricTrigger,
    SequenceTrigger,
)

__all__ = [
    "BucketKey",
    "CompiledAutomation",
    "CompiledComposite",
    "CompiledEventTrigger",
    "CompiledTrigger",
    "compile_automation",
]

BucketKey = tuple[str, ...]


@dataclass(eq=False, slots=True)
class CompiledAutomation:
    """What a firing needs to know of its automation."""

    id: str
    name: str
    enabled: bool
    model: Automation
    root: CompiledTrigger | None = None
    order: int = 0

    def event_triggers(self) -> list[CompiledEventTrigger]:
        """Every event trigger of the tree, depth-first in declaration order."""
        return [t for t in _walk(self.root) if isinstance(t, CompiledEventTrigger)]

    def metric_triggers(self) -> list[CompiledMetricTrigger]:
        """Every metric trigger of the tree, depth-first in declaration order."""
        return [t for t in _walk(self.root) if isinstance(t, CompiledMetricTrigger)]

    def composites(self) -> list[CompiledComposite]:
        """Every compound and sequence trigger of the tree, depth-first."""
        return [t for t in _walk(self.root) if isinstance(t, CompiledComposite)]


@dataclass(eq=False, slots=True)
class CompiledEventTrigger:
    """An event trigger with its matchers compiled (spec §3.1, §4, §5)."""

    id: str
    automation: CompiledAutomation
    parent: CompiledComposite | None
    posture: str
    after: tuple[str, ...]
    expect: tuple[str, ...]
    for_each: tuple[str, ...]  # sorted, as Prefect sorts it for the bucketing key
    threshold: int
    within: int  # microseconds
    match: Mapping[str, Any]
    match_related: Any
    order: int = 0
    proactive: bool = field(init=False)
    reactive: bool = field(init=False)
    immediate: bool = field(init=False)
    holds_events: bool = field(init=False)
    prefilter_patterns: tuple[str, ...] = field(init=False)
    _prefilter: NamePredicate = field(init=False)
    _covers_name: NamePredicate = field(init=False)
    _expects: NamePredicate | None = field(init=False)
    _starts_after: NamePredicate | None = field(init=False)
    _match: Any = field(init=False)
    _related: Any = field(init=False)
    _selectors: tuple[tuple[str | None, str], ...] = field(init=False)

    def __post_init__(self) -> None:
        self.proactive = self.posture == "Proactive"
        self.reactive = not self.proactive
        self.immediate = self.within == 0
        # Held expect events exist only for proactive triggers with `after` (spec §7.6).
        self.holds_events = self.proactive and bool(self.after)
        # find_interested_triggers: an empty `expect` files the trigger under `*` only.
        self.prefilter_patterns = (
            tuple(sorted(set(self.expect) | set(self.after))) if (self.expect) else ("*",)
        )
        # The pre-filter is a plain fnmatch: a `!` is a literal character there (spec §4.1).
        self._prefilter = compile_name_patterns(self.prefilter_patterns, negation=False)
        self._covers_name = covers_name_regex(self.expect, self.after)
        self._expects = compile_name_patterns(self.expect) if self.expect else None
        self._starts_after = compile_name_patterns(self.after) if self.after else None
        self._match = compile_resource_spec(self.match)
        self._related = compile_related_specs(self.match_related)
        self._selectors = tuple(_selector(label) for label in self.for_each)

    def expects(self, name: str) -> bool:
        """An empty `expect` expects everything; `!` patterns are OR-ed in (spec §4.1)."""
        return self._expects is None or self._expects(name)

    def starts_after(self, name: str) -> bool:
        """An empty `after` starts nothing (spec §4.1)."""
        return self._starts_after is not None and self._starts_after(name)

    def covers(self, event: EventRecord) -> bool:
        """Pre-filter, `covers` name regex, `match`, then `match_related` (spec §4)."""
        name = event.name
        if not self._prefilter(name) or not self._covers_name(name):
            return False
        return self.covers_resources(event)

    def covers_resources(self, event: EventRecord) -> bool:
        """`match` on the primary resource, then each `match_related` object (spec §4.2-4.3)."""
        return self._match(event.resource) and covers_related(self._related, event.related)

    def bucketing_key(self, event: EventRecord) -> BucketKey:
        """One value per sorted `for_each` selector, `""` when missing (spec §5)."""
        if not self._selectors:
            return ()
        return tuple(_label_value(event, role, label) or "" for role, label in self._selectors)

    def labels(self, key: BucketKey) -> dict[str, str]:
        """The firing's triggering labels: selector to value."""
        return dict(zip(self.for_each, key, strict=True))

    def meets_threshold(self, count: int) -> bool:
        """Reactive: reached the threshold; Proactive: stayed below it."""
        if self.reactive:
            return count >= self.threshold
        return count < self.threshold


@dataclass(eq=False, slots=True)
class CompiledComposite:
    """A compound or sequence trigger over its children's firings (spec §10)."""

    id: str
    automation: CompiledAutomation
    parent: CompiledComposite | None
    kind: str  # "compound" | "sequence"
    needed: int
    within: int | None  # microseconds; None: child firings never expire
    children: list[CompiledTrigger] = field(default_factory=list)


CompiledTrigger = CompiledEventTrigger | CompiledComposite | CompiledMetricTrigger


def _selector(label: str) -> tuple[str | None, str]:
    # Event.find_resource_label: split at the last ":" for the label, then at the
    # first ":" for the role (spec §5).
    directive, _, related_label = label.rpartition(":")
    directive, _, role = directive.partition(":")
    if directive == "related":
        return role, f"{related_label}\0{label}"
    return None, label


def _label_value(event: EventRecord, role: str | None, label: str) -> str | None:
    if role is None:
        return event.resource.get(label)
    related_label, _, whole = label.partition("\0")
    for resource in event.related:
        if resource.get("prefect.resource.role") == role:
            return resource.get(related_label)
    # No resource in that role: Prefect falls back to the primary resource's label
    # named by the whole selector string, normally absent (spec §5).
    return event.resource.get(whole)


def _walk(trigger: CompiledTrigger | None) -> list[CompiledTrigger]:
    if trigger is None:
        return []
    if isinstance(trigger, CompiledComposite):
        out: list[CompiledTrigger] = [trigger]
        for child in trigger.children:
            out += _walk(child)
        return out
    return [trigger]


def compile_automation(automation: Automation, order: int = 0) -> CompiledAutomation:
    """Compile a validated automation (with ids) into its trigger tree."""
    if automation.id is None:
        msg = "automation has no id; call Automation.with_ids() first"
        raise ValueError(msg)
    compiled = CompiledAutomation(
        id=str(automation.id),
        name=automation.name,
        enabled=automation.enabled,
        model=automation,
        order=order,
    )
    compiled.root = _compile(automation.trigger, compiled, None)
    for position, trigger in enumerate(_walk(compiled.root)):
        if isinstance(trigger, CompiledEventTrigger | CompiledMetricTrigger):
            trigger.order = order * 1_000_000 + position
    return compiled


def _compile(
    trigger: Any, automation: CompiledAutomation, parent: CompiledComposite | None
) -> CompiledTrigger:
    if isinstance(trigger, EventTrigger):
        return CompiledEventTrigger(
            id=str(trigger.id),
            automation=automation,
            parent=parent,
            posture=trigger.posture,
            after=tuple(trigger.after),
            expect=tuple(trigger.expect),
            for_each=tuple(sorted(trigger.for_each)),
            threshold=trigger.threshold,
            within=micros(trigger.within),
            match=trigger.match,
            match_related=trigger.match_related,
        )
    if isinstance(trigger, MetricTrigger):
        query = trigger.metric
        return CompiledMetricTrigger(
            id=str(trigger.id),
            automation=automation,
            parent=parent,
            metric=query.name,
            threshold=query.threshold,
            operator=query.operator,
            range=micros(query.range),
            firing_for=micros(query.firing_for),
            match=trigger.match,
            match_related=trigger.match_related,
        )
    if not isinstance(trigger, CompoundTrigger | SequenceTrigger):
        msg = f"cannot compile trigger of type {type(trigger).__name__}"
        raise TypeError(msg)
    composite = CompiledComposite(
        id=str(trigger.id),
        automation=automation,
        parent=parent,
        kind=trigger.type,
        needed=trigger.num_expected_firings,
        within=None if trigger.within is None else micros(trigger.within),
    )
    composite.children = [_compile(child, automation, composite) for child in trigger.triggers]
    return composite
