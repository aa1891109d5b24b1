"""Metric trigger JSON: the discriminator, defaults, validation messages and compilation."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from service.core.metrics import CompiledMetricTrigger
from service.core.times import SECOND
from service.core.triggers import CompiledComposite, compile_automation
from service.errors import ValidationFailed
from service.models.automations import (
    CompoundTrigger,
    EventTrigger,
    MetricTrigger,
    parse_automation,
)

SEED_SUCCESSES: dict[str, Any] = {
    "type": "metric",
    "match": {"prefect.resource.id": "prefect.flow-run.*"},
    "match_related": {
        "prefect.resource.id": "prefect.tag.production",
        "prefect.resource.role": "tag",
    },
    "metric": {
        "name": "successes",
        "threshold": 0.9,
        "operator": "<",
        "range": 3600,
        "firing_for": 0,
    },
}
SEED_LATENESS: dict[str, Any] = {
    "type": "metric",
    "match": {"prefect.resource.id": "prefect.flow-run.*"},
    "match_related": {
        "prefect.resource.id": "prefect.work-pool.kubernetes",
        "prefect.resource.role": "work-pool",
    },
    "metric": {
        "name": "lateness",
        "threshold": 300,
        "operator": ">",
        "range": 86400,
        "firing_for": 600,
    },
}


def automation(trigger: dict[str, Any]) -> dict[str, Any]:
    return {"name": "metric", "trigger": trigger, "actions": [{"type": "do-nothing"}]}


def errors_of(trigger: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as caught:
        parse_automation(automation(trigger))
    return list(caught.value.errors)


@pytest.mark.parametrize("trigger", [SEED_SUCCESSES, SEED_LATENESS], ids=["successes", "lateness"])
def test_the_seed_examples_are_accepted_verbatim(trigger: dict[str, Any]) -> None:
    parsed = parse_automation(automation(trigger)).trigger
    assert isinstance(parsed, MetricTrigger)
    assert parsed.posture == "Metric"
    assert parsed.metric.name == trigger["metric"]["name"]
    assert parsed.metric.range == timedelta(seconds=trigger["metric"]["range"])
    assert parsed.metric.firing_for == timedelta(seconds=trigger["metric"]["firing_for"])


def test_posture_metric_without_type_is_a_metric_trigger() -> None:
    trigger = {
        "posture": "Metric",
        "metric": {"name": "duration", "threshold": 60, "operator": ">"},
    }
    parsed = parse_automation(automation(trigger)).trigger
    assert isinstance(parsed, MetricTrigger)
    assert parsed.type == "metric"
    # Defaults stay Prefect Cloud's: five minutes each.
    assert parsed.metric.range == timedelta(seconds=300)
    assert parsed.metric.firing_for == timedelta(seconds=300)
    assert parsed.match == {}
    assert parsed.match_related == {}


def test_without_type_or_metric_posture_it_stays_an_event_trigger() -> None:
    parsed = parse_automation(automation({"posture": "Reactive", "expect": ["x"]})).trigger
    assert isinstance(parsed, EventTrigger)


def test_metric_triggers_nest_inside_composites() -> None:
    trigger = {
        "type": "compound",
        "require": "any",
        "within": None,
        "triggers": [
            {"type": "event", "posture": "Reactive", "expect": ["x"]},
            {
                "posture": "Metric",
                "metric": {"name": "lateness", "threshold": 600, "operator": ">"},
            },
        ],
    }
    parsed = parse_automation(automation(trigger))
    assert isinstance(parsed.trigger, CompoundTrigger)
    assert isinstance(parsed.trigger.triggers[1], MetricTrigger)
    assert parsed.trigger.triggers[1].id is not None


@pytest.mark.parametrize(
    ("metric", "path", "message"),
    [
        (
            {"name": "throughput", "threshold": 1, "operator": "<"},
            "trigger.metric.name",
            "unknown metric 'throughput'",
        ),
        (
            {"name": "duration", "threshold": 1, "operator": "=="},
            "trigger.metric.operator",
            "'<', '<=', '>' or '>='",
        ),
        (
            {"name": "duration", "threshold": 1, "operator": "<", "range": 9},
            "trigger.metric.range",
            "at least 10 seconds",
        ),
        (
            {"name": "duration", "threshold": 1, "operator": "<", "firing_for": -1},
            "trigger.metric.firing_for",
            "at least 0 seconds",
        ),
        ({"name": "duration", "operator": "<"}, "trigger.metric.threshold", "Field required"),
        ({"threshold": 1, "operator": "<"}, "trigger.metric.name", "Field required"),
        (
            {"name": "duration", "threshold": "many", "operator": "<"},
            "trigger.metric.threshold",
            "valid number",
        ),
    ],
)
def test_validation_names_the_field_and_the_rule(
    metric: dict[str, Any], path: str, message: str
) -> None:
    errors = errors_of({"type": "metric", "metric": metric})
    assert any(loc == path and message in text for loc, text in errors), errors


def test_a_missing_metric_query_is_named() -> None:
    assert errors_of({"type": "metric"}) == [("trigger.metric", "Field required")]


def test_nested_validation_paths_carry_the_child_index() -> None:
    trigger = {
        "type": "sequence",
        "within": None,
        "triggers": [{"type": "metric", "metric": {"name": "x", "threshold": 1, "operator": "<"}}],
    }
    [(path, _)] = errors_of(trigger)
    assert path == "trigger.triggers[0].metric.name"


def test_an_unknown_type_lists_metric_among_the_choices() -> None:
    [(path, message)] = errors_of({"type": "gauge"})
    assert path == "trigger"
    assert "'metric'" in message


def test_boundaries_are_accepted() -> None:
    metric = {"name": "successes", "threshold": 1, "operator": ">=", "range": 10, "firing_for": 0}
    parsed = parse_automation(automation({"type": "metric", "metric": metric})).trigger
    assert isinstance(parsed, MetricTrigger)
    assert parsed.metric.range == timedelta(seconds=10)


def test_compilation_precomputes_the_window_geometry() -> None:
    compiled = compile_automation(parse_automation(automation(SEED_LATENESS)))
    root = compiled.root
    assert isinstance(root, CompiledMetricTrigger)
    assert root.range == 86400 * SECOND
    assert root.firing_for == 600 * SECOND
    assert root.width == 1440 * SECOND  # range / 60
    assert root.slots == 60
    assert compiled.metric_triggers() == [root]
    assert compiled.event_triggers() == []


def test_a_range_that_does_not_divide_rounds_the_sub_interval_up() -> None:
    metric = {"name": "duration", "threshold": 1, "operator": ">", "range": 10}
    compiled = compile_automation(
        parse_automation(automation({"type": "metric", "metric": metric}))
    )
    root = compiled.root
    assert isinstance(root, CompiledMetricTrigger)
    assert root.width == 166_667
    assert root.slots == 60
    assert root.width * root.slots >= root.range


def test_a_nested_metric_trigger_knows_its_parent() -> None:
    trigger = {
        "type": "compound",
        "require": "all",
        "within": 60,
        "triggers": [
            {"type": "event", "posture": "Reactive", "expect": ["x"]},
            {"type": "metric", "metric": {"name": "duration", "threshold": 1, "operator": ">"}},
        ],
    }
    compiled = compile_automation(parse_automation(automation(trigger)))
    root = compiled.root
    assert isinstance(root, CompiledComposite)
    [metric] = compiled.metric_triggers()
    assert metric.parent is root
    assert root.children[1] is metric
    assert len(compiled.event_triggers()) == 1
