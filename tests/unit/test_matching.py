"""Which events concern a trigger: label globs, `match_related`, event-name patterns (spec §4)."""

from __future__ import annotations

from service.core.records import EventRecord

from .conftest import Driver, Fired, automation, fires_on, make_event, reactive, related_resource

FAILED = "prefect.flow-run.Failed"


def _with_labels(name: str, **labels: str) -> EventRecord:
    resource = {"prefect.resource.id": "prefect.flow-run.r1", **labels}
    return make_event(name, FAILED, 0, resource=resource)


def _label_trigger(match: dict[str, object]) -> dict[str, object]:
    return reactive("t", expect=[FAILED], match=match)


# -- §4.2 resource labels -------------------------------------------------------------


def test_label_star_is_a_glob_anywhere_in_the_value() -> None:
    trigger = _label_trigger({"prefect.resource.id": "prefect.*-run.*"})
    events = [
        make_event("flow", FAILED, 0, resource="prefect.flow-run.1"),
        make_event("task", FAILED, 0, resource="prefect.task-run.1"),
        make_event("deployment", FAILED, 0, resource="prefect.deployment.1"),
    ]
    assert fires_on(trigger, *events) == [True, True, False]


def test_label_star_may_match_zero_characters() -> None:
    trigger = _label_trigger({"env": "dev*"})
    assert fires_on(trigger, _with_labels("a", env="dev"), _with_labels("b", env="de")) == [
        True,
        False,
    ]


def test_label_question_mark_matches_exactly_one_character() -> None:
    trigger = _label_trigger({"env": "nightly-??"})
    events = [
        _with_labels("two", env="nightly-01"),
        _with_labels("one", env="nightly-1"),
        _with_labels("three", env="nightly-001"),
    ]
    assert fires_on(trigger, *events) == [True, False, False]


def test_label_character_class_matches_one_of_its_characters() -> None:
    trigger = _label_trigger({"env": "prod-[ab]"})
    events = [_with_labels("a", env="prod-a"), _with_labels("c", env="prod-c")]
    assert fires_on(trigger, *events) == [True, False]


def test_label_matching_is_case_sensitive_and_whole_value() -> None:
    trigger = _label_trigger({"env": "prod"})
    events = [
        _with_labels("exact", env="prod"),
        _with_labels("upper", env="Prod"),
        _with_labels("longer", env="production"),
    ]
    assert fires_on(trigger, *events) == [True, False, False]


def test_leading_bang_negates_the_whole_label_glob() -> None:
    trigger = _label_trigger({"env": "!prod-*"})
    events = [_with_labels("dev", env="dev-1"), _with_labels("prod", env="prod-1")]
    assert fires_on(trigger, *events) == [True, False]


def test_missing_label_never_matches_even_a_negated_pattern() -> None:
    trigger = _label_trigger({"env": "!dev"})
    events = [
        _with_labels("missing"),
        _with_labels("other", env="qa"),
        _with_labels("dev", env="dev"),
    ]
    assert fires_on(trigger, *events) == [False, True, False]


def test_patterns_in_a_list_are_ored() -> None:
    trigger = _label_trigger({"env": ["dev", "qa"]})
    events = [
        _with_labels("dev", env="dev"),
        _with_labels("qa", env="qa"),
        _with_labels("prod", env="prod"),
    ]
    assert fires_on(trigger, *events) == [True, True, False]


def test_labels_of_a_spec_are_anded() -> None:
    trigger = _label_trigger({"env": "dev", "team": "x"})
    events = [
        _with_labels("both", env="dev", team="x"),
        _with_labels("wrong_team", env="dev", team="y"),
        _with_labels("no_team", env="dev"),
    ]
    assert fires_on(trigger, *events) == [True, False, False]


def test_two_negations_in_a_list_match_every_present_value() -> None:
    trigger = _label_trigger({"env": ["!a", "!b"]})
    events = [
        _with_labels("a", env="a"),
        _with_labels("b", env="b"),
        _with_labels("c", env="c"),
        _with_labels("missing"),
    ]
    assert fires_on(trigger, *events) == [True, True, True, False]


def test_glob_or_its_own_exception_matches_every_present_value() -> None:
    trigger = _label_trigger({"env": ["dev-*", "!dev-x"]})
    events = [
        _with_labels("x", env="dev-x"),
        _with_labels("y", env="dev-y"),
        _with_labels("prod", env="prod"),
    ]
    assert fires_on(trigger, *events) == [True, True, True]


def test_empty_pattern_list_for_a_label_matches_nothing() -> None:
    trigger = _label_trigger({"env": []})
    assert fires_on(trigger, _with_labels("dev", env="dev")) == [False]


def test_empty_match_spec_matches_every_resource() -> None:
    trigger = _label_trigger({})
    events = [
        make_event("flow", FAILED, 0, resource="prefect.flow-run.1"),
        make_event("other", FAILED, 0, resource="anything.at.all"),
    ]
    assert fires_on(trigger, *events) == [True, True]


