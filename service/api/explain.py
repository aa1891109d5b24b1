"""Explain through the API: ask every worker for its share of the state, then join it."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx

from service.api.catalog import Stored
from service.core.explain import merge_explanations, model_version
from service.core.times import from_us
from service.core.triggers import compile_automation

__all__ = ["explain"]


async def _ask(
    client: httpx.AsyncClient, worker: str, automation_id: str, key: str | None
) -> tuple[str, Any]:
    params = {"key": key} if key is not None else {}
    try:
        response = await client.get(f"{worker}/explain/{automation_id}/", params=params)
        response.raise_for_status()
        return worker, response.json()
    except (httpx.HTTPError, ValueError) as exc:
        return worker, exc


async def explain(
    stored: Stored, workers: list[str], key: str | None, token: str = ""
) -> dict[str, Any]:
    """The automation's live state per trigger and key, from every worker that has some."""
    automation_id = str(stored.id)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=5.0, headers=headers) as client:
        answers = await asyncio.gather(*(_ask(client, w, automation_id, key) for w in workers))
    version = model_version(stored.automation)
    parts, unreachable, loaded_by, current = [], [], [], []
    for worker, answer in answers:
        if isinstance(answer, Exception):
            unreachable.append({"worker": worker, "error": str(answer) or type(answer).__name__})
            continue
        if answer.get("loaded"):
            loaded_by.append(worker)
            if answer.get("version") == version:
                current.append(worker)
        parts.append(answer.get("triggers", []))
    now = time.time_ns() // 1000
    compiled = compile_automation(stored.automation)
    return {
        "automation_id": automation_id,
        "name": stored.automation.name,
        "enabled": stored.automation.enabled,
        "as_of": from_us(now).isoformat(),
        "key": key,
        "version": version,
        # `current`: workers evaluating this very version; a worker in `loaded_by` but
        # not in `current` has not picked the latest change up yet.
        "workers": {
            "asked": workers,
            "loaded_by": loaded_by,
            "current": current,
            "unreachable": unreachable,
        },
        "triggers": merge_explanations(compiled, parts, now),
    }
