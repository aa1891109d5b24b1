"""The bucketing key: `for_each` selectors, related-resource lookups, missing values (spec §5)."""

from __future__ import annotations

from .conftest import Driver, Fired, automation, make_event, reactive, related_resource

FAILED = "prefect.flow-run.Failed"
DEPLOYMENT_ID = "related:deployment:prefect.resource.id"


def _pairs(for_each: list[str]) -> Driver:
    """Threshold 2 within 60: a key fires on its second event."""
    return Driver(
        automation(reactive("t", expect=[FAILED], for_each=for_each, threshold=2, within=60))
    )


def test_each_key_counts_on_its_own() -> None:
    d = _pairs(["prefect.resource.id"])
    assert d.send(make_event("a1", FAILED, 0, resource="prefect.flow-run.a")) == []
    assert d.send(make_event("b1", FAILED, 10, resource="prefect.flow-run.b")) == []
    assert d.send(make_event("a2", FAILED, 20, resource="prefect.flow-run.a")) == [
        Fired("t", 20, "a2", {"prefect.resource.id": "prefect.flow-run.a"})
    ]


def test_without_for_each_one_bucket_serves_every_resource() -> None:
    d = _pairs([])
    assert d.send(make_event("a", FAILED, 0, resource="prefect.flow-run.a")) == []
    assert d.send(make_event("b", FAILED, 10, resource="prefect.flow-run.b")) == [
        Fired("t", 10, "b", {})
    ]


def test_firing_labels_list_the_selectors_in_sorted_order() -> None:
    d = _pairs(["prefect.resource.id", "env", "zone"])
    resource = {"prefect.resource.id": "prefect.flow-run.a", "env": "dev", "zone": "z1"}
    d.send(make_event("e1", FAILED, 0, resource=resource))
    (fired,) = d.send(make_event("e2", FAILED, 10, resource=resource))
    assert fired.bucket == {"env": "dev", "prefect.resource.id": "prefect.flow-run.a", "zone": "z1"}
    assert list(fired.bucket) == ["env", "prefect.resource.id", "zone"]


def test_key_values_follow_their_selectors_whatever_order_for_each_is_written_in() -> None:
    d = _pairs(["b", "a"])
    base = {"prefect.resource.id": "prefect.flow-run.r"}
    assert d.send(make_event("x1", FAILED, 0, resource={**base, "a": "1", "b": "2"})) == []
    assert d.send(make_event("y1", FAILED, 5, resource={**base, "a": "2", "b": "1"})) == []
    assert d.send(make_event("x2", FAILED, 10, resource={**base, "a": "1", "b": "2"})) == [
        Fired("t", 10, "x2", {"a": "1", "b": "2"})
    ]


def test_missing_label_is_the_empty_string_and_shares_its_bucket() -> None:
    d = _pairs(["env"])
    assert d.send(make_event("none", FAILED, 0)) == []
    empty = {"prefect.resource.id": "prefect.flow-run.r1", "env": ""}
    assert d.send(make_event("empty", FAILED, 10, resource=empty)) == [
        Fired("t", 10, "empty", {"env": ""})
    ]


def test_related_selector_uses_the_first_resource_in_the_role() -> None:
    d = _pairs([DEPLOYMENT_ID])
    related = [
        related_resource("flow", "prefect.flow.f1"),
        related_resource("deployment", "prefect.deployment.d1"),
        related_resource("deployment", "prefect.deployment.d2"),
    ]
    d.send(make_event("e1", FAILED, 0, related=related))
    assert d.send(make_event("e2", FAILED, 10, related=related)) == [
        Fired("t", 10, "e2", {DEPLOYMENT_ID: "prefect.deployment.d1"})
    ]


def test_related_selector_does_not_look_past_a_first_resource_lacking_the_label() -> None:
    selector = "related:deployment:prefect.resource.name"
    d = _pairs([selector])
    related = [
        related_resource("deployment", "prefect.deployment.d1"),
        related_resource("deployment", "prefect.deployment.d2", **{"prefect.resource.name": "n2"}),
    ]
    d.send(make_event("e1", FAILED, 0, related=related))
    assert d.send(make_event("e2", FAILED, 10, related=related)) == [
        Fired("t", 10, "e2", {selector: ""})
    ]


def test_runs_without_the_role_share_the_empty_bucket() -> None:
    d = _pairs([DEPLOYMENT_ID])
    d1 = [related_resource("deployment", "prefect.deployment.d1")]
    assert d.send(make_event("with_d1", FAILED, 0, related=d1)) == []
    assert d.send(make_event("bare1", FAILED, 5)) == []
    assert d.send(make_event("bare2", FAILED, 10, resource="prefect.flow-run.r2")) == [
        Fired("t", 10, "bare2", {DEPLOYMENT_ID: ""})
    ]


def test_missing_role_falls_back_to_the_primary_label_named_by_the_whole_selector() -> None:
    d = _pairs([DEPLOYMENT_ID])
    odd = {"prefect.resource.id": "prefect.flow-run.r1", DEPLOYMENT_ID: "weird"}
    d.send(make_event("e1", FAILED, 0, resource=odd))
    assert d.send(make_event("e2", FAILED, 10, resource=odd)) == [
        Fired("t", 10, "e2", {DEPLOYMENT_ID: "weird"})
    ]


def test_role_may_contain_colons() -> None:
    selector = "related:team:ops:prefect.resource.id"
    d = _pairs([selector])
    related = [
        related_resource("team", "prefect.team.plain"),
        related_resource("team:ops", "prefect.team.ops"),
    ]
    d.send(make_event("e1", FAILED, 0, related=related))
    assert d.send(make_event("e2", FAILED, 10, related=related)) == [
        Fired("t", 10, "e2", {selector: "prefect.team.ops"})
    ]


def test_label_part_is_after_the_last_colon() -> None:
    # "related:deployment:foo:bar" is role "deployment:foo", label "bar": a deployment
    # resource carrying a "foo:bar" label is not consulted.
    selector = "related:deployment:foo:bar"
    d = _pairs([selector])
    related = [related_resource("deployment", "prefect.deployment.d1", **{"foo:bar": "v"})]
    d.send(make_event("e1", FAILED, 0, related=related))
    assert d.send(make_event("e2", FAILED, 10, related=related)) == [
        Fired("t", 10, "e2", {selector: ""})
    ]


def test_selector_with_colons_not_starting_with_related_is_a_primary_label() -> None:
    d = _pairs(["x:y"])
    resource = {"prefect.resource.id": "prefect.flow-run.r1", "x:y": "v"}
    d.send(make_event("e1", FAILED, 0, resource=resource))
    assert d.send(make_event("e2", FAILED, 10, resource=resource)) == [
        Fired("t", 10, "e2", {"x:y": "v"})
    ]