def test_match_looks_at_the_primary_resource_only() -> None:
    trigger = _label_trigger({"prefect.resource.id": "prefect.deployment.d1"})
    event = make_event(
        "e", FAILED, 0, related=[related_resource("deployment", "prefect.deployment.d1")]
    )
    assert fires_on(trigger, event) == [False]


# -- §4.3 match_related ---------------------------------------------------------------


def _related_trigger(match_related: object) -> dict[str, object]:
    return reactive("t", expect=[FAILED], match_related=match_related)


def _with_related(name: str, *related: dict[str, str]) -> EventRecord:
    return make_event(name, FAILED, 0, related=list(related))


def test_match_related_object_needs_one_resource_meeting_every_label() -> None:
    trigger = _related_trigger(
        {"prefect.resource.role": "deployment", "prefect.resource.id": "prefect.deployment.d1"}
    )
    split = _with_related(
        "split",
        related_resource("tag", "prefect.deployment.d1"),
        related_resource("deployment", "prefect.deployment.d2"),
    )
    together = _with_related("together", related_resource("deployment", "prefect.deployment.d1"))
    assert fires_on(trigger, split, together) == [False, True]


def test_empty_match_related_object_passes_without_related_resources() -> None:
    assert fires_on(_related_trigger({}), _with_related("bare")) == [True]


def test_non_empty_match_related_object_fails_without_related_resources() -> None:
    trigger = _related_trigger({"prefect.resource.role": "deployment"})
    assert fires_on(trigger, _with_related("bare")) == [False]


def test_role_is_an_ordinary_label_so_any_role_qualifies_without_it() -> None:
    trigger = _related_trigger({"prefect.resource.id": "prefect.tag.x"})
    events = [
        _with_related("as_tag", related_resource("tag", "prefect.tag.x")),
        _with_related("as_other", related_resource("something", "prefect.tag.x")),
        _with_related("different", related_resource("tag", "prefect.tag.y")),
    ]
    assert fires_on(trigger, *events) == [True, True, False]


def test_match_related_list_may_be_met_by_different_resources() -> None:
    trigger = _related_trigger(
        [{"prefect.resource.role": "deployment"}, {"prefect.resource.role": "work-pool"}]
    )
    both = _with_related(
        "both",
        related_resource("deployment", "prefect.deployment.d1"),
        related_resource("work-pool", "prefect.work-pool.p1"),
    )
    one = _with_related("one", related_resource("deployment", "prefect.deployment.d1"))
    assert fires_on(trigger, both, one) == [True, False]


def test_match_related_list_may_be_met_by_the_same_resource() -> None:
    trigger = _related_trigger(
        [{"prefect.resource.role": "deployment"}, {"prefect.resource.id": "prefect.deployment.*"}]
    )
    event = _with_related("one", related_resource("deployment", "prefect.deployment.d1"))
    assert fires_on(trigger, event) == [True]


def test_empty_match_related_list_matches_every_event() -> None:
    trigger = _related_trigger([])
    events = [
        _with_related("bare"),
        _with_related("tagged", related_resource("tag", "prefect.tag.x")),
    ]
    assert fires_on(trigger, *events) == [True, True]


def test_glob_but_not_one_value_is_written_as_two_related_objects() -> None:
    pool = {"prefect.resource.role": "work-pool"}
    trigger = _related_trigger(
        [
            {**pool, "prefect.resource.id": "prefect.work-pool.dev-*"},
            {**pool, "prefect.resource.id": "!prefect.work-pool.dev-x"},
        ]
    )
    events = [
        _with_related("dev_a", related_resource("work-pool", "prefect.work-pool.dev-a")),
        _with_related("dev_x", related_resource("work-pool", "prefect.work-pool.dev-x")),
        _with_related("prod", related_resource("work-pool", "prefect.work-pool.prod")),
    ]
    assert fires_on(trigger, *events) == [True, False, False]


def test_negation_on_a_many_resource_role_excludes_only_events_with_that_value_alone() -> None:
    trigger = _related_trigger(
        {"prefect.resource.role": "tag", "prefect.resource.id": "!prefect.tag.dev"}
    )
    events = [
        _with_related(
            "dev_and_prod",
            related_resource("tag", "prefect.tag.dev"),
            related_resource("tag", "prefect.tag.prod"),
        ),
        _with_related("only_dev", related_resource("tag", "prefect.tag.dev")),
        _with_related("no_tags"),
    ]
    assert fires_on(trigger, *events) == [True, False, False]


# -- §4.1 event names -------------------------------------------------------------------


def _names(expect: list[str], *names: str) -> list[bool]:
    trigger = reactive("t", expect=expect)
    return fires_on(trigger, *(make_event(f"n{i}", n, 0) for i, n in enumerate(names)))


