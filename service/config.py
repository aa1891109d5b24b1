"""One settings model for every Tripwire process; each field has a default and a TRIPWIRE_ name."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
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
    max_event_bytes: int = Field(
        1_500_000, ge=1, description="larger event records are dead-lettered (Prefect's limit)"
    )
    api_host: str = Field("127.0.0.1", description="address the automations API listens on")
    api_port: int = Field(4300, description="port the automations API listens on")
    api_url: str = Field(
        "http://127.0.0.1:4300/api", description="where the CLI finds the automations API"
    )
