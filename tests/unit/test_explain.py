"""Explain: the live state per trigger and key, and the sentence why; self-trigger detection."""

from __future__ import annotations

from typing import Any

from service.core.explain import explain_state, merge_explanations, model_version
from service.core.self_trigger import self_triggering
from service.core.triggers import compile_automation
from service.state.memory import MemoryStateStore

from .conftest import (
    Driver,
    aid,
    at,
    automation,
    compound,
    eid,
    make_event,
    proactive,
    reactive,
    tid,
)


def explained(driver: Driver, name: str, moment: float, key: str | None = None) -> list[Any]:
    compiled = driver.engine.registry.by_id[aid(name)]
    part = explain_state(compiled, [driver.store], at(moment), key)
    return merge_explanations(compiled, [part], at(moment))


def test_reactive_bucket_counts_against_threshold_per_key() -> None:
    trigger = reactive(
        "t",
        expect=["prefect.flow-run.Failed"],
        for_each=["prefect.resource.id"],
        threshold=3,
        within=60,
    )
    driver = Driver(automation(trigger, name="a"))
    driver.run(
        make_event("e1", "prefect.flow-run.Failed", 10, resource="prefect.flow-run.x"),
        make_event("e2", "prefect.flow-run.Failed", 11, resource="prefect.flow-run.x"),
        make_event("e3", "prefect.flow-run.Failed", 12, resource="prefect.flow-run.y"),
    )
    [facts] = explained(driver, "a", 20)
    assert facts["trigger_id"] == tid("t")
    assert facts["path"] == "trigger"
    by_key = {b["key"]: b for b in facts["buckets"]}
    assert {k: b["count"] for k, b in by_key.items()} == {
        "prefect.flow-run.x": 2,
        "prefect.flow-run.y": 1,
    }
    x = by_key["prefect.flow-run.x"]
    assert x["labels"] == {"prefect.resource.id": "prefect.flow-run.x"}
    assert x["last_event_id"] == eid("e2")
    assert "2 of 3 events so far; it fires if 1 more arrive before" in x["explanation"]
    assert "after_seen" not in x
    assert facts["explanation"].startswith("2 open bucket(s)")

    [only_y] = explained(driver, "a", 20, key="prefect.flow-run.y")
    assert [b["count"] for b in only_y["buckets"]] == [1]


def test_a_reactive_window_that_ended_says_it_did_not_fire() -> None:
    trigger = reactive("t", expect=["prefect.flow-run.Failed"], threshold=2, within=30)
    driver = Driver(automation(trigger, name="a"))
    driver.run(make_event("e1", "prefect.flow-run.Failed", 10))
    [facts] = explained(driver, "a", 10 + 3600)
    [bucket] = facts["buckets"]
    assert "the window ended at" in bucket["explanation"]
    assert "did not fire" in bucket["explanation"]


def test_proactive_with_after_waits_then_reports_its_deadline() -> None:
    trigger = proactive(
        "p",
        after=["prefect.flow-run.Running"],
        expect=["prefect.flow-run.Completed"],
        for_each=["prefect.resource.id"],
        threshold=1,
        within=60,
    )
    driver = Driver(automation(trigger, name="a"))
    [waiting] = explained(driver, "a", 0)
    assert waiting["buckets"] == []
    assert "waiting for an `after` event (prefect.flow-run.Running)" in waiting["explanation"]

    driver.run(make_event("e1", "prefect.flow-run.Running", 10))
    [facts] = explained(driver, "a", 20)
    [bucket] = facts["buckets"]
    assert bucket["after_seen"] is True
    assert bucket["count"] == 0
    assert bucket["held_events"] == 0
    assert "an `after` event opened this window" in bucket["explanation"]
    assert "unless 1 more arrive before then" in bucket["explanation"]


def test_compound_lists_stored_children_and_what_is_missing() -> None:
    root = compound(
        "c",
        [
            reactive("a1", expect=["prefect.flow-run.Failed"]),
            reactive("a2", expect=["prefect.flow-run.Crashed"]),
        ],
        require="all",
        within=300,
    )
    driver = Driver(automation(root, name="a"))
    driver.run(make_event("e1", "prefect.flow-run.Failed", 10))
    composite, first, second = explained(driver, "a", 20)
    assert composite["type"] == "compound"
    assert [c["trigger_id"] for c in composite["children"]] == [tid("a1")]
    assert composite["explanation"].startswith("1 of the 2 required child firings are stored")
    assert "within 300 s" in composite["explanation"]
    assert (first["path"], second["path"]) == ("trigger.triggers[0]", "trigger.triggers[1]")


def test_merging_joins_the_shares_of_several_workers() -> None:
    trigger = reactive(
        "t", expect=["prefect.flow-run.Failed"], for_each=["prefect.resource.id"], threshold=5
    )
    driver = Driver(automation(trigger, name="a"))
    driver.run(
        make_event("e1", "prefect.flow-run.Failed", 10, resource="prefect.flow-run.x"),
        make_event("e2", "prefect.flow-run.Failed", 10, resource="prefect.flow-run.y"),
    )
    compiled = driver.engine.registry.by_id[aid("a")]
    full = explain_state(compiled, [driver.store], at(20))
    # Two workers, each holding one key's bucket.
    share_x = [{**full[0], "buckets": [b for b in full[0]["buckets"] if b["key"].endswith("x")]}]
    share_y = [{**full[0], "buckets": [b for b in full[0]["buckets"] if b["key"].endswith("y")]}]
    [merged] = merge_explanations(compiled, [share_x, share_y], at(20))
    assert [b["key"] for b in merged["buckets"]] == ["prefect.flow-run.x", "prefect.flow-run.y"]


def test_a_disabled_automation_is_explained_from_its_definition() -> None:
    model = automation(reactive("t", expect=["x"]), name="off", enabled=False)
    compiled = compile_automation(model)
    [facts] = explain_state(compiled, [MemoryStateStore()], at(0))
    [merged] = merge_explanations(compiled, [[facts]], at(0))
    assert merged["explanation"].startswith("The automation is disabled")


def test_model_version_changes_with_the_definition_only() -> None:
    one = automation(reactive("t", expect=["x"], threshold=1), name="v")
    same = automation(reactive("t", expect=["x"], threshold=1), name="v")
    other = automation(reactive("t", expect=["x"], threshold=2), name="v")
    assert model_version(one) == model_version(same)
    assert model_version(one) != model_version(other)


def test_self_triggering_is_detected_by_the_matcher_itself() -> None:
    looping = automation(reactive("t", expect=["prefect.automation.*"]), name="loop")
    assert self_triggering(looping) == [tid("t")]
    everything = automation(reactive("t"), name="all")
    assert self_triggering(everything) == [tid("t")], "an empty expect expects everything"
    others = automation(
        reactive(
            "t",
            expect=["prefect.automation.triggered"],
            match={"prefect.resource.id": "prefect.automation.someone-else"},
        ),
        name="others",
    )
    assert self_triggering(others) == []
    named = automation(
        reactive(
            "t",
            expect=["prefect.automation.triggered"],
            match={"prefect.resource.name": "named"},
        ),
        name="named",
    )
    assert self_triggering(named) == [tid("t")], "matched by its own name"
    nested = automation(
        compound(
            "c",
            [reactive("a", expect=["prefect.flow-run.Failed"]), reactive("b", expect=["*"])],
            require="any",
            within=None,
        ),
        name="nested",
    )
    assert self_triggering(nested) == [tid("b")]
