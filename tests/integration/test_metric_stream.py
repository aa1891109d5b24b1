"""A metric trigger through Kafka and a real worker: Triggered, then Resolved."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from service.models.automations import parse_automations
from tests.integration.harness import Cluster, flow_run_event


def test_success_rate_breach_triggers_then_resolves_through_the_stream(cluster: Cluster) -> None:
    automations = parse_automations(
        [
            {
                "name": "success-rate-below-90",
                "trigger": {
                    "type": "metric",
                    "posture": "Metric",
                    "match": {"prefect.resource.id": "prefect.flow-run.*"},
                    "metric": {
                        "name": "successes",
                        "threshold": 0.9,
                        "operator": "<",
                        "range": 10,
                        "firing_for": 0,
                    },
                },
                "actions": [{"type": "do-nothing"}],
                "actions_on_resolve": [{"type": "do-nothing"}],
            }
        ]
    )
    cluster.publish(automations)
    cluster.start_worker("w1")
    cluster.wait_loaded("w1", {str(automations[0].id)})
    now = datetime.now(UTC)
    cluster.produce_events(
        [
            flow_run_event("bad", "Pending", now, number=1),
            flow_run_event("bad", "Failed", now, number=2),
        ]
    )
    triggered = cluster.firings(lambda recs: len(recs) >= 1, timeout=60)
    assert [(f["state"], f["triggering_value"]) for f in triggered] == [("Triggered", 0.0)]
    # Once the failure is older than the 10 s range, only the good run is in it.
    time.sleep(11)
    later = datetime.now(UTC)
    cluster.produce_events(
        [
            flow_run_event("good", "Pending", later, number=3),
            flow_run_event("good", "Completed", later, number=4),
        ]
    )
    firings = cluster.firings(lambda recs: len(recs) >= 2, timeout=60, settle=2)
    assert [(f["state"], f["triggering_value"]) for f in firings] == [
        ("Triggered", 0.0),
        ("Resolved", 1.0),
    ]
    assert firings[1]["state_event"]["event"] == "prefect.automation.resolved"
    assert firings[1]["actions_on_resolve"] == [{"type": "do-nothing"}]
