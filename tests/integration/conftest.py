"""Fixtures: one real Tansu broker per test session; one isolated cluster per test."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from service.messaging.broker import EmbeddedBroker, free_port, wait_ready
from tests.integration.harness import Cluster


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    embedded = EmbeddedBroker("127.0.0.1", free_port(), log)
    embedded.start()
    try:
        asyncio.run(wait_ready(embedded.bootstrap))
        yield embedded
    finally:
        embedded.stop()


@pytest.fixture
def cluster(broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Cluster]:
    world = Cluster(broker.bootstrap, tmp_path)
    world.create_topics()
    try:
        yield world
    finally:
        world.stop_all()
