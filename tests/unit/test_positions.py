"""Match positions: the redelivery guard's key must not depend on other triggers' order."""

from __future__ import annotations

from service.core.routing import Match
from service.core.triggers import compile_automation
from topologies.route import with_positions

from .conftest import automation, make_event, reactive


def _matches(order: list[str]) -> list[Match]:
    compiled = {}
    for name in ("a", "b", "c"):
        model = automation(reactive(name, expect=["x"]), name=name)
        compiled[name] = compile_automation(model).event_triggers()[0]
    event = make_event("e", "x", 1)
    return [Match(compiled[n], (), event, 0) for n in order]


def test_a_buckets_position_is_the_same_whatever_order_the_triggers_come_in() -> None:
    first = {m.trigger.id: pos for m, pos in with_positions(_matches(["a", "b", "c"]), 3, 70)}
    again = {m.trigger.id: pos for m, pos in with_positions(_matches(["c", "a", "b"]), 3, 70)}
    assert first == again
    assert set(first.values()) == {(3, 70, 0)}


def test_repeated_matches_of_one_bucket_in_one_routing_get_increasing_ordinals() -> None:
    positions = [pos for _, pos in with_positions(_matches(["a", "b", "a", "a"]), 0, 5)]
    assert positions == [(0, 5, 0), (0, 5, 0), (0, 5, 1), (0, 5, 2)]
