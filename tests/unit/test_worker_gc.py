"""The worker's garbage-collector tuning: fewer young collections, start-up objects frozen."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from service.config import Settings
from service.worker import tune_garbage_collector


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


@pytest.mark.usefixtures("restored_gc")
def test_the_threshold_is_set_and_start_up_objects_are_frozen() -> None:
    _, older, oldest = gc.get_threshold()
    tune_garbage_collector(Settings().gc_threshold)
    assert gc.get_threshold() == (100_000, older, oldest)
    assert gc.get_freeze_count() > 0


@pytest.mark.usefixtures("restored_gc")
def test_zero_keeps_pythons_collector_as_it_is() -> None:
    before = gc.get_threshold()
    tune_garbage_collector(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
