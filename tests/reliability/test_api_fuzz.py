"""Schemathesis against the real running API, from its own OpenAPI schema: no 5xx, every
invalid request a 422 in Prefect's shape, and nothing half stored.

Cases are drawn per operation, valid (positive) and invalid (negative), derandomized.
The test keeps its own ledger of what the API said it stored (2xx creates, 2xx deletes)
and compares it with what the API holds at the end.
"""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

import httpx
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation

from tests.integration.api_harness import start_api
from tests.integration.harness import Cluster

EXAMPLES = 40  # per operation and mode


def _prefects_422(body: Any) -> list[str]:
    """What is wrong with a 422 body, measured against Prefect's validation shape."""
    problems = []
    if not isinstance(body, dict) or body.get("exception_message") != "Invalid request received.":
        return [f"not Prefect's 422 shape: {body!r:.300}"]
    detail = body.get("exception_detail")
    if not isinstance(detail, list) or not detail:
        return [f"no exception_detail: {body!r:.300}"]
    for error in detail:
        missing = {"loc", "msg", "type", "field"} - set(error)
        if missing or not isinstance(error["loc"], list) or not error["msg"]:
            problems.append(f"error without {sorted(missing) or 'loc/msg'}: {error!r:.300}")
    return problems


def _fuzzer(operation: Any, mode: GenerationMode, record: Any) -> Any:
    """One Hypothesis run over one operation's cases of one mode."""

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def fuzz(case: Any) -> None:
        record(case, mode)

    return fuzz


def test_fuzzed_requests_get_no_5xx_invalid_ones_a_422_and_nothing_is_half_stored(
    cluster: Cluster,
) -> None:
    api = start_api(cluster)
    base = api.url.removesuffix("/api")
    schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
    stored: set[str] = set()
    owners: dict[str, Any] = {}  # stored id -> its owner_resource, for deletes by owner
    statuses: Counter[tuple[str, str, int]] = Counter()
    failures: list[str] = []
    refusals: Counter[str] = Counter()
    bodies: Counter[int] = Counter()  # status of each request with an invalid body
    started = time.monotonic()

    def record(case: Any, mode: GenerationMode) -> None:
        response = case.call(base_url=base, timeout=30)
        method, path, status = case.method.upper(), case.path, response.status_code
        statuses[(mode.value, f"{method} {path}", status)] += 1
        where = f"{mode.value} {method} {case.formatted_path} -> {status}"
        if status >= 500:
            failures.append(f"{where}: {response.text[:300]}")
        if status == 422 and path != "/api/csrf-token":
            failures.extend(f"{where}: {p}" for p in _prefects_422(response.json()))
        # Only the body is held to a 422: a negative case may break the query with an
        # unknown parameter, which the API ignores as Prefect's does.
        if case.meta is not None and case.meta.is_negative_at(ParameterLocation.BODY):
            bodies[status] += 1
            if status != 422:
                failures.append(f"{where}: invalid body not refused with a 422: {case.body!r:.300}")
        if mode is GenerationMode.POSITIVE and status == 422 and path != "/api/csrf-token":
            refusals[f"{method} {path}: {response.json()['exception_detail'][0]['msg'][:80]}"] += 1
        if method == "POST" and path == "/api/automations/" and status == 201:
            created = response.json()["id"]
            stored.add(created)
            owners[created] = (
                case.body.get("owner_resource") if isinstance(case.body, dict) else None
            )
        if method == "DELETE" and path == "/api/automations/{id}" and status == 204:
            stored.discard(str(case.path_parameters["id"]))
        if (
            method == "DELETE"
            and path == "/api/automations/owned-by/{resource_id}"
            and status == 202
        ):
            owner = str(case.path_parameters["resource_id"])
            stored.difference_update({i for i in stored if owners.get(i) == owner})

    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                _fuzzer(operation, mode, record)()
            except Unsatisfiable:
                # No parameters, no body: there is no invalid request to make.
                assert mode is GenerationMode.NEGATIVE, operation.path

    with api.client() as http:
        held = {a["id"] for a in http.post("/automations/filter", json={}).json()}
        count = http.post("/automations/count", json={}).json()
    seconds = round(time.monotonic() - started, 1)
    by_outcome = Counter(
        (mode, status) for (mode, _, status), n in statuses.items() for _ in range(n)
    )
    print(
        f"\nRELIABILITY api fuzz: {operations} operations, {sum(statuses.values())} requests "
        f"in {seconds} s, (mode, status): {dict(sorted(by_outcome.items()))}, "
        f"invalid bodies by status {dict(bodies)}, stored {len(stored)}; valid by the schema but refused: {dict(refusals)}"
    )
    assert not failures, "\n".join(failures[:20])
    # Nothing half stored: exactly what the API acknowledged, and nothing else.
    assert held == stored
    assert count == len(stored)
    assert statuses, "no requests were made"
    assert bodies[422] >= 50, bodies
    assert any(s == 201 for (_, op, s) in statuses if op == "POST /api/automations/")
    # Every route of the API, the owner deletes included, was fuzzed.
    fuzzed = {op for (_, op, _) in statuses}
    assert len(fuzzed) == operations
    assert "DELETE /api/automations/owned-by/{resource_id}" in fuzzed
    assert httpx.get(f"{base}/healthz", timeout=5).status_code == 200


