"""The integration suite's fixtures: one real Tansu broker, one isolated cluster per test."""

from tests.integration.conftest import broker, cluster

__all__ = ["broker", "cluster"]
