"""The per-trigger bucket bound: a trigger at its limit keeps its keys, refuses new ones."""

from __future__ import annotations

from service.config import Settings
from service.core.evaluator import evaluate_event
from service.core.limits import may_open_bucket
from service.core.registry import Registry
from service.core.store import BucketKey
from service.core.triggers import CompiledEventTrigger
from service.state.documents import DocumentStore
from service.state.memory import MemoryStateStore

from .conftest import at, automation, make_event, reactive

FAILED = "prefect.flow-run.Failed"


def _trigger() -> CompiledEventTrigger:
    auto = automation(
        reactive(
            "per-run",
            expect=[FAILED],
            for_each=["prefect.resource.id"],
            threshold=2,
            within=600,
        )
    )
    (trigger,) = Registry.build([auto]).event_triggers.values()
    return trigger


def _feed(store: MemoryStateStore, limit: int, runs: list[str]) -> tuple[list[str], list[str]]:
    """Evaluate one Failed event per run name, as the evaluate agent does with the check."""
    trigger = _trigger()
    fired: list[str] = []
    refused: list[str] = []
    for n, run in enumerate(runs):
        event = make_event(f"e{n}", FAILED, n, resource=f"prefect.flow-run.{run}")
        key: BucketKey = trigger.bucketing_key(event)
        if not may_open_bucket(store, trigger.id, key, limit):
            refused.append(run)
            continue
        fired += [run for _ in evaluate_event(trigger, key, event, at(n), store)]
    return fired, refused


def test_new_keys_are_refused_at_the_limit_while_open_buckets_keep_counting() -> None:
    store = DocumentStore()
    fired, refused = _feed(store, 2, ["r1", "r2", "r3", "r1", "r4", "r2"])
    assert refused == ["r3", "r4"]
    assert fired == ["r1", "r2"]  # each opened bucket reached its threshold of 2
    assert store.trigger_bucket_count(_trigger().id) == 2


def test_a_closed_bucket_frees_its_place() -> None:
    store = MemoryStateStore()
    trigger = _trigger()
    _feed(store, 1, ["r1"])
    (key,) = [k for k, _ in store.buckets(trigger.id)]
    assert not may_open_bucket(store, trigger.id, ("prefect.flow-run.r2",), 1)
    store.delete_bucket(trigger.id, key)
    assert store.trigger_bucket_count(trigger.id) == 0
    assert may_open_bucket(store, trigger.id, ("prefect.flow-run.r2",), 1)


def test_the_bound_is_a_setting_with_a_generous_default() -> None:
    assert Settings().max_buckets_per_trigger == 1_000_000
    assert Settings(max_buckets_per_trigger=5).max_buckets_per_trigger == 5
