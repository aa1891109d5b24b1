"""The console's pages, its live feed (server-sent events) and its pause/resume forms."""

from __future__ import annotations

import asyncio
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

import httpx
import orjson
from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, PackageLoader, StrictUndefined

from service.api.catalog import Catalog, Stored
from service.api.dead_letters import DeadLetters
from service.api.event_filter import EventFilter, EventOrder
from service.api.explain import explain
from service.api.history import History
from service.api.live import LiveFeed
from service.api.prefect_shape import served
from service.config import Settings
from service.console import auth
from service.console.summary import feed_item, trigger_summary
from service.console.timeline import BACKTEST_HOURS, RANGES, compare_layout, layout

__all__ = ["Console", "register_console"]

STATIC = Path(__file__).with_name("static")
# Automations per list page: each costs one explain (a request per worker).
PAGE = 100
# Explains of the list page at once: the workers answer each from memory, but not all at once.
EXPLAIN_AT_ONCE = 8
# Firings the feed page starts with before the live ones arrive.
FEED_START = 50
# A comment line keeps the stream open through proxies and finds gone browsers.
KEEP_ALIVE_SECONDS = 15.0
# Everything the console loads comes from its own origin; the timeline is inline SVG.
_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass
class Console:
    """What the console reads and does, handed over by the API that serves it."""

    settings: Settings
    catalog: Catalog
    history: Callable[[], History]
    live: LiveFeed
    dead_letters: DeadLetters
    workers: list[str]
    # Pause (False) or resume (True) an automation; the API's refusal message, or None.
    set_enabled: Callable[[uuid.UUID, bool], Awaitable[str | None]]


