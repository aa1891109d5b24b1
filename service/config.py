"""One settings model for every Tripwire process; each field has a default and a TRIPWIRE_ name."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Read once at the edge (CLI start-up) and passed down; never read deeper."""

    model_config = SettingsConfigDict(env_prefix="TRIPWIRE_", frozen=True, extra="ignore")

    kafka_bootstrap: str = Field(
        "127.0.0.1:9092", description="Kafka bootstrap servers (the embedded broker listens here)"
    )
    data_dir: Path = Field(
        Path("data"),
        description="state directory: RocksDB tables, embedded broker data, automations",
    )
    partitions: int = Field(4, ge=1, description="partitions of every topic Tripwire creates")
    tick_interval: float = Field(
        5.0, gt=0, description="seconds between proactive evaluations and sweeps"
    )
    disorder_allowance: float = Field(
        2.0,
        ge=0,
        description=(
            "seconds of event-time disorder the stream's watermark allows for: an events "
            "partition's watermark is the event time read so far less this, so a deadline "
            "(proactive, sweeps) is judged this long after the events that could meet it"
        ),
    )
    progress_interval: float = Field(
        0.2,
        gt=0,
        description=(
            "seconds between the route stage's reports of how far it has read each events "
            "partition while events flow (idle: several per tick); evaluate applies a match "
            "once every source is read past it, so this bounds that wait when another "
            "worker owns a source"
        ),
    )
    max_held_matches: int = Field(
        100_000,
        ge=0,
        description=(
            "matches an evaluate partition may hold for event-time order; past it the "
            "earliest are applied without waiting (a source with no owner)"
        ),
    )
    topic_events: str = Field("tripwire.events", description="input events topic")
    topic_events_dlq: str = Field("tripwire.events.dlq", description="dead-lettered events")
    topic_matches: str = Field("tripwire.matches", description="events keyed by (trigger, bucket)")
    topic_child_firings: str = Field(
        "tripwire.child-firings", description="composite child firings keyed by automation"
    )
    topic_firings: str = Field("tripwire.firings", description="firing records (the output)")
    topic_automations: str = Field(
        "tripwire.automations", description="compacted topic of automations"
    )
    replication_factor: int = Field(1, ge=1, description="replication of created topics")
    max_event_bytes: int = Field(
        1_000_000,
        ge=1,
        description=(
            "larger event records are dead-lettered (Prefect drops events over 1.5 MB; "
            "Kafka's default message limit is 1 MB)"
        ),
    )
    app_id: str = Field("tripwire", description="Kafka consumer group of the workers")
    state_dir: Path = Field(
        Path(),
        description="this worker's RocksDB tables, one per worker (default: DATA_DIR/worker)",
    )
    standby_replicas: int = Field(1, ge=0, description="standby table replicas per partition")
    broker_session_timeout: float = Field(
        6.0,
        gt=0,
        description=(
            "seconds before a silent worker's partitions move (Kafka's smallest allowed by "
            "default; the embedded broker also holds a group join for half of it)"
        ),
    )
    broker_heartbeat_interval: float = Field(1.0, gt=0, description="consumer heartbeat seconds")
    fetch_wait_ms: int = Field(
        10,
        ge=1,
        description=(
            "longest wait of a worker's Fetch for new records, ms (Faust's own 1,500 ms is "
            "every stage's latency on the embedded broker)"
        ),
    )
    batch_size: int = Field(1000, ge=1, description="records taken per batch by each agent")
    batch_linger: float = Field(0.005, gt=0, description="seconds an agent waits to fill a batch")
    producer_batch_bytes: int = Field(
        262_144,
        ge=1_024,
        le=1_048_576,
        description=(
            "bytes a worker's producer sends to one partition per request (a request at a "
            "time per partition; at most the broker's message.max.bytes)"
        ),
    )
    producer_timeout: float = Field(
        30.0,
        gt=0,
        description=(
            "seconds a worker's send may take (its topic's metadata, then the broker's ack) "
            "before the batch fails, stays uncommitted and is read again (Faust's own is 20 min)"
        ),
    )
    gc_threshold: int = Field(
        100_000,
        ge=0,
        description=(
            "allocations between the worker's young-generation garbage collections "
            "(Python's default is 700; 0 keeps Python's thresholds)"
        ),
    )
    max_seen_ids: int = Field(
        2_000_000,
        ge=1,
        description=(
            "event ids remembered per events partition for de-duplication (30 minutes, oldest "
            "forgotten first beyond this; kept in the route table, so they survive restarts "
            "and handovers)"
        ),
    )
    max_buckets_per_trigger: int = Field(
        1_000_000,
        ge=1,
        description=(
            "open buckets one trigger may hold in one partition; beyond it a new key's match "
            "is skipped with a warning and counted (tripwire_state_limit_rejections)"
        ),
    )
    emit_state_events: bool = Field(
        True, description="publish prefect.automation.triggered events to the events topic"
    )
    worker_web_host: str = Field("127.0.0.1", description="worker web server address")
    worker_web_port: int = Field(
        6066, ge=0, description="worker web server port (0: no web server)"
    )
    log_format: Literal["json", "text"] = Field(
        "text",
        description=(
            "log lines of every process: text for people, json (one object per line) for "
            "log collectors; the image sets json"
        ),
    )
    log_level: Literal["debug", "info", "notice", "warning", "error"] = Field(
        "notice",
        description=(
            "least severe log lines every process writes: notice shows warnings and one line "
            "per process started or ready; info adds Kafka and Faust progress; the CLI's "
            "--log-level overrides it"
        ),
    )

    # -- automations API ----------------------------------------------------------------
    api_host: str = Field("127.0.0.1", description="address the automations API listens on")
    api_port: int = Field(4300, ge=1, le=65535, description="port of the automations API")
    api_url: str = Field(
        "http://127.0.0.1:4300/api",
        description="where the CLI and action workers find the API (ends in /api)",
    )
    api_token: str = Field(
        "",
        description=(
            "bearer token every API route but health requires (empty: no auth); clients "
            "send it as `Authorization: Bearer ...` (Prefect's client: PREFECT_API_KEY)"
        ),
    )
    worker_urls: str = Field(
        "http://127.0.0.1:6066",
        description="comma-separated web addresses of the workers the API asks for explain",
    )
    api_write_timeout: float = Field(
        10.0, gt=0, description="seconds the API waits for a write to reach its own view"
    )
    max_automations: int = Field(
        10_000, ge=1, description="automations the API accepts before refusing new ones"
    )
    api_max_body_bytes: int = Field(
        524_288,
        ge=1_024,
        description=(
            "larger API request bodies get HTTP 413; the API's producer takes automation "
            "records up to twice this (stored form adds ids and defaults), which must not "
            "exceed the broker's message.max.bytes (Kafka's default is 1 MB)"
        ),
    )

    backtest_max_events: int = Field(
        2_000_000,
        ge=1,
        description=(
            "events one POST /api/automations/backtest evaluates at most; past it the "
            "answer holds what was done so far and says it was cut"
        ),
    )
    backtest_max_seconds: float = Field(
        60.0,
        gt=0,
        description=(
            "seconds one POST /api/automations/backtest runs at most; past them the answer "
            "holds what was done so far and says it was cut"
        ),
    )
    backtest_max_running: int = Field(
        2,
        ge=1,
        description="backtests the API runs at once; one more is refused with HTTP 429",
    )

    history_max_age: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description=(
            "seconds the API keeps an automation's firings and action outcomes in its "
            "history (POST /api/events/filter, tripwire automations history)"
        ),
    )
    history_max_per_automation: int = Field(
        1000,
        ge=1,
        description=(
            "events (firings and action outcomes) the API's history keeps per automation; "
            "the oldest go first"
        ),
    )

    # -- web console (docs/console.md) ----------------------------------------------------
    console_enabled: bool = Field(
        True,
        description=(
            "serve the web console at /console/ on the API's port (behind TRIPWIRE_API_TOKEN "
            "when one is set)"
        ),
    )
    console_dead_letters: int = Field(
        500,
        ge=1,
        description=(
            "dead-lettered events and actions the API keeps in memory for the console, the "
            "newest; read again from the dead-letter topics at start"
        ),
    )
    console_feed_queue: int = Field(
        1000,
        ge=1,
        description=(
            "firings and outcomes the live feed holds for one browser that reads slowly; "
            "beyond it that browser loses the oldest (counted), the API never waits"
        ),
    )

    # -- action worker and Prefect bridge (docs/actions.md) -------------------------------
    topic_actions_dlq: str = Field(
        "tripwire.actions.dlq",
        description="actions that failed for good, with the firing, the action and the error",
    )
    actions_group: str = Field(
        "tripwire-actions", description="Kafka consumer group of the action workers"
    )
    actions_state_dir: Path = Field(
        Path(),
        description=(
            "the action worker's RocksDB table of completed actions (default: DATA_DIR/actions)"
        ),
    )
    actions_completed_ttl: float = Field(
        7 * 24 * 3600.0,
        gt=0,
        description="seconds a completed (firing, action) is remembered against redelivery",
    )
    emit_action_events: bool = Field(
        True,
        description=(
            "publish prefect.automation.action.triggered/executed/failed events to the "
            "events topic (the API's history of action outcomes reads them)"
        ),
    )
    actions_web_port: int = Field(
        6067, ge=0, description="action worker web server port, on WORKER_WEB_HOST (0: none)"
    )
    actions_concurrency: int = Field(
        16, ge=1, description="firings an action worker handles at once"
    )
    action_max_attempts: int = Field(
        5, ge=1, description="attempts of one action before it is dead-lettered"
    )
    action_max_seconds: float = Field(
        120.0, gt=0, description="longest time one action is retried before it is dead-lettered"
    )
    action_backoff: float = Field(
        0.5, gt=0, description="seconds before the first retry; doubles per retry, full jitter"
    )
    action_backoff_max: float = Field(30.0, gt=0, description="longest wait between retries")
    action_timeout: float = Field(
        10.0, gt=0, description="seconds one HTTP call of an action may take"
    )
    template_cpu_seconds: float = Field(
        1.0,
        gt=0,
        description=(
            "CPU seconds the template renders of one action may use; past it the render "
            "process is killed and the action dead-lettered"
        ),
    )
    template_max_output: int = Field(
        1_000_000,
        ge=1,
        description=(
            "characters the rendered templates of one action may add up to; more fails the "
            "action (dead-lettered)"
        ),
    )
    template_max_memory: int = Field(
        512,
        ge=64,
        description=(
            "MiB of address space of each render process; a render needing more fails its "
            "action (dead-lettered)"
        ),
    )
    template_processes: int = Field(
        2,
        ge=1,
        description=(
            "render processes per action worker: templates render there, off the worker's "
            "event loop, one action at a time each"
        ),
    )
    prefect_api_url: str = Field(
        "",
        description=(
            "Prefect server API for Prefect actions and the bridge, e.g. "
            "http://127.0.0.1:4200/api (empty: Prefect actions fail)"
        ),
    )
    prefect_api_key: str = Field(
        "", description="bearer token for the Prefect API (PREFECT_API_KEY; empty: none)"
    )
    prefect_api_auth_string: str = Field(
        "",
        description="user:password for a Prefect server with PREFECT_API_AUTH_STRING (empty: none)",
    )

    @model_validator(mode="after")
    def _default_state_dir(self) -> Settings:
        if self.state_dir == Path():
            object.__setattr__(self, "state_dir", self.data_dir / "worker")
        if self.actions_state_dir == Path():
            object.__setattr__(self, "actions_state_dir", self.data_dir / "actions")
        return self
