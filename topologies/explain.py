"""The worker's `/explain/{automation_id}/` page: the state its partitions hold, for the API."""

from __future__ import annotations

from typing import Any

from service.core.explain import explain_state, model_version
from topologies.runtime import Runtime

__all__ = ["register_explain"]


def register_explain(app: Any, runtime: Runtime) -> None:
    """Serve this worker's share of an automation's live state, as JSON."""

    @app.page("/explain/{automation_id}/")
    async def explain(view: Any, request: Any, automation_id: str) -> Any:
        automation = runtime.registry.by_id.get(automation_id)
        if automation is None:
            # Disabled or unknown here: the API explains it from the model alone.
            return view.json({"loaded": False, "triggers": []})
        key = request.query.get("key")
        stores = [*runtime.evaluate_stores.values(), *runtime.compose_stores.values()]
        # No await between reading the stores and answering: the agents cannot change
        # them half-way through.
        triggers = explain_state(automation, stores, runtime.now(), key)
        return view.json(
            {"loaded": True, "version": model_version(automation.model), "triggers": triggers}
        )
