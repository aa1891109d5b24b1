"""The compose file parses, runs Apache Kafka in KRaft mode, and sets only real settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SETTINGS = {f"TRIPWIRE_{name.upper()}" for name in Settings.model_fields}


def test_compose_runs_apache_kafka_in_kraft_mode() -> None:
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "broker,controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert not any("zookeeper" in name for name in COMPOSE["services"])


def test_compose_workers_set_only_existing_settings() -> None:
    workers = [s for name, s in COMPOSE["services"].items() if name.startswith("worker")]
    assert len(workers) >= 2
    for worker in workers:
        names = {k for k in worker["environment"] if k.startswith("TRIPWIRE_")}
        assert names, worker
        assert names <= SETTINGS, names - SETTINGS


def test_every_worker_keeps_its_state_on_its_own_volume() -> None:
    workers = [s for name, s in COMPOSE["services"].items() if name.startswith("worker")]
    volumes = [worker["volumes"][0].split(":")[0] for worker in workers]
    assert len(set(volumes)) == len(workers)
    assert set(volumes) <= set(COMPOSE["volumes"])


def test_the_image_installs_with_the_readme_install_step() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "RUN make install" in dockerfile
    assert 'ENTRYPOINT ["tripwire"]' in dockerfile