def _nested_triggers(levels: int) -> str:
    """An automation whose trigger tree is `levels` deep, as raw JSON (no recursion)."""
    opening = '{"type":"compound","require":"any","within":null,"triggers":['
    leaf = '{"posture":"Reactive","expect":["x"]}'
    trigger = opening * (levels - 1) + leaf + "]}" * (levels - 1)
    return '{"name":"deep","actions":[],"trigger":' + trigger + "}"


def _deep_json(levels: int) -> str:
    return '{"a":' * levels + "1" + "}" * levels


def test_hand_written_edge_bodies_get_a_4xx_naming_the_rule_never_a_5xx(cluster: Cluster) -> None:
    """The bodies of issue 19 and their neighbours, on every route that takes a body."""
    api = start_api(cluster)
    base = api.url.removesuffix("/api")
    some_id = "00000000-0000-0000-0000-000000000019"
    deep_action = (
        '{"name":"d","trigger":{"posture":"Reactive","expect":["x"]},"actions":[{"type":"do-nothing","x":'
        + _deep_json(300)
        + "}]}"
    )
    cases: list[tuple[str, str, bytes, int, str]] = [
        ("POST", "/automations/", _nested_triggers(10).encode(), 201, ""),
        ("POST", "/automations/", _nested_triggers(11).encode(), 422, "nested more than 10 levels"),
        (
            "POST",
            "/automations/",
            _nested_triggers(200).encode(),
            422,
            "nested more than 10 levels",
        ),
        (
            "PUT",
            f"/automations/{some_id}",
            _nested_triggers(200).encode(),
            422,
            "nested more than 10",
        ),
        (
            "POST",
            "/automations/",
            _nested_triggers(5_000).encode(),
            422,
            "could not be read as JSON",
        ),
        ("POST", "/automations/", deep_action.encode(), 422, "nested too deep"),
        # Found by the fuzzer above: orjson cannot store it, which was a 500.
        (
            "POST",
            "/automations/",
            deep_action.replace(_deep_json(300), str(2**70)).encode(),
            422,
            "outside -2**63",
        ),
        (
            "POST",
            "/automations/",
            ("[" * 100_000 + "]" * 100_000).encode(),
            422,
            "could not be read",
        ),
        (
            "POST",
            "/automations/filter",
            ("[" * 100_000 + "]" * 100_000).encode(),
            422,
            "could not be read",
        ),
        ("POST", "/automations/filter", _deep_json(900).encode(), 200, ""),
        ("POST", "/automations/count", _deep_json(990).encode(), 422, "could not be read"),
        ("PATCH", f"/automations/{some_id}", _deep_json(900).encode(), 422, "Extra inputs"),
        ("POST", "/automations/", b"x" * 1_500_000, 413, "TRIPWIRE_API_MAX_BODY_BYTES"),
        ("POST", "/automations/", b"x" * 10_000_000, 413, "TRIPWIRE_API_MAX_BODY_BYTES"),
        ("POST", "/automations/filter", b"{}" + b" " * 600_000, 413, "TRIPWIRE_API_MAX_BODY_BYTES"),
    ]
    failures = []
    with api.client() as http:
        for method, path, body, expected, says in cases:
            answer = http.request(
                method, path, content=body, headers={"Content-Type": "application/json"}
            )
            where = f"{method} {path} ({len(body)} bytes)"
            if answer.status_code != expected or says not in answer.text:
                failures.append(f"{where}: {answer.status_code} {answer.text[:200]}")
        # The pages outside the OpenAPI document answer too, and nothing else does.
        for path, expected in (
            ("/api/docs", 200),
            ("/api/openapi.json", 200),
            ("/api/nowhere", 404),
        ):
            status = httpx.get(f"{base}{path}", timeout=10).status_code
            if status != expected:
                failures.append(f"GET {path}: {status}")
    assert not failures, "\n".join(failures)
    assert api.process.process.poll() is None
    assert "Traceback" not in api.process.log_text()