def _when(value: Any) -> str:
    if not value:
        return "never"
    moment = datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("service.console", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    return env


def _open_buckets(report: dict[str, Any]) -> int:
    return sum(len(trigger.get("buckets", [])) for trigger in report["triggers"])


def _same_origin(request: Request) -> bool:
    # A form posted from another site (a page the user visits) must not pause anything:
    # browsers send Origin on every POST; a client without one (curl) is not a browser.
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.headers.get("host", "")


def register_console(app: FastAPI, console: Console) -> None:
    """Add the console's routes (left out of the OpenAPI document) and its assets."""
    env = _environment()
    router = APIRouter(include_in_schema=False)
    token = console.settings.api_token

    def page(request: Request, template: str, status: int = 200, **values: Any) -> HTMLResponse:
        html = env.get_template(template).render(
            signed_in=bool(token) and request.cookies.get(auth.COOKIE) is not None,
            **values,
        )
        return HTMLResponse(html, status_code=status, headers=_HEADERS)

    async def report_of(stored: Stored) -> dict[str, Any]:
        return await explain(stored, console.workers, None, token)

    @router.get("/")
    async def root() -> Response:
        return RedirectResponse("/console/", status_code=307)

    @router.get("/console")
    async def console_root() -> Response:
        return RedirectResponse("/console/", status_code=307)

    @router.get("/console/")
    async def automations_page(
        request: Request, page_number: Annotated[int, Query(alias="page")] = 1
    ) -> HTMLResponse:
        everything = sorted(console.catalog.all(), key=lambda s: (s.automation.name, str(s.id)))
        pages = max(1, -(-len(everything) // PAGE))
        page_number = min(max(page_number, 1), pages)
        shown = everything[(page_number - 1) * PAGE : page_number * PAGE]
        last = console.history().last_fired()
        limit = asyncio.Semaphore(EXPLAIN_AT_ONCE)

        async def buckets(stored: Stored) -> int | None:
            if not stored.automation.enabled:
                return 0  # a paused automation holds no state
            async with limit:
                report = await report_of(stored)
            if report["workers"]["unreachable"]:
                return None  # some of its buckets could not be counted
            return _open_buckets(report)

        counts = await asyncio.gather(*(buckets(s) for s in shown))
        rows = [
            {
                "id": str(stored.id),
                "name": stored.automation.name,
                "enabled": stored.automation.enabled,
                "summary": trigger_summary(stored.automation.trigger),
                "last_fired": (last.get(str(stored.id)) or {}).get("occurred"),
                "open_buckets": count,
            }
            for stored, count in zip(shown, counts, strict=True)
        ]
        return page(
            request,
            "automations.html",
            rows=rows,
            total=len(everything),
            page_number=page_number,
            pages=pages,
            loaded=console.catalog.loaded,
        )

    @router.get("/console/automations/{automation_id}")
    async def automation_page(
        request: Request,
        automation_id: uuid.UUID,
        chosen: Annotated[str, Query(alias="range")] = "24h",
    ) -> HTMLResponse:
        stored = console.catalog.get(automation_id)
        if stored is None:
            return page(request, "missing.html", status=404, automation_id=str(automation_id))
        return await _automation(request, stored, chosen)

    async def _automation(
        request: Request,
        stored: Stored,
        chosen: str,
        refusal: str = "",
        status: int = 200,
        test: dict[str, Any] | None = None,
    ) -> HTMLResponse:
        chosen = chosen if chosen in RANGES else "24h"
        until = datetime.now(UTC)
        since = until - RANGES[chosen]
        spec = EventFilter.model_validate(
            {
                "occurred": {"since": since, "until": until},
                "resource": {"id": [f"prefect.automation.{stored.id}"]},
                "order": EventOrder.ASC,
            }
        )
        events = [found.event for found in console.history().query(spec, time.time())]
        failed = [
            {
                "occurred": event["occurred"],
                "action_index": (event.get("payload") or {}).get("action_index"),
                "action_type": (event.get("payload") or {}).get("action_type"),
                "reason": (event.get("payload") or {}).get("reason", ""),
                "firing": next(
                    (
                        str(r.get("prefect.resource.id", "")).removeprefix("prefect.event.")
                        for r in event.get("related") or []
                        if r.get("prefect.resource.role") == "automation-triggered-event"
                    ),
                    "",
                ),
            }
            for event in reversed(events)
            if event.get("event") == "prefect.automation.action.failed"
        ]
        report = await report_of(stored)
        last = console.history().last_fired().get(str(stored.id))
        return page(
            request,
            "automation.html",
            status=status,
            automation=stored.automation,
            automation_id=str(stored.id),
            summary=trigger_summary(stored.automation.trigger),
            prefect_json=json.dumps(served(stored), indent=2, sort_keys=False),
            report=report,
            open_buckets=_open_buckets(report),
            last_fired=(last or {}).get("occurred"),
            timeline=layout(events, since, until),
            ranges=list(RANGES),
            chosen=chosen,
            failed=failed,
            refusal=refusal,
            backtest_hours=BACKTEST_HOURS,
            **(test or _test_form(stored)),
        )

    async def _set(request: Request, automation_id: uuid.UUID, enabled: bool) -> Response:
        if not _same_origin(request):
            return Response("cross-site form refused", status_code=403, headers=_HEADERS)
        form = parse_qs((await request.body()).decode(errors="replace"))
        back = form.get("back", ["automation"])[0]
        stored = console.catalog.get(automation_id)
        if stored is None:
            return page(request, "missing.html", status=404, automation_id=str(automation_id))
        refusal = await console.set_enabled(automation_id, enabled)
        if refusal is not None:
            return await _automation(request, stored, "24h", refusal, status=422)
        target = "/console/" if back == "list" else f"/console/automations/{automation_id}"
        return RedirectResponse(target, status_code=303)

    @router.post("/console/automations/{automation_id}/pause")
    async def pause(request: Request, automation_id: uuid.UUID) -> Response:
        return await _set(request, automation_id, enabled=False)

    @router.post("/console/automations/{automation_id}/resume")
    async def resume(request: Request, automation_id: uuid.UUID) -> Response:
        return await _set(request, automation_id, enabled=True)

    @router.post("/console/automations/{automation_id}/backtest")
    async def backtest(request: Request, automation_id: uuid.UUID) -> Response:
        if not _same_origin(request):
            return Response("cross-site form refused", status_code=403, headers=_HEADERS)
        stored = console.catalog.get(automation_id)
        if stored is None:
            return page(request, "missing.html", status=404, automation_id=str(automation_id))
        form = parse_qs((await request.body()).decode(errors="replace"), keep_blank_values=True)
        text = form.get("automation", [""])[0]
        hours = _hours(form.get("hours", [""])[0])
        test = {**_test_form(stored), "test_json": text, "chosen_hours": hours}
        try:
            automation = json.loads(text)
        except ValueError as exc:
            test["backtest_error"] = f"Not valid JSON: {exc}"
            return await _automation(request, stored, "24h", status=422, test=test)
        until = datetime.now(UTC).replace(microsecond=0)
        since = until - timedelta(hours=hours)
        body = {
            "automations": [automation],
            "since": since.isoformat(),
            "until": until.isoformat(),
            "against_deployed": True,
        }
        status, answer = await _call_backtest(app, token, body)
        if status != 200:
            test["backtest_error"] = f"The backtest was refused ({status}): {_reason(answer)}"
            return await _automation(request, stored, "24h", status=status, test=test)
        test["backtest"] = {
            "hours": hours,
            "since": since,
            "until": until,
            "summary": answer["summary"],
            "firings": answer["firings"],
            "timeline": compare_layout(answer["firings"], since, until),
        }
        return await _automation(request, stored, "24h", test=test)

    @router.get("/console/feed")
    async def feed_page(request: Request) -> HTMLResponse:
        spec = EventFilter.model_validate({"order": EventOrder.DESC})
        recent = [feed_item(found.event) for found in console.history().query(spec, time.time())]
        return page(request, "feed.html", items=recent[:FEED_START])

    @router.get("/console/feed/stream")
    async def feed_stream(request: Request) -> StreamingResponse:
        async def events() -> AsyncIterator[bytes]:
            async with console.live.subscribe() as (queue, dropped):
                # Subscribed now: the page says it is live only from this line on.
                yield b"retry: 2000\nevent: ready\ndata: {}\n\n"
                told = 0
                while True:
                    try:
                        item = await asyncio.wait_for(queue.get(), KEEP_ALIVE_SECONDS)
                    except TimeoutError:
                        yield b": keep-alive\n\n"
                        continue
                    if item is None:
                        return  # the server is stopping
                    if dropped[0] != told:
                        yield b"event: dropped\ndata: %d\n\n" % (dropped[0] - told)
                        told = dropped[0]
                    yield b"event: item\ndata: " + orjson.dumps(feed_item(item)) + b"\n\n"

        headers = {**_HEADERS, "X-Accel-Buffering": "no"}
        return StreamingResponse(events(), media_type="text/event-stream", headers=headers)

    @router.get("/console/dead-letters")
    async def dead_letters_page(request: Request, kind: str = "") -> HTMLResponse:
        chosen = kind if kind in ("event", "action") else None
        return page(
            request,
            "dead_letters.html",
            letters=console.dead_letters.newest(kind=chosen),
            kind=chosen or "",
            kept=console.dead_letters.size,
            topics=(console.settings.topic_events_dlq, console.settings.topic_actions_dlq),
        )

    @router.get("/console/login")
    async def login_page(request: Request, next: str = "/console/") -> Response:
        if not token:
            return RedirectResponse("/console/", status_code=303)
        return page(request, "login.html", next=_local(next), failed=False)

    @router.post("/console/login")
    async def login(request: Request) -> Response:
        if not _same_origin(request):
            return Response("cross-site form refused", status_code=403, headers=_HEADERS)
        form = parse_qs((await request.body()).decode(errors="replace"))
        given = form.get("token", [""])[0]
        target = _local(form.get("next", ["/console/"])[0])
        if not token:
            return RedirectResponse("/console/", status_code=303)
        if not hmac.compare_digest(given, token):
            return page(request, "login.html", status=401, next=target, failed=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            auth.COOKIE,
            auth.session_value(token),
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/console",
        )
        return response

    @router.post("/console/logout")
    async def logout(request: Request) -> Response:
        response = RedirectResponse("/console/login", status_code=303)
        response.delete_cookie(auth.COOKIE, path="/console")
        return response

    app.include_router(router)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")


def _test_form(stored: Stored) -> dict[str, Any]:
    """The page's "test a change" form as it opens: the automation's own JSON, 24 hours."""
    data = served(stored)
    for name in ("created", "updated"):
        data.pop(name, None)  # the server's, not the automation's
    return {
        "test_json": json.dumps(data, indent=2),
        "chosen_hours": 24,
        "backtest": None,
        "backtest_error": "",
    }


def _hours(value: str) -> int:
    try:
        hours = int(value)
    except ValueError:
        return 24
    return hours if hours in BACKTEST_HOURS else 24


async def _call_backtest(
    app: FastAPI, token: str | None, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    """`POST /api/automations/backtest` on this same app, in process, as an API client would.

    Through the route itself (its checks, its 422s, its limits and its count of running
    backtests), with the bearer token: the console's cookie is not the API's credential.
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://console") as client:
        # No client timeout: the route bounds itself (TRIPWIRE_BACKTEST_MAX_SECONDS).
        response = await client.post(
            "/api/automations/backtest", json=body, headers=headers, timeout=None
        )
    try:
        answer = response.json()
    except ValueError:
        answer = {"exception_message": response.text}
    return response.status_code, answer if isinstance(answer, dict) else {"detail": answer}


def _reason(answer: dict[str, Any]) -> str:
    """What a refusal says: a 422's errors (Prefect's `exception_detail`), or its message."""
    detail = answer.get("exception_detail") or answer.get("detail")
    if isinstance(detail, list):
        parts = []
        for error in detail:
            if isinstance(error, dict):
                where = ".".join(str(part) for part in error.get("loc", [])[3:])
                parts.append(f"{where}: {error.get('msg', '')}" if where else str(error.get("msg")))
        if parts:
            return "; ".join(parts)
    return str(answer.get("exception_message") or detail or answer)


def _local(target: str) -> str:
    # Only a console path: `next` must not send a signed-in browser to another site.
    if target.startswith("/console/") and not target.startswith("//"):
        return target
    return "/console/"
