"""Causal order survives a stop: seen ids and held followers are durable (issue 19).

Before, both lived in process memory: after any restart a follower whose leader was
processed before it waited out the 15-minute lost-follower timeout, and a follower held
when a SIGKILL came after its offset was committed was lost for good. Now both are
documents of the route table (RocksDB and a changelog, per events partition).
"""

from __future__ import annotations

import signal
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from service.models.automations import parse_automations
from tests.integration.api_harness import wait_worker_ready
from tests.integration.harness import Cluster, changelog_topic, flow_run_event

# Far below the 15-minute lost-follower timeout that a forgotten leader costs.
RELEASED_WITHIN = 60
COMMITTED = 4.0  # seconds: past Faust's 2.8 s commit interval


def _reacts_to(state: str) -> dict[str, Any]:
    return {
        "name": state.lower(),
        "trigger": {
            "type": "event",
            "posture": "Reactive",
            "expect": [f"prefect.flow-run.{state}"],
            "for_each": ["prefect.resource.id"],
            "threshold": 1,
            "within": 0,
        },
        "actions": [{"type": "do-nothing"}],
    }


def _leader_and_follower() -> tuple[dict[str, Any], dict[str, Any]]:
    now = datetime.now(UTC)
    leader = flow_run_event("r1", "Running", now, number=1)
    follower = flow_run_event("r1", "Completed", now + timedelta(seconds=1), number=2)
    follower["follows"] = leader["id"]
    return leader, follower


def _fired(cluster: Cluster, names: set[str], timeout: float) -> set[str]:
    firings = cluster.firings(
        lambda recs: {r["automation_name"] for r in recs} >= names, timeout, 0.5
    )
    return {f["automation_name"] for f in firings}


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_a_follower_of_a_leader_processed_before_a_stop_is_released_at_once(
    cluster: Cluster, sig: signal.Signals
) -> None:
    cluster.publish(parse_automations([_reacts_to("Running"), _reacts_to("Completed")]))
    leader, follower = _leader_and_follower()
    first = cluster.start_worker("w1")
    wait_worker_ready(first)
    cluster.produce_events([leader])
    assert _fired(cluster, {"running"}, 60) == {"running"}
    time.sleep(COMMITTED)
    first.stop(sig)

    second = cluster.start_worker("w2")
    wait_worker_ready(second)
    started = time.monotonic()
    cluster.produce_events([follower])
    assert _fired(cluster, {"running", "completed"}, RELEASED_WITHIN) == {"running", "completed"}
    print(f"\nRELIABILITY follower after {sig.name}: {time.monotonic() - started:.1f} s")


def test_a_follower_held_when_the_worker_is_killed_is_released_by_its_leader_later(
    cluster: Cluster,
) -> None:
    cluster.publish(parse_automations([_reacts_to("Running"), _reacts_to("Completed")]))
    leader, follower = _leader_and_follower()
    first = cluster.start_worker("w1")
    wait_worker_ready(first)
    cluster.produce_events([follower])  # its leader has not come: held
    held = cluster.read(
        changelog_topic(cluster.settings, "route"),
        lambda recs: any(r.key.startswith(b"F") and r.value for r in recs),
        60,
    )
    assert any(r.key == b"F" + follower["id"].encode() for r in held)
    time.sleep(COMMITTED)  # the follower's offset is committed: only the table holds it
    first.stop(signal.SIGKILL)

    second = cluster.start_worker("w2")
    wait_worker_ready(second)
    cluster.produce_events([leader])
    assert _fired(cluster, {"running", "completed"}, RELEASED_WITHIN) == {"running", "completed"}