def test_event_name_star_is_a_wildcard_anywhere() -> None:
    assert _names(
        ["prefect.*.Failed"],
        "prefect.flow-run.Failed",
        "prefect.task-run.Failed",
        "prefect.flow-run.Completed",
    ) == [True, True, False]


def test_event_name_may_hold_several_stars() -> None:
    assert _names(
        ["prefect.*.*ed"],
        "prefect.flow-run.Failed",
        "prefect.flow-run.Running",
    ) == [True, False]


def test_event_name_star_needs_at_least_one_character() -> None:
    assert _names(
        ["prefect.flow-run.Failed*"],
        "prefect.flow-run.Failed",
        "prefect.flow-run.FailedOver",
    ) == [False, True]


def test_event_name_match_is_case_sensitive_and_whole_name() -> None:
    assert _names(
        ["prefect.flow-run.Fail"],
        "prefect.flow-run.Failed",
        "prefect.flow-run.Fail",
    ) == [False, True]
    assert _names([FAILED], "prefect.flow-run.failed", "prefect.flow-run.FailedOver") == [
        False,
        False,
    ]


def test_question_mark_in_an_event_pattern_is_a_literal_character() -> None:
    assert _names(
        ["prefect.flow-run.Faile?"],
        "prefect.flow-run.Failed",
        "prefect.flow-run.Faile?",
    ) == [False, True]


def test_character_class_in_an_event_pattern_matches_nothing() -> None:
    assert _names(
        ["prefect.flow-run.[FC]ailed"],
        "prefect.flow-run.Failed",
        "prefect.flow-run.Cailed",
        "prefect.flow-run.[FC]ailed",
    ) == [False, False, False]


def test_negated_event_pattern_alone_admits_nothing() -> None:
    assert _names(
        ["!prefect.flow-run.Completed"],
        "prefect.flow-run.Failed",
        "prefect.flow-run.Completed",
    ) == [False, False]


def test_empty_expect_matches_every_event_name() -> None:
    assert _names([], "prefect.flow-run.Failed", "something.else") == [True, True]


def test_negation_in_expect_makes_admitted_after_events_expected() -> None:
    # `!Running` lets nothing in by itself, but Pending (admitted through `after`) does
    # not fit it, so Pending is also expected: it opens at -1, counts to 0, and a second
    # Pending in the window is counted and fires (spec §4.1, §6.1).
    pending = "prefect.flow-run.Pending"
    mixed = reactive(
        "t",
        after=[pending],
        expect=["prefect.flow-run.Completed", "!prefect.flow-run.Running"],
        within=60,
    )
    plain = reactive("plain", after=[pending], expect=["prefect.flow-run.Completed"], within=60)
    d = Driver(automation(mixed, name="mixed"), automation(plain, name="plain"))
    assert d.send(make_event("p1", pending, 0)) == []
    assert d.send(make_event("p2", pending, 5)) == [Fired("t", 5, "p2")]
    assert d.send(make_event("c", "prefect.flow-run.Completed", 10)) == [Fired("plain", 10, "c")]


def test_negation_in_after_makes_admitted_expected_events_open_their_own_window() -> None:
    # Completed does not fit `!Cancelled`, so it is an `after` event as well as an expected
    # one: the first Completed opens a window at -1 + 1 = 0, the second fires.
    completed = "prefect.flow-run.Completed"
    mixed = reactive(
        "t",
        after=["prefect.flow-run.Pending", "!prefect.flow-run.Cancelled"],
        expect=[completed],
        within=60,
    )
    plain = reactive("plain", after=["prefect.flow-run.Pending"], expect=[completed], within=60)
    d = Driver(automation(mixed, name="mixed"), automation(plain, name="plain"))
    assert d.send(make_event("c1", completed, 0)) == []
    assert d.send(make_event("c2", completed, 10)) == [Fired("t", 10, "c2")]


def test_empty_expect_with_after_counts_the_after_events_too() -> None:
    pending = "prefect.flow-run.Pending"
    trigger = reactive("t", after=[pending], expect=[], threshold=2, within=60)
    d = Driver(automation(trigger))
    assert d.send(make_event("lonely", "anything.else", 0)) == []  # no window yet
    assert d.send(make_event("p1", pending, 10)) == []  # opens at -1, counted: 0
    assert d.send(make_event("p2", pending, 20)) == []  # 1
    assert d.send(make_event("x", "anything.else", 30)) == [Fired("t", 30, "x")]  # 2


def test_after_only_event_opens_a_window_but_is_never_counted() -> None:
    pending = "prefect.flow-run.Pending"
    trigger = reactive("t", after=[pending], expect=["prefect.flow-run.Completed"], within=60)
    d = Driver(automation(trigger))
    assert d.send(make_event("p1", pending, 0)) == []
    assert d.send(make_event("p2", pending, 10)) == []
    assert d.send(make_event("c", "prefect.flow-run.Completed", 20)) == [Fired("t", 20, "c")]
