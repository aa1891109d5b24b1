"""Validation of automations and events: messages name the field and the rule (spec §1-3)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.errors import ValidationFailed
from service.models.automations import (
    CompoundTrigger,
    EventTrigger,
    SequenceTrigger,
    parse_automation,
)
from service.models.events import parse_event

PROACTIVE_MIN = "`within` for Proactive triggers must be greater than or equal to 10 seconds"
NON_NEGATIVE = "Input should be greater than or equal to 0 seconds"
NOT_NULL = "`within` should be a valid timedelta"


def _automation(trigger: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "a", "trigger": trigger, "actions": [], **extra}


def _event_trigger(**fields: Any) -> dict[str, Any]:
    return {"type": "event", "posture": "Reactive", "expect": ["x"], **fields}


def _errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as info:
        parse_automation(data)
    return info.value.errors


def _trigger(data: dict[str, Any]) -> Any:
    return parse_automation(_automation(data)).trigger


# -- §3.1 event trigger `within` ----------------------------------------------------------


@pytest.mark.parametrize("within", [5, 9.999, "PT5S"])
def test_proactive_within_below_ten_seconds_is_rejected_naming_the_field(within: Any) -> None:
    trigger = _event_trigger(posture="Proactive", within=within)
    assert _errors(_automation(trigger)) == [("trigger.within", PROACTIVE_MIN)]


def test_negative_proactive_within_gets_the_proactive_message() -> None:
    trigger = _event_trigger(posture="Proactive", within=-5)
    assert _errors(_automation(trigger)) == [("trigger.within", PROACTIVE_MIN)]


@pytest.mark.parametrize("fields", [{}, {"within": 0}, {"within": "PT0S"}])
def test_missing_or_zero_proactive_within_becomes_ten_seconds(fields: dict[str, Any]) -> None:
    trigger = _trigger(_event_trigger(posture="Proactive", **fields))
    assert trigger.within == timedelta(seconds=10)


def test_proactive_within_of_ten_seconds_or_more_is_kept() -> None:
    assert _trigger(_event_trigger(posture="Proactive", within=10)).within == timedelta(seconds=10)
    assert _trigger(_event_trigger(posture="Proactive", within="PT2M")).within == timedelta(
        minutes=2
    )


def test_reactive_within_defaults_to_zero_and_takes_small_values() -> None:
    assert _trigger(_event_trigger()).within == timedelta(0)
    assert _trigger(_event_trigger(within=1.5)).within == timedelta(seconds=1.5)


def test_negative_reactive_within_is_rejected() -> None:
    assert _errors(_automation(_event_trigger(within=-1))) == [("trigger.within", NON_NEGATIVE)]


@pytest.mark.parametrize("posture", ["Reactive", "Proactive"])
def test_null_within_on_an_event_trigger_is_rejected(posture: str) -> None:
    trigger = _event_trigger(posture=posture, within=None)
    assert _errors(_automation(trigger)) == [("trigger.within", NOT_NULL)]


def test_nested_trigger_errors_name_their_path() -> None:
    root = {
        "type": "compound",
        "require": "all",
        "within": None,
        "triggers": [_event_trigger(), _event_trigger(posture="Proactive", within=5)],
    }
    assert _errors(_automation(root)) == [("trigger.triggers[1].within", PROACTIVE_MIN)]


# -- §3.1 other event-trigger fields ---------------------------------------------------


def test_posture_is_required_on_the_server() -> None:
    trigger = {"type": "event", "expect": ["x"]}
    ((loc, message),) = _errors(_automation(trigger))
    assert loc == "trigger.posture"
    assert "required" in message.lower()


def test_metric_posture_is_not_an_event_trigger_posture() -> None:
    ((loc, _),) = _errors(_automation(_event_trigger(posture="Metric")))
    assert loc == "trigger.posture"


@pytest.mark.parametrize("threshold", [0, -3])
def test_threshold_is_not_validated(threshold: int) -> None:
    assert _trigger(_event_trigger(threshold=threshold)).threshold == threshold


def test_unknown_fields_are_ignored() -> None:
    automation = parse_automation(_automation(_event_trigger(colour="red"), mood="calm"))
    assert isinstance(automation.trigger, EventTrigger)


def test_unknown_trigger_type_is_rejected_naming_the_allowed_ones() -> None:
    ((loc, message),) = _errors(_automation({"type": "bogus", "posture": "Reactive"}))
    assert loc == "trigger"
    for kind in ("event", "compound", "sequence"):
        assert f"'{kind}'" in message


# -- §3.2 composite triggers ---------------------------------------------------------------


def _compound(**fields: Any) -> dict[str, Any]:
    children = [_event_trigger(), _event_trigger()]
    return {"type": "compound", "triggers": children, "require": "all", "within": 60, **fields}


@pytest.mark.parametrize("kind", ["compound", "sequence"])
def test_composite_within_key_is_required(kind: str) -> None:
    root = _compound(type=kind)
    del root["within"]
    ((loc, message),) = _errors(_automation(root))
    assert loc == "trigger.within"
    assert "required" in message.lower()


@pytest.mark.parametrize(
    ("within", "expected"),
    [(None, None), (0, timedelta(0)), (-10, timedelta(seconds=-10))],
)
def test_composite_within_may_be_null_zero_or_negative(
    within: Any, expected: timedelta | None
) -> None:
    assert _trigger(_compound(within=within)).within == expected
    assert _trigger(_compound(type="sequence", within=within)).within == expected


def test_require_below_one_is_rejected() -> None:
    ((loc, message),) = _errors(_automation(_compound(require=0)))
    assert loc.startswith("trigger")
    assert message == "require must be at least 1"


def test_require_above_the_number_of_children_is_rejected() -> None:
    ((loc, message),) = _errors(_automation(_compound(require=3)))
    assert loc.startswith("trigger")
    assert message == "require must be less than or equal to the number of triggers"


@pytest.mark.parametrize("require", ["any", "all", 1, 2])
def test_require_any_all_or_a_count_within_bounds_is_accepted(require: Any) -> None:
    assert _trigger(_compound(require=require)).require == require


def test_empty_compound_is_accepted() -> None:
    assert _trigger(_compound(triggers=[], require="all")).triggers == []


def test_missing_type_is_inferred_from_the_shape() -> None:
    children = [{"posture": "Reactive", "expect": ["x"]}]
    compound = _trigger({"triggers": children, "require": "any", "within": None})
    sequence = _trigger({"triggers": children, "within": None})
    assert isinstance(compound, CompoundTrigger)
    assert isinstance(sequence, SequenceTrigger)
    assert isinstance(compound.triggers[0], EventTrigger)
    assert isinstance(sequence.triggers[0], EventTrigger)


# -- §2 run-deployment loops -----------------------------------------------------------------


def _runner(source: str, **trigger_fields: Any) -> dict[str, Any]:
    trigger = _event_trigger(**{"expect": ["prefect.flow-run.Running"], **trigger_fields})
    action: dict[str, Any] = {"type": "run-deployment", "source": source}
    if source == "selected":  # Prefect requires it, before the loop check runs
        action["deployment_id"] = "3fa85f64-5717-4562-b3fc-2c963f66afa6"
    return _automation(trigger, actions=[action])


def test_inferred_run_deployment_on_a_running_flow_run_is_rejected() -> None:
    ((_, message),) = _errors(_runner("inferred"))
    assert "will lead to an infinite loop" in message


def test_selected_run_deployment_that_could_match_any_flow_run_is_rejected() -> None:
    ((_, message),) = _errors(_runner("selected"))
    assert "may lead to an infinite loop" in message


def test_selected_run_deployment_with_an_empty_related_list_is_accepted() -> None:
    assert parse_automation(_runner("selected", match_related=[])).name == "a"


def test_loop_check_skips_disabled_automations_and_other_events() -> None:
    assert parse_automation({**_runner("inferred"), "enabled": False}).enabled is False
    other = _runner("inferred", expect=["prefect.flow-run.Failed"])
    assert parse_automation(other).name == "a"


@pytest.mark.parametrize(
    "fields",
    [
        {"match": {"prefect.resource.id": "prefect.flow-run.*"}},
        {"match_related": [{"prefect.resource.id": ["x", "prefect.flow-run.*"]}]},
        {"match_related": [{"prefect.resource.id": "x"}, {}]},
    ],
)
def test_selected_run_deployment_loop_check_reads_flow_run_wildcards(
    fields: dict[str, Any],
) -> None:
    ((_, message),) = _errors(_runner("selected", **fields))
    assert "may lead to an infinite loop" in message


@pytest.mark.parametrize(
    "fields",
    [
        {"match": {"prefect.resource.id": "prefect.flow-run.abc"}},
        {"match": {"prefect.resource.id": "prefect.flow-run.*", "env": "dev"}},
        {"match_related": {"prefect.resource.id": "prefect.flow-run.a*"}},
        {"expect": ["prefect.flow-run.R*"]},
    ],
)
def test_selected_run_deployment_that_cannot_match_every_flow_run_is_accepted(
    fields: dict[str, Any],
) -> None:
    assert parse_automation(_runner("selected", **fields)).name == "a"


def test_loop_check_applies_only_to_reactive_roots() -> None:
    data = _runner("inferred", posture="Proactive", within=30)
    assert parse_automation(data).trigger.posture == "Proactive"


# -- §1.1 events --------------------------------------------------------------------------------


def _event(**fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": "0a6c3a9e-1f2b-4c3d-8e9f-0a1b2c3d4e5f",
        "occurred": "2026-01-01T00:00:00Z",
        "event": "prefect.flow-run.Failed",
        "resource": {"prefect.resource.id": "prefect.flow-run.r1"},
    }
    data.update(fields)
    return data


def _event_errors(data: dict[str, Any]) -> list[tuple[str, str]]:
    with pytest.raises(ValidationFailed) as info:
        parse_event(data)
    return info.value.errors


def test_event_resource_without_an_id_is_rejected() -> None:
    errors = _event_errors(_event(resource={"env": "dev"}))
    assert errors == [("resource", "Resources must include the prefect.resource.id label")]


def test_event_resource_with_an_empty_id_is_rejected() -> None:
    errors = _event_errors(_event(resource={"prefect.resource.id": ""}))
    assert errors == [("resource", "The prefect.resource.id label must be non-empty")]


def test_related_resource_without_a_role_is_rejected() -> None:
    related = [{"prefect.resource.id": "prefect.deployment.d1"}]
    assert _event_errors(_event(related=related)) == [
        ("related", "Related Resources must include the prefect.resource.role label")
    ]


def test_related_resource_with_an_empty_role_is_rejected() -> None:
    related = [{"prefect.resource.id": "prefect.deployment.d1", "prefect.resource.role": ""}]
    assert _event_errors(_event(related=related)) == [
        ("related", "The prefect.resource.role label must be non-empty")
    ]


def test_resource_may_have_five_hundred_labels_counting_its_id() -> None:
    labels = {"prefect.resource.id": "r", **{f"l{i}": "v" for i in range(499)}}
    assert len(parse_event(_event(resource=labels)).resource) == 500
    labels["one.more"] = "v"
    assert _event_errors(_event(resource=labels)) == [
        ("resource", "The maximum number of labels per resource is 500")
    ]


def test_event_may_have_a_hundred_related_resources() -> None:
    related = [{"prefect.resource.id": f"r{i}", "prefect.resource.role": "x"} for i in range(100)]
    assert len(parse_event(_event(related=related)).related) == 100
    related.append({"prefect.resource.id": "r100", "prefect.resource.role": "x"})
    assert _event_errors(_event(related=related)) == [
        ("related", "The maximum number of related resources is 100")
    ]


def test_event_name_may_be_1024_characters() -> None:
    assert len(parse_event(_event(event="x" * 1024)).event) == 1024


def test_longer_event_name_is_rejected_with_prefects_message() -> None:
    assert _event_errors(_event(event="x" * 1025)) == [
        ("event", "Event name must be at most 1024 characters")
    ]


@pytest.mark.parametrize("value", [None, 3])
def test_label_values_must_be_strings(value: Any) -> None:
    errors = _event_errors(_event(resource={"prefect.resource.id": "r", "env": value}))
    assert [loc.split(".")[0] for loc, _ in errors] == ["resource"]


def test_timestamp_without_a_zone_is_utc() -> None:
    event = parse_event(_event(occurred="2026-01-01T00:00:00"))
    assert event.occurred == datetime(2026, 1, 1, tzinfo=UTC)


def test_event_defaults_and_extra_fields() -> None:
    event = parse_event(_event(colour="red"))
    assert event.related == []
    assert event.payload == {}
    assert event.follows is None
