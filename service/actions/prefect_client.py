"""The few calls of Prefect's REST API the actions make, over httpx, as Prefect's server does."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import httpx

from service.actions.delivery import ActionFailed, Retriable

__all__ = ["HttpApi", "check", "raise_for_response"]

# Statuses a later attempt can get past; everything else >= 300 is final.
RETRIABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def raise_for_response(response: httpx.Response, what: str) -> None:
    """Raise Retriable or ActionFailed for a failed response, with Prefect's reasons."""
    status = response.status_code
    if status < 300:
        return
    if status in RETRIABLE_STATUS:
        msg = f"Unexpected status from {what!r} action: {status}"
        raise Retriable(msg)
    detail = None
    if status in (409, 422):
        try:
            body = response.json()
            detail = body.get("detail") if isinstance(body, dict) else None
        except ValueError:
            detail = None
        if status == 422 or detail:
            suffix = f" - {detail}" if detail else ""
            msg = f"Validation error occurred for {what!r}{suffix}"
            raise ActionFailed(msg)
        msg = f"Conflict (409) occurred for {what!r} - {response.text!r}"
        raise ActionFailed(msg)
    msg = f"Unexpected status from {what!r} action: {status}"
    raise ActionFailed(msg)


check = raise_for_response


class HttpApi:
    """One REST API (Prefect's or Tripwire's) at a base URL, with its auth headers."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        *,
        bearer: str = "",
        basic: str = "",
        name: str = "Prefect",
        setting: str = "TRIPWIRE_PREFECT_API_URL",
    ) -> None:
        self.client = client
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.setting = setting
        self.headers: dict[str, str] = {}
        if bearer:
            self.headers["Authorization"] = f"Bearer {bearer}"
        elif basic:
            self.headers["Authorization"] = "Basic " + base64.b64encode(basic.encode()).decode()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        if not self.base_url:
            msg = f"no {self.name} API configured: set {self.setting}"
            raise ActionFailed(msg)
        return await self.client.request(
            method,
            f"{self.base_url}{path}",
            json=json,
            params=params,
            headers={**self.headers, **(headers or {})},
        )

    # -- Prefect's orchestration routes (prefect/server/api/clients.py) ----------------
    async def create_flow_run(
        self, deployment_id: str, body: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        return await self.request(
            "POST", f"/deployments/{deployment_id}/create_flow_run", json=body, headers=headers
        )

    async def set_flow_run_state(
        self, flow_run_id: str, state: dict[str, Any], force: bool, headers: dict[str, str]
    ) -> httpx.Response:
        return await self.request(
            "POST",
            f"/flow_runs/{flow_run_id}/set_state",
            json={"state": state, "force": force},
            headers=headers,
        )

    async def read_work_pool(self, work_pool_id: str, headers: dict[str, str]) -> dict[str, Any]:
        response = await self.request(
            "POST",
            "/work_pools/filter",
            json={"work_pools": {"id": {"any_": [work_pool_id]}}},
            headers=headers,
        )
        raise_for_response(response, "read-work-pool")
        pools = response.json()
        if not pools:
            msg = f"Work pool {work_pool_id} not found"
            raise ActionFailed(msg)
        pool: dict[str, Any] = pools[0]
        return pool

    async def patch_work_pool(
        self, name: str, body: dict[str, Any], headers: dict[str, str]
    ) -> httpx.Response:
        return await self.request("PATCH", f"/work_pools/{quote(name)}", json=body, headers=headers)

    async def read_block_document(self, block_id: str, headers: dict[str, str]) -> dict[str, Any]:
        response = await self.request(
            "GET",
            f"/block_documents/{block_id}",
            params={"include_secrets": "true"},
            headers=headers,
        )
        raise_for_response(response, "read-block-document")
        document: dict[str, Any] = response.json()
        return document

    async def read_object(self, kind: str, object_id: str) -> dict[str, Any] | None:
        """A deployment, flow, flow run, work pool or work queue for templates; None if absent."""
        if kind == "work_pool":
            response = await self.request(
                "POST", "/work_pools/filter", json={"work_pools": {"id": {"any_": [object_id]}}}
            )
        else:
            route = {
                "deployment": "deployments",
                "flow": "flows",
                "flow_run": "flow_runs",
                "work_queue": "work_queues",
            }[kind]
            response = await self.request("GET", f"/{route}/{object_id}")
        if response.status_code >= 300:
            return None
        data = response.json()
        if isinstance(data, list):
            return data[0] if data else None
        return data if isinstance(data, dict) else None

    async def read_variables(self, names: list[str]) -> dict[str, Any]:
        response = await self.request(
            "POST", "/variables/filter", json={"variables": {"name": {"any_": names}}}
        )
        raise_for_response(response, "read-variables")
        return {v["name"]: v["value"] for v in response.json()}
