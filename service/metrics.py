"""Prometheus metrics of every Tripwire process, one registry per process role."""

from __future__ import annotations

from typing import Literal

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

__all__ = [
    "ACTION_ATTEMPTS",
    "ACTION_DLQ",
    "ACTION_FAILURES",
    "ACTION_SUCCESSES",
    "API_BACKTESTS_RUNNING",
    "API_LIVE_DROPPED",
    "API_LIVE_SUBSCRIBERS",
    "API_REQUESTS",
    "BATCH_FAILURES",
    "BATCH_SIZE",
    "CONSUMER_LAG",
    "CONTENT_TYPE",
    "EVALUATION_SECONDS",
    "EVENTS_CONSUMED",
    "EVENTS_DEAD_LETTERED",
    "FIRINGS",
    "HELD_MATCHES",
    "LATE_EVENTS",
    "MATCHES",
    "OPEN_BUCKETS",
    "OUT_OF_ORDER_MATCHES",
    "STALLED_PARTITIONS",
    "STATE_LIMIT_REJECTIONS",
    "STREAM_TIME_LAG",
    "TICK_SECONDS",
    "Role",
    "exposition",
]

CONTENT_TYPE = CONTENT_TYPE_LATEST

Role = Literal["worker", "actions", "api"]

# Not the default registry: it would hold every metric below in every process that imports
# this module, so the API would export the worker's counters as zeros. Each role exports
# its own, plus the process_ and python_ collectors the default registry would have given.
_REGISTRIES: dict[Role, CollectorRegistry] = {
    role: CollectorRegistry() for role in ("worker", "actions", "api")
}
for _registry in _REGISTRIES.values():
    ProcessCollector(registry=_registry)
    PlatformCollector(registry=_registry)
    GCCollector(registry=_registry)
_WORKER = _REGISTRIES["worker"]
_ACTIONS = _REGISTRIES["actions"]
_API = _REGISTRIES["api"]

# Stream worker.
EVENTS_CONSUMED = Counter(
    "tripwire_events_consumed", "event records read from the events topic", registry=_WORKER
)
EVENTS_DEAD_LETTERED = Counter(
    "tripwire_events_dead_lettered",
    "event records sent to the events DLQ",
    ["reason"],
    registry=_WORKER,
)
LATE_EVENTS = Counter(
    "tripwire_late_events",
    "events read with an occurred time behind their partition's watermark (processed at once)",
    registry=_WORKER,
)
OUT_OF_ORDER_MATCHES = Counter(
    "tripwire_out_of_order_matches",
    "matches that reached evaluate after a later match of their partition had been "
    "applied (late for event-time order; applied at once)",
    registry=_WORKER,
)
HELD_MATCHES = Gauge(
    "tripwire_held_matches",
    "matches waiting in evaluate for every source to be read past them (event-time order)",
    registry=_WORKER,
)
STREAM_TIME_LAG = Gauge(
    "tripwire_stream_time_lag_seconds",
    "wall clock minus an evaluate partition's stream time (the watermark deadlines are "
    "judged by), at its last tick",
    ["partition"],
    registry=_WORKER,
)
MATCHES = Counter(
    "tripwire_matches", "(event, trigger) matches routed to evaluation", registry=_WORKER
)
FIRINGS = Counter("tripwire_firings", "firing records written", ["state"], registry=_WORKER)
EVALUATION_SECONDS = Histogram(
    "tripwire_evaluation_seconds",
    "time to evaluate one batch of records in an agent",
    ["agent"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
    registry=_WORKER,
)
BATCH_SIZE = Histogram(
    "tripwire_batch_size",
    "records per batch taken by an agent",
    ["agent"],
    buckets=(1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500),
    registry=_WORKER,
)
BATCH_FAILURES = Counter(
    "tripwire_batch_failures",
    "batches an agent could not finish; their partitions are read again from the batch",
    ["agent"],
    registry=_WORKER,
)
STALLED_PARTITIONS = Gauge(
    "tripwire_stalled_partitions",
    "1 while a partition is read again after a batch that failed, until one succeeds",
    ["topic", "partition"],
    registry=_WORKER,
)
CONSUMER_LAG = Gauge(
    "tripwire_consumer_lag",
    "records between the partition's committed offset and its high watermark",
    ["topic", "partition"],
    registry=_WORKER,
)
OPEN_BUCKETS = Gauge(
    "tripwire_open_buckets", "buckets held by this worker's partitions", registry=_WORKER
)
STATE_LIMIT_REJECTIONS = Counter(
    "tripwire_state_limit_rejections",
    "matches skipped because their trigger holds TRIPWIRE_MAX_BUCKETS_PER_TRIGGER buckets",
    registry=_WORKER,
)
TICK_SECONDS = Histogram(
    "tripwire_tick_seconds",
    "duration of one proactive tick (evaluation and sweeps)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=_WORKER,
)

# Action worker.
ACTION_ATTEMPTS = Counter(
    "tripwire_action_attempts", "action attempts", ["type"], registry=_ACTIONS
)
ACTION_SUCCESSES = Counter(
    "tripwire_action_successes", "actions that took effect", ["type"], registry=_ACTIONS
)
ACTION_FAILURES = Counter(
    "tripwire_action_failures", "failed action attempts", ["type"], registry=_ACTIONS
)
ACTION_DLQ = Counter(
    "tripwire_action_dead_lettered", "actions sent to the actions DLQ", ["type"], registry=_ACTIONS
)

# Automations API.
API_REQUESTS = Counter(
    "tripwire_api_requests",
    "API requests by route template and status",
    ["route", "status"],
    registry=_API,
)
API_LIVE_SUBSCRIBERS = Gauge(
    "tripwire_api_live_subscribers",
    "browsers following the console's live feed of firings",
    registry=_API,
)
API_LIVE_DROPPED = Counter(
    "tripwire_api_live_dropped",
    "live feed events a subscriber lost because it read too slowly (its queue was full)",
    registry=_API,
)

API_BACKTESTS_RUNNING = Gauge(
    "tripwire_api_backtests_running",
    "POST /api/automations/backtest requests being evaluated now (in worker threads)",
    registry=_API,
)


def exposition(role: Role) -> bytes:
    """The metrics of one process role in Prometheus's text format."""
    return generate_latest(_REGISTRIES[role])
