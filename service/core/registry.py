"""The loaded automations, compiled and indexed: what every stage looks triggers up in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from service.core.index import TriggerIndex
from service.core.metrics import CompiledMetricTrigger
from service.core.triggers import (
    CompiledAutomation,
    CompiledComposite,
    CompiledEventTrigger,
    compile_automation,
)
from service.models.automations import Automation

__all__ = ["Registry"]


@dataclass(slots=True)
class Registry:
    """An immutable snapshot of the enabled automations; swap it whole to reload."""

    automations: list[CompiledAutomation] = field(default_factory=list)
    index: TriggerIndex = field(default_factory=TriggerIndex)
    proactive: list[CompiledEventTrigger] = field(default_factory=list)
    proactive_global: list[CompiledEventTrigger] = field(default_factory=list)
    metric: list[CompiledMetricTrigger] = field(default_factory=list)
    metric_triggers: dict[str, CompiledMetricTrigger] = field(default_factory=dict)
    event_triggers: dict[str, CompiledEventTrigger] = field(default_factory=dict)
    composites: dict[str, CompiledComposite] = field(default_factory=dict)
    by_id: dict[str, CompiledAutomation] = field(default_factory=dict)

    @classmethod
    def build(cls, automations: Iterable[Automation]) -> Registry:
        """Compile the enabled automations in input order (disabled ones are not loaded)."""
        compiled = [
            compile_automation(a, order) for order, a in enumerate(automations) if a.enabled
        ]
        triggers = [t for a in compiled for t in a.event_triggers()]
        metric = [t for a in compiled for t in a.metric_triggers()]
        return cls(
            automations=compiled,
            index=TriggerIndex([*triggers, *metric]),
            proactive=[t for t in triggers if t.proactive],
            proactive_global=[t for t in triggers if t.proactive and not t.for_each],
            metric=metric,
            metric_triggers={t.id: t for t in metric},
            event_triggers={t.id: t for t in triggers},
            composites={c.id: c for a in compiled for c in a.composites()},
            by_id={a.id: a for a in compiled},
        )
