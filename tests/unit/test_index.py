"""The trigger index finds exactly the triggers a brute-force `covers` scan finds (spec §4)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.index import TriggerIndex
from service.core.records import EventRecord
from service.core.triggers import CompiledEventTrigger, compile_automation

from .conftest import automation, make_event, reactive, tid

EVENT_NAMES = ["a.x", "a.y", "a.xy", "a.", "a.x.z", "b.x", "ab.x", "a?x"]
NAME_PATTERNS = [
    "a.x", "a.y", "a.*", "*.x", "*", "a.x*", "a*", "!a.x", "!b.*", "a.?", "a?x",
    "[ab].x", "b.*", "a.x.z", "*.*.z",
]  # fmt: skip
RESOURCE_IDS = ["r1", "r2", "r10", "q1"]
ID_PATTERNS = ["r1", "r2", "r10", "r*", "!r1", "r?", "q1", "*"]
ENVS = ["dev", "prod", "dev-x"]
ENV_PATTERNS = ["dev", "dev*", "!dev", "prod", "!prod-*"]
ROLES = ["deployment", "tag"]
RELATED_IDS = ["d1", "d2", "t1"]
RELATED_ID_PATTERNS = ["d1", "d2", "d*", "!d1", "t1", "*"]


def _one_or_list(patterns: list[str]) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(patterns), st.lists(st.sampled_from(patterns), max_size=3))


def _spec(labels: dict[str, list[str]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries({}, optional={k: _one_or_list(v) for k, v in labels.items()})


_match = _spec({"prefect.resource.id": ID_PATTERNS, "env": ENV_PATTERNS})
_related_spec = _spec({"prefect.resource.role": ROLES, "prefect.resource.id": RELATED_ID_PATTERNS})
_match_related = st.one_of(_related_spec, st.lists(_related_spec, max_size=3))


@st.composite
def _event_trigger(draw: st.DrawFn, name: str) -> dict[str, Any]:
    return reactive(
        name,
        posture=draw(st.sampled_from(["Reactive", "Proactive"])),
        within=10,
        expect=draw(st.lists(st.sampled_from(NAME_PATTERNS), max_size=3)),
        after=draw(st.lists(st.sampled_from(NAME_PATTERNS), max_size=2)),
        match=draw(_match),
        match_related=draw(_match_related),
    )


@st.composite
def _automations(draw: st.DrawFn) -> list[CompiledEventTrigger]:
    triggers: list[CompiledEventTrigger] = []
    for number in range(draw(st.integers(min_value=1, max_value=6))):
        if draw(st.booleans()):
            root = draw(_event_trigger(f"auto{number}"))
        else:  # nested triggers are indexed like top-level ones
            children = [draw(_event_trigger(f"auto{number}.{i}")) for i in range(2)]
            root = {
                "type": "compound",
                "id": tid(f"auto{number}"),
                "triggers": children,
                "require": "all",
                "within": None,
            }
        compiled = compile_automation(automation(root, name=f"auto{number}"), number)
        triggers += compiled.event_triggers()
    return triggers


@st.composite
def _events(draw: st.DrawFn) -> EventRecord:
    resource = {"prefect.resource.id": draw(st.sampled_from(RESOURCE_IDS))}
    if draw(st.booleans()):
        resource["env"] = draw(st.sampled_from(ENVS))
    related = [
        {"prefect.resource.role": role, "prefect.resource.id": rid}
        for role, rid in draw(
            st.lists(st.tuples(st.sampled_from(ROLES), st.sampled_from(RELATED_IDS)), max_size=3)
        )
    ]
    name = draw(st.sampled_from(EVENT_NAMES))
    return make_event("e", name, 0, resource=resource, related=related)


@settings(max_examples=400, database=None, deadline=None)
@given(triggers=_automations(), events=st.lists(_events(), min_size=1, max_size=5))
def test_index_returns_exactly_the_triggers_a_brute_force_scan_covers(
    triggers: list[CompiledEventTrigger], events: list[EventRecord]
) -> None:
    index = TriggerIndex(triggers)
    assert len(index) == len(triggers)
    for event in events:
        expected = Counter(t.id for t in triggers if t.covers(event))
        assert Counter(t.id for t in index.interested(event)) == expected


def test_index_finds_triggers_anchored_on_resource_related_and_name() -> None:
    by_resource = reactive("by_resource", expect=["a.*"], match={"prefect.resource.id": "r1"})
    by_related = reactive("by_related", expect=["a.x"], match_related={"prefect.resource.id": "d1"})
    by_name = reactive("by_name", expect=["a.x"])
    by_glob = reactive("by_glob", expect=["*.x"])
    triggers = [
        t
        for number, root in enumerate([by_resource, by_related, by_name, by_glob])
        for t in compile_automation(automation(root, name=f"n{number}"), number).event_triggers()
    ]
    index = TriggerIndex(triggers)
    related = [{"prefect.resource.role": "deployment", "prefect.resource.id": "d1"}]
    hit_all = make_event("e1", "a.x", 0, resource="r1", related=related)
    assert {t.id for t in index.interested(hit_all)} == {
        tid("by_resource"),
        tid("by_related"),
        tid("by_name"),
        tid("by_glob"),
    }
    other = make_event("e2", "b.x", 0, resource="r2")
    assert {t.id for t in index.interested(other)} == {tid("by_glob")}
