"""A small client of Tripwire's automations API, for the CLI and the action worker."""

from __future__ import annotations

from typing import Any

import httpx

from service.errors import ServiceError

# Outside the class: its `list` method would shadow the builtin in annotations there.
Events = list[dict[str, Any]]

__all__ = ["ApiClient", "ApiError"]


# (field, rule) pairs of a 422; a module alias, since ApiClient.list shadows `list`.
FieldErrors = list[tuple[str, str]]


class ApiError(ServiceError):
    """The API refused a request or could not be reached; the message says which and why."""


def _reason(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text or response.reason_phrase
    if isinstance(body, dict) and isinstance(body.get("exception_detail"), list):
        return "; ".join(
            f"{d.get('field') or '.'.join(map(str, d.get('loc', [])))}: {d.get('msg')}"
            for d in body["exception_detail"]
        )
    if isinstance(body, dict):
        return str(body.get("exception_message") or body.get("detail") or body)
    return str(body)


class ApiClient:
    """Synchronous calls to `TRIPWIRE_API_URL` (it ends in `/api`)."""

    def __init__(self, base_url: str, token: str = "", timeout: float = 30.0) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def request(
        self, method: str, path: str, accept: tuple[int, ...] = (), **kwargs: Any
    ) -> httpx.Response:
        """One call; an HTTP error raises ApiError unless its status is in `accept`."""
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            msg = (
                f"cannot reach the Tripwire API at {self.base_url} ({exc}); is `tripwire api` "
                "or `tripwire up` running? TRIPWIRE_API_URL says where to look"
            )
            raise ApiError(msg) from None
        if response.status_code in accept or (
            response.status_code == 404 and path.startswith("/automations/")
        ):
            return response
        if response.status_code >= 400:
            msg = f"{method} {path}: HTTP {response.status_code}: {_reason(response)}"
            raise ApiError(msg)
        return response

    def list(self, name: str | None = None) -> list[dict[str, Any]]:
        body: dict[str, Any] = {}
        if name is not None:
            body["automations"] = {"name": {"any_": [name]}}
        result: list[dict[str, Any]] = self.request("POST", "/automations/filter", json=body).json()
        return result

    def get(self, automation_id: str) -> dict[str, Any] | None:
        response = self.request("GET", f"/automations/{automation_id}")
        if response.status_code == 404:
            return None
        result: dict[str, Any] = response.json()
        return result

    def find(self, id_or_name: str) -> dict[str, Any]:
        """One automation by id, else by exact name; an error if none or several."""
        if _is_uuid(id_or_name):
            found = self.get(id_or_name)
            if found is not None:
                return found
        named = self.list(id_or_name)
        if len(named) == 1:
            return named[0]
        if not named:
            msg = f"no automation with id or name {id_or_name!r}"
        else:
            msg = f"{len(named)} automations are named {id_or_name!r}: give an id"
        raise ApiError(msg)

    def create(self, automation: dict[str, Any], allow_self_trigger: bool = False) -> str:
        params = {"allow_self_trigger": "true"} if allow_self_trigger else {}
        response = self.request("POST", "/automations/", json=automation, params=params)
        return str(response.json()["id"])

    def validate(
        self, automation: dict[str, Any], allow_self_trigger: bool = False
    ) -> tuple[dict[str, Any] | None, FieldErrors]:
        """What a create (or, with an id, an update) would store, or (field, rule) errors.

        Nothing is written: `POST /automations/validate`.
        """
        params = {"allow_self_trigger": "true"} if allow_self_trigger else {}
        response = self.request(
            "POST", "/automations/validate", accept=(405, 422), json=automation, params=params
        )
        if response.status_code in (404, 405):
            msg = (
                f"the API at {self.base_url} cannot validate without writing (no "
                "/automations/validate: it is older than this CLI); upgrade `tripwire api`"
            )
            raise ApiError(msg)
        if response.status_code == 422:
            details = response.json().get("exception_detail") or []
            errors = [
                (str(d.get("field") or ".".join(map(str, d.get("loc", [])))), str(d.get("msg")))
                for d in details
            ]
            return None, errors or [("", _reason(response))]
        result: dict[str, Any] = response.json()
        return result, []

    def replace(
        self, automation_id: str, automation: dict[str, Any], allow_self_trigger: bool = False
    ) -> None:
        params = {"allow_self_trigger": "true"} if allow_self_trigger else {}
        body = {k: v for k, v in automation.items() if k not in ("id", "created", "updated")}
        response = self.request("PUT", f"/automations/{automation_id}", json=body, params=params)
        if response.status_code == 404:
            msg = f"automation {automation_id} does not exist"
            raise ApiError(msg)

    def set_enabled(self, automation_id: str, enabled: bool) -> None:
        response = self.request("PATCH", f"/automations/{automation_id}", json={"enabled": enabled})
        if response.status_code == 404:
            msg = f"automation {automation_id} does not exist"
            raise ApiError(msg)

    def delete(self, automation_id: str) -> None:
        response = self.request("DELETE", f"/automations/{automation_id}")
        if response.status_code == 404:
            msg = f"automation {automation_id} does not exist"
            raise ApiError(msg)

    def explain(self, automation_id: str, key: str | None = None) -> dict[str, Any]:
        params = {"key": key} if key is not None else {}
        response = self.request("GET", f"/automations/{automation_id}/explain", params=params)
        if response.status_code == 404:
            msg = f"automation {automation_id} does not exist"
            raise ApiError(msg)
        result: dict[str, Any] = response.json()
        return result

    def events(self, filter: dict[str, Any], limit: int = 50) -> Events:
        """Every event `POST /events/filter` answers for the filter, following next_page."""
        page: dict[str, Any] = self.request(
            "POST", "/events/filter", json={"filter": filter, "limit": limit}
        ).json()
        events: Events = [*page["events"]]
        while page.get("next_page"):
            page = self.request("GET", str(page["next_page"])).json()
            events.extend(page["events"])
        return events

    def last_fired(self) -> dict[str, dict[str, Any]]:
        """Each automation's newest kept firing (its state event), by automation id."""
        result: dict[str, dict[str, Any]] = self.request("GET", "/history/last-fired").json()
        return result


def _is_uuid(text: str) -> bool:
    import uuid

    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True
