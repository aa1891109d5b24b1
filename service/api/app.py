"""The automations REST API: Prefect's routes and shapes, over the automations topic."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

import orjson
from aiokafka.errors import KafkaError
from fastapi import Body, FastAPI, Query, Request, Response
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException

from service import metrics
from service.api import filters
from service.api.catalog import Catalog, RecordTooLarge, Stored, WriteFailed, WriteTimeout
from service.api.dead_letters import DeadLetterFeed, DeadLetters
from service.api.event_filter import PAGE_SIZE, EventFilter, EventsQuery
from service.api.explain import explain
from service.api.history import History, HistoryFeed
from service.api.limits import REFUSED, BodyLimit
from service.api.live import LiveFeed
from service.api.loops import action_event_loops
from service.api.prefect_shape import block_document, restored, served, url_targets
from service.api.schemas import (
    AutomationCreate,
    AutomationPartialUpdate,
    AutomationSort,
    BacktestBody,
    CountBody,
    FilterBody,
)
from service.backtest import Limits, deterministic_id, over_topic, versions_of
from service.config import Settings
from service.console import auth as console_auth
from service.console.routes import Console, register_console
from service.core.self_trigger import self_triggering
from service.core.times import since_time, to_us
from service.errors import ConfigError
from service.models.automations import (
    MAX_AUTOMATION_DEPTH,
    Automation,
    CompoundTrigger,
    SequenceTrigger,
    json_depth,
)
from service.models.errors import clean_location, clean_message, field_path
from service.readiness import health_body

__all__ = ["PREFECT_API_VERSION", "create_api"]

# What `GET /api/admin/version` answers: the Prefect server version whose automation
# routes this API implements; Prefect's client refuses a server of another major version.
PREFECT_API_VERSION = "3.9.1"

# Reachable without a token, so orchestrators can probe a locked-down API.
_OPEN_PATHS = frozenset({"/api/health", "/healthz", "/readyz"})

_NOT_FOUND = {"exception_message": "Automation not found"}
# Firings explain shows beside the live buckets.
_RECENT_FIRINGS = 5
_BLOCK_NOT_FOUND = {"exception_message": "Block document not found"}


class Refused(Exception):  # a 422 raised by a route, in Prefect's shape
    """A request the API refuses with HTTP 422, naming the field and the rule."""

    def __init__(self, loc: tuple[int | str, ...], message: str, kind: str) -> None:
        super().__init__(message)
        self.loc, self.message, self.kind = loc, message, kind


def _unprocessable(errors: list[dict[str, Any]], body: Any) -> JSONResponse:
    # Prefect's validation_exception_handler shape; `field` is Tripwire's addition.
    if json_depth(body, MAX_AUTOMATION_DEPTH) > MAX_AUTOMATION_DEPTH:
        body = None  # echoing it would recurse once per level, past Python's limit
    return _AsciiJSONResponse(
        status_code=422,
        content=jsonable_encoder(
            {
                "exception_message": "Invalid request received.",
                "exception_detail": errors,
                "request_body": body,
            }
        ),
    )


class _AsciiJSONResponse(JSONResponse):
    """JSON with every non-ASCII character escaped.

    A body echoed back may hold a lone surrogate (an escaped one is valid JSON), which has
    no UTF-8 form: the default rendering failed with a 500 (found by the API fuzz test).
    """

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode()


def _stored_as(
    checked: Automation, existing: Stored | None, owner_resource: str | None = None
) -> Stored:
    """A checked automation as it is (or would be) stored now: a new or a next version."""
    now = datetime.now(UTC)
    return Stored(
        Automation.model_validate(checked.model_dump(exclude={"owner_resource"})),
        created=existing.created if existing else now,
        updated=now,
        owner_resource=owner_resource,
    )


def _error(loc: tuple[int | str, ...], message: str, kind: str) -> dict[str, Any]:
    body_loc = loc[1:] if loc and loc[0] == "body" else loc
    return {"loc": list(loc), "msg": message, "type": kind, "field": field_path(body_loc)}


def _without_trigger_ids(trigger: Any) -> Any:
    # Prefect's create and update reset client-given trigger ids; Tripwire derives them
    # from the automation id and the trigger's path, so they are stable across updates.
    update: dict[str, Any] = {"id": None}
    if isinstance(trigger, CompoundTrigger | SequenceTrigger):
        update["triggers"] = [_without_trigger_ids(child) for child in trigger.triggers]
    return trigger.model_copy(update=update)


def create_api(settings: Settings) -> FastAPI:
    """The FastAPI application; its lifespan follows the automations topic."""
    catalog = Catalog(settings)
    workers = [url.strip().rstrip("/") for url in settings.worker_urls.split(",") if url.strip()]
    history_holder: list[History] = []
    feeds: list[HistoryFeed] = []
    # The console's live feed and dead letters: fed by the API's own topic readers.
    live = LiveFeed(settings.console_feed_queue)
    dead_letters = DeadLetters(settings.console_dead_letters)
    dead_letter_feed = DeadLetterFeed(settings, dead_letters)

    def history() -> History:
        return history_holder[0]

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Opened here, not in create_api: building the app (tests, the OpenAPI dump)
        # must not lock the data directory.
        history_holder.append(
            History(
                settings.data_dir / "history",
                settings.history_max_age,
                settings.history_max_per_automation,
            )
        )
        feeds.append(HistoryFeed(settings, history(), on_kept=live.publish))
        tasks = [asyncio.create_task(feeds[0].run())]
        if settings.console_enabled:
            tasks.append(asyncio.create_task(dead_letter_feed.run()))
        await catalog.start()
        try:
            yield
        finally:
            live.close()
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await catalog.stop()
            history().close()

    app = FastAPI(
        title="Tripwire automations API",
        version=PREFECT_API_VERSION,
        description=(
            "Prefect's automation routes over Tripwire's automations topic, plus `explain`. "
            "Prefect's Python client works against it unchanged (PREFECT_API_URL)."
        ),
        lifespan=lifespan,
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
    )
    app.state.catalog = catalog
    app.state.live = live
    # Added first, so it runs inside the token check: an anonymous body is never read.
    app.add_middleware(BodyLimit, limit=settings.api_max_body_bytes)

    @app.middleware("http")
    async def _auth_and_count(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        token = settings.api_token
        path = request.url.path
        if settings.console_enabled and console_auth.is_console(path):
            # The console's pages take the bearer header or its sign-in cookie.
            if (
                token
                and not console_auth.is_open(path)
                and not console_auth.signed_in(request, token)
            ):
                metrics.API_REQUESTS.labels("unauthorized", "401").inc()
                return console_auth.unauthorized(request)
        elif token and path not in _OPEN_PATHS and not console_auth.bearer_ok(request, token):
            response: Response = JSONResponse(
                {"exception_message": "Unauthorized: send 'Authorization: Bearer <token>'"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
            metrics.API_REQUESTS.labels("unauthorized", "401").inc()
            return response
        response = await call_next(request)
        route = request.scope.get("route")
        template = getattr(route, "path", None) or request.scope.get(REFUSED, "unmatched")
        metrics.API_REQUESTS.labels(template, str(response.status_code)).inc()
        return response

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            _error(clean_location(e["loc"]), clean_message(str(e["msg"])), e["type"])
            for e in exc.errors()
        ]
        return _unprocessable(errors, exc.body)

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, exc: HTTPException) -> Response:
        # FastAPI answers a body it cannot decode (not UTF-8, say) with a bare 400; an
        # invalid body is a 422 in Prefect's shape, like every other invalid body here.
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":
            error = _error(("body",), "the body could not be read as JSON", "json_invalid")
            return _unprocessable([error], None)
        return JSONResponse(
            {"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(Refused)
    async def _refused(request: Request, exc: Refused) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            body = None
        return _unprocessable([_error(exc.loc, exc.message, exc.kind)], body)

    @app.exception_handler(WriteTimeout)
    async def _slow(request: Request, exc: WriteTimeout) -> JSONResponse:
        return JSONResponse({"exception_message": str(exc)}, status_code=503)

    @app.exception_handler(RecordTooLarge)
    async def _too_large(request: Request, exc: RecordTooLarge) -> JSONResponse:
        return JSONResponse({"exception_message": str(exc)}, status_code=413)

    @app.exception_handler(WriteFailed)
    async def _unwritten(request: Request, exc: WriteFailed) -> JSONResponse:
        return JSONResponse({"exception_message": str(exc)}, status_code=503)

    def _checked(
        automation: Automation, automation_id: uuid.UUID, allow_self_trigger: bool
    ) -> Automation:
        automation = automation.model_copy(
            update={"id": automation_id, "trigger": _without_trigger_ids(automation.trigger)}
        ).with_ids()
        looping = self_triggering(automation) if automation.enabled else []
        if looping and not allow_self_trigger:
            message = (
                "this automation's trigger matches the prefect.automation.triggered/resolved "
                "events of its own firings, so each firing would fire it again; narrow "
                "`match` or `expect` to exclude them, or send ?allow_self_trigger=true to "
                "accept the loop"
            )
            raise Refused(("body", "trigger"), message, "value_error.self_trigger")
        looping = action_event_loops(automation) if automation.enabled else []
        if looping and not allow_self_trigger:
            message = (
                "this automation's trigger matches the prefect.automation.action.triggered/"
                "executed/failed events its own actions publish, so each firing would fire "
                "it again; narrow `match` or `expect` to exclude them (for example match "
                "another automation's prefect.resource.id), or send ?allow_self_trigger=true "
                "to accept the loop"
            )
            raise Refused(("body", "trigger"), message, "value_error.self_trigger")
        return automation

    # -- Prefect's client start-up and health ------------------------------------------

    @app.get("/api/health", tags=["Root"])
    async def health() -> bool:
        return True

    @app.get("/api/admin/version", tags=["Admin"])
    async def version() -> str:
        return PREFECT_API_VERSION

    @app.get("/api/csrf-token", tags=["Root"], status_code=422)
    async def csrf_token() -> dict[str, str]:
        # Prefect's client turns its CSRF support off on exactly this answer.
        return {"detail": "CSRF protection is disabled."}

    def _health() -> dict[str, Any]:
        checks: dict[str, Any] = {
            "automations_loaded": catalog.loaded,
            "automations": len(catalog.automations),
            # Not part of readiness: the automation routes work without the history.
            "history_following": bool(feeds) and feeds[0].running,
            # The console's dead letters (docs/console.md); likewise not readiness.
            "dead_letters_following": dead_letter_feed.running,
        }
        return health_body(catalog.loaded, checks)

    @app.get("/healthz", tags=["Operations"])
    async def healthz() -> dict[str, Any]:
        return _health()

    @app.get("/readyz", tags=["Operations"])
    async def readyz(response: Response) -> dict[str, Any]:
        response.status_code = 200 if catalog.loaded else 503
        return _health()

    @app.get("/metrics", tags=["Operations"])
    async def prometheus() -> Response:
        return Response(metrics.exposition("api"), media_type=metrics.CONTENT_TYPE)

    # -- automations ------------------------------------------------------------------

    @app.post("/api/automations/", status_code=201, tags=["Automations"])
    async def create_automation(
        automation: AutomationCreate,
        allow_self_trigger: Annotated[bool, Query()] = False,
    ) -> dict[str, Any]:
        """Create an automation (Prefect's route; an `id` in the body is honoured)."""
        automation_id = automation.id or uuid.uuid4()
        existing = catalog.get(automation_id)
        # A client-chosen id that is not stored yet is a new automation too.
        if existing is None and len(catalog.automations) >= settings.max_automations:
            message = (
                f"this API holds {settings.max_automations} automations, its limit; "
                "delete some or raise TRIPWIRE_MAX_AUTOMATIONS"
            )
            raise Refused(("body",), message, "value_error.limit")
        automation = restored(automation, existing, url_targets(catalog.all()))
        stored = _stored_as(
            _checked(automation, automation_id, allow_self_trigger),
            existing,
            owner_resource=automation.owner_resource,
        )
        await catalog.put(stored)
        return served(stored)

    @app.put("/api/automations/{id}", status_code=204, tags=["Automations"])
    async def update_automation(
        id: uuid.UUID,  # Prefect's path parameter name
        automation: Automation,
        allow_self_trigger: Annotated[bool, Query()] = False,
    ) -> Response:
        existing = catalog.get(id)
        if existing is None:
            # An invalid body is a 422 whatever the id, as the schema's own checks are.
            _checked(automation, id, allow_self_trigger)
            return JSONResponse(_NOT_FOUND, status_code=404)
        automation = restored(automation, existing, url_targets(catalog.all()))
        await catalog.put(existing.revised(_checked(automation, id, allow_self_trigger)))
        return Response(status_code=204)

    @app.patch("/api/automations/{id}", status_code=204, tags=["Automations"])
    async def patch_automation(
        id: uuid.UUID,
        automation: AutomationPartialUpdate,
        allow_self_trigger: Annotated[bool, Query()] = False,
    ) -> Response:
        """Pause (`{"enabled": false}`) or resume (`{"enabled": true}`) an automation."""
        if not await _set_enabled(id, automation.enabled, allow_self_trigger):
            return JSONResponse(_NOT_FOUND, status_code=404)
        return Response(status_code=204)

    async def _set_enabled(id: uuid.UUID, enabled: bool, allow_self_trigger: bool) -> bool:
        """Pause or resume (the PATCH route and the console); False if there is no such id."""
        existing = catalog.get(id)
        if existing is None:
            return False
        updated = existing.automation.model_copy(update={"enabled": enabled})
        if enabled:
            _checked(updated, id, allow_self_trigger)
        await catalog.put(existing.revised(updated))
        return True

    @app.delete("/api/automations/{id}", status_code=204, tags=["Automations"])
    async def delete_automation(id: uuid.UUID) -> Response:
        if catalog.get(id) is None:
            return JSONResponse(_NOT_FOUND, status_code=404)
        await catalog.delete(id)
        return Response(status_code=204)

    @app.post("/api/automations/filter", tags=["Automations"])
    async def read_automations(
        body: Annotated[FilterBody, Body()] = FilterBody(),  # noqa: B008
    ) -> list[dict[str, Any]]:
        chosen = filters.select(
            catalog.all(),
            body.automations,
            body.sort or AutomationSort.NAME_ASC,
            body.offset or 0,
            body.limit,
        )
        return [served(stored) for stored in chosen]

    @app.post("/api/automations/count", tags=["Automations"])
    async def count_automations(
        body: Annotated[CountBody, Body()] = CountBody(),  # noqa: B008
    ) -> int:
        return len(filters.select(catalog.all(), body.automations))

    @app.get("/api/automations/related-to/{resource_id}", tags=["Automations"])
    async def related_to(resource_id: str) -> list[dict[str, Any]]:
        return [served(s) for s in catalog.all() if resource_id in s.related_resources()]

    @app.delete("/api/automations/owned-by/{resource_id}", status_code=202, tags=["Automations"])
    async def delete_owned_by(resource_id: str) -> None:
        for stored in [s for s in catalog.all() if s.owner_resource == resource_id]:
            await catalog.delete(stored.id)

    @app.get("/api/automations/{id}", tags=["Automations"])
    async def read_automation(id: uuid.UUID) -> Any:
        stored = catalog.get(id)
        if stored is None:
            return JSONResponse(_NOT_FOUND, status_code=404)
        return served(stored)

    @app.post("/api/automations/validate", tags=["Automations"])
    async def validate_automation(
        automation: AutomationCreate,
        allow_self_trigger: Annotated[bool, Query()] = False,
    ) -> dict[str, Any]:
        """Tripwire: validate as a create would and answer what it would store; nothing is written.

        With an `id`, as that automation's new version (it need not exist). `tripwire
        automations apply` checks a whole file this way before it writes any of it.
        """
        automation_id = automation.id or uuid.uuid4()
        existing = catalog.get(automation_id)
        automation = restored(automation, existing, url_targets(catalog.all()))
        would_be = _stored_as(_checked(automation, automation_id, allow_self_trigger), existing)
        data = served(would_be)
        if automation.id is None:
            del data["id"]  # a create would draw a new one
        return data

    backtests_running: list[int] = [0]  # a list: the route below changes it

    @app.post("/api/automations/backtest", tags=["Automations"])
    async def backtest_automations(
        body: BacktestBody,
        allow_self_trigger: Annotated[bool, Query()] = False,
    ) -> Any:
        """Tripwire: what these automations would have fired over the events topic's history.

        Automations are checked as the create route checks them (a 422 in its shape);
        nothing is written. With `against_deployed`, the deployed versions (same id, else
        same name) run too and each firing says `only_new`, `only_deployed` or `both`.
        Bounded by TRIPWIRE_BACKTEST_MAX_EVENTS and TRIPWIRE_BACKTEST_MAX_SECONDS: past
        either, the answer holds what was done and `summary.cut` says which. Runs in a
        worker thread, so the other routes keep answering (docs/backtest.md).
        """
        now = datetime.now(UTC)
        times: dict[str, int | None] = {}
        for name in ("since", "until"):
            text = getattr(body, name)
            try:
                times[name] = to_us(since_time(text, now)) if text else None
            except ConfigError as exc:
                raise Refused(("body", name), str(exc), "value_error.time") from None
        since, until = times["since"], times["until"]
        if since is not None and until is not None and until <= since:
            raise Refused(("body", "until"), "`until` must be after `since`", "value_error.time")
        deployed = [stored.automation for stored in catalog.all()]
        try:
            versions = (
                versions_of(body.automations, deployed)
                if body.against_deployed
                else [None] * len(body.automations)
            )
        except ConfigError as exc:
            raise Refused(("body", "automations"), str(exc), "value_error.ambiguous") from None
        new: list[Automation] = []
        for index, (automation, version) in enumerate(zip(body.automations, versions, strict=True)):
            automation_id = automation.id or (
                version.id
                if version is not None and version.id
                else deterministic_id(automation.name)
            )
            try:
                new.append(_checked(automation, automation_id, allow_self_trigger))
            except Refused as exc:
                where = ("body", "automations", index, *exc.loc[1:])
                raise Refused(where, exc.message, exc.kind) from None
        old = [v.with_ids() for v in versions if v is not None] if body.against_deployed else None
        pairs = {
            str(v.with_ids().id): str(a.id)
            for a, v in zip(new, versions, strict=True)
            if v is not None
        }
        if backtests_running[0] >= settings.backtest_max_running:
            message = (
                f"{backtests_running[0]} backtests are running, the limit "
                "(TRIPWIRE_BACKTEST_MAX_RUNNING); try again when one has answered"
            )
            return JSONResponse({"exception_message": message}, status_code=429)
        max_events = min(
            body.max_events or settings.backtest_max_events, settings.backtest_max_events
        )
        limits = Limits(max_events, time.monotonic() + settings.backtest_max_seconds)
        backtests_running[0] += 1
        metrics.API_BACKTESTS_RUNNING.inc()
        try:
            # A worker thread: the evaluation is CPU work and the topic is read with a
            # private event loop, neither of which may hold up this loop's other routes.
            result = await asyncio.to_thread(
                over_topic, settings, new, old, pairs, since=since, until=until, limits=limits
            )
        except (ConfigError, KafkaError) as exc:
            return JSONResponse(
                {"exception_message": f"cannot read the events topic: {exc}"}, status_code=503
            )
        finally:
            backtests_running[0] -= 1
            metrics.API_BACKTESTS_RUNNING.dec()
        return result.to_json()

    @app.get("/api/block_documents/{id}", tags=["Blocks"])
    async def read_block_document(
        id: uuid.UUID,
        include_secrets: Annotated[bool, Query()] = False,
    ) -> Any:
        """The `webhook` block document served for an automation's URL target (read-only)."""
        target = url_targets(catalog.all()).get(id)
        if target is None:
            return JSONResponse(_BLOCK_NOT_FOUND, status_code=404)
        return block_document(id, target, include_secrets)

    # -- history: Prefect's events routes over the automation events kept -----------------

    def _page(request: Request, spec: EventFilter, limit: int, offset: int) -> dict[str, Any]:
        found = history().query(spec, time.time())
        page = found[offset : offset + limit]
        next_page = None
        if offset + limit < len(found) and limit > 0:
            token = {
                "filter": spec.model_dump(mode="json"),
                "limit": limit,
                "offset": offset + limit,
            }
            encoded = base64.b64encode(orjson.dumps(token)).decode()
            next_page = f"{request.base_url}api/events/filter/next?page-token={encoded}"
        return {
            "events": [_received(stored.event) for stored in page],
            "total": len(found),
            "next_page": next_page,
        }

    @app.post("/api/events/filter", tags=["Events"])
    async def read_events(
        request: Request,
        body: Annotated[EventsQuery, Body()] = EventsQuery(),  # noqa: B008
    ) -> dict[str, Any]:
        """The automations' firings and action outcomes, as Prefect's route pages events.

        Firings are `prefect.automation.triggered/resolved` events, action outcomes
        `prefect.automation.action.*` events; no other event is kept.
        """
        return _page(request, body.filter or EventFilter(), body.limit, 0)

    @app.get("/api/events/filter/next", tags=["Events"])
    async def read_events_page(
        request: Request, page_token: Annotated[str, Query(alias="page-token")]
    ) -> Any:
        try:
            token = orjson.loads(base64.b64decode(page_token.encode(), validate=True))
            spec = EventFilter.model_validate(token["filter"])
            limit, offset = int(token["limit"]), int(token["offset"])
            if not (0 < limit <= PAGE_SIZE and offset >= 0):
                raise ValueError(limit, offset)  # not a token this API wrote
        except (
            binascii.Error,
            orjson.JSONDecodeError,
            KeyError,
            TypeError,
            ValueError,
            ValidationError,
        ):
            return JSONResponse(
                {"detail": "Invalid page token: use the next_page link of a previous answer"},
                status_code=403,
            )
        return _page(request, spec, limit, offset)

    @app.get("/api/history/last-fired", tags=["Events"])
    async def last_fired() -> dict[str, Any]:
        """Tripwire: each automation's newest firing seen (its state event), by id."""
        return {
            automation_id: _received(event)
            for automation_id, event in history().last_fired().items()
        }

    @app.get("/api/automations/{id}/explain", tags=["Explain"])
    async def explain_automation(
        id: uuid.UUID,
        key: Annotated[
            str | None,
            Query(description="one bucketing key: its `for_each` values joined by commas"),
        ] = None,
    ) -> Any:
        """Live bucket state per trigger and key, read from the workers, and why."""
        stored = catalog.get(id)
        if stored is None:
            return JSONResponse(_NOT_FOUND, status_code=404)
        report = await explain(stored, workers, key, settings.api_token)
        report["recent_firings"] = history().recent(str(id), time.time(), _RECENT_FIRINGS)
        return report

    @app.get("/api/dead-letters", tags=["Dead letters"])
    async def read_dead_letters(
        kind: Annotated[
            DeadLetterKind | None, Query(description="`event` or `action`: one topic's only")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Tripwire: the newest dead-lettered events and actions, with their reasons.

        Read from the two dead-letter topics (`TRIPWIRE_TOPIC_EVENTS_DLQ`,
        `TRIPWIRE_TOPIC_ACTIONS_DLQ`); the API keeps the newest
        `TRIPWIRE_CONSOLE_DEAD_LETTERS` in memory, read again from the topics at start.
        """
        return {
            "following": dead_letter_feed.running,
            "kept": dead_letters.size,
            "dead_letters": dead_letters.newest(limit, kind.value if kind else None),
        }

    if settings.console_enabled:

        async def console_set_enabled(id: uuid.UUID, enabled: bool) -> str | None:
            try:
                await _set_enabled(id, enabled, allow_self_trigger=False)
            except Refused as refused:
                return refused.message
            except (WriteTimeout, WriteFailed, RecordTooLarge) as exc:
                return str(exc)
            return None

        register_console(
            app,
            Console(
                settings=settings,
                catalog=catalog,
                history=history,
                live=live,
                dead_letters=dead_letters,
                workers=workers,
                set_enabled=console_set_enabled,
            ),
        )

    return app


class DeadLetterKind(StrEnum):
    """Which dead-letter topic: events the worker could not use, or actions that failed."""

    EVENT = "event"
    ACTION = "action"


def _received(event: dict[str, Any]) -> dict[str, Any]:
    # Prefect's ReceivedEvent requires `received`; Tripwire's events are not received by
    # a server, so it is when they occurred.
    return {**event, "received": event.get("received") or event["occurred"]}
