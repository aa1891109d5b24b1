"""The worker's operational pages (/metrics, /healthz, /readyz) and its consumer-lag gauge."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from service.metrics import CONSUMER_LAG, CONTENT_TYPE, exposition
from service.readiness import health_body
from topologies.runtime import Runtime

__all__ = ["OPEN_PAGES", "readiness", "register_web", "sample_consumer_lag"]

logger = logging.getLogger(__name__)

# How often the lag gauge is refreshed: a scrape every 15 s sees fresh values, and
# reading the offsets costs nothing on the record path.
LAG_INTERVAL = 5.0

# Everything the worker's web port answers without a token; explain (/explain/...) needs
# TRIPWIRE_API_TOKEN when one is set, and any other path is a 404.
OPEN_PAGES = frozenset({"/metrics", "/healthz", "/readyz"})
EXPLAIN_PREFIX = "/explain/"
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})

_Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def page_guard(token: str) -> Callable[[web.Request, _Handler], Awaitable[web.StreamResponse]]:
    """An aiohttp middleware: the open pages, explain behind `token`, and nothing else.

    Faust's own pages are turned off in the app's settings; this also closes any page a
    Faust upgrade might add (its index at `/` has no setting), so the port on 0.0.0.0 in
    a container shows no table data.
    """

    @web.middleware
    async def guard(request: web.Request, handler: _Handler) -> web.StreamResponse:
        path = request.path
        if path in OPEN_PAGES:
            return await handler(request)
        if not path.startswith(EXPLAIN_PREFIX):
            return web.json_response(
                {
                    "error": f"no page {path}: this worker serves /healthz, /readyz, /metrics "
                    "and /explain/{automation_id}/"
                },
                status=404,
            )
        if token:
            scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(credential, token):
                return web.json_response(
                    {"error": "explain needs 'Authorization: Bearer <TRIPWIRE_API_TOKEN>'"},
                    status=401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        return await handler(request)

    return guard


def readiness(app: Any, runtime: Runtime, tables: Iterable[str]) -> dict[str, Any]:
    """What /healthz and /readyz report; ready when automations are loaded and tables recovered.

    Not ready either while an agent reads partitions again after a batch that failed
    (`stalled` says why): that worker is not making progress on them.
    """
    loaded = runtime.automations_loaded.is_set()
    recovered = set(tables) <= runtime.recovered_tables and not app.in_recovery
    rebalancing = bool(app.rebalancing)
    stalled = dict(runtime.stalled)
    return health_body(
        loaded and recovered and not rebalancing and not stalled,
        {
            "automations_loaded": loaded,
            "tables_recovered": recovered,
            "rebalancing": rebalancing,
            "stalled": stalled,
        },
    )


async def sample_consumer_lag(app: Any, topics: Iterable[str], shown: set[tuple[str, int]]) -> None:
    """Set the lag gauge of each assigned source partition; drop partitions no longer held.

    Lag is the partition's high watermark (from the last Fetch response, right on Tansu
    too) minus its committed offset (the log's start while nothing is committed): what
    a restart would read again, so records handed out but never processed still count.
    """
    consumer = app.consumer
    wanted = set(topics)
    current: set[tuple[str, int]] = set()
    for tp in consumer.assignment():
        if tp.topic not in wanted:
            continue  # changelogs of actives and standbys are recovery, not lag
        try:
            highwater = consumer.highwater(tp)
            # Faust's last commit (private: it keeps no other); 0 reads as None there.
            position = consumer._committed_offset.get(tp)
            if position is None:
                position = (await consumer.earliest_offsets(tp)).get(tp)
        except Exception:  # revoked meanwhile; the next sample sees it
            logger.debug("no lag for %s", tp, exc_info=True)
            continue
        if highwater is None or position is None:
            continue
        CONSUMER_LAG.labels(tp.topic, str(tp.partition)).set(max(highwater - position, 0))
        current.add((tp.topic, tp.partition))
    for topic, partition in shown - current:
        CONSUMER_LAG.remove(topic, str(partition))
    shown.clear()
    shown.update(current)


def register_web(
    app: Any, runtime: Runtime, *, tables: Iterable[str], source_topics: Iterable[str]
) -> None:
    """Add the pages to the app's web server and the lag timer to its services."""
    table_names, topics = tuple(tables), tuple(source_topics)
    shown: set[tuple[str, int]] = set()
    # Before the server starts, aiohttp still takes middlewares.
    settings = runtime.settings
    app.web.web_app.middlewares.append(page_guard(settings.api_token))
    if not settings.api_token and settings.worker_web_host not in LOOPBACK:
        logger.warning(
            "the worker's web port listens on %s without TRIPWIRE_API_TOKEN: anyone who "
            "reaches it can read live bucket state through /explain/; set the token",
            settings.worker_web_host,
        )

    @app.page("/metrics")
    async def metrics(view: Any, request: Any) -> Any:
        # Content-Type as a header: aiohttp refuses a charset inside content_type.
        return view.bytes(exposition("worker"), headers={"Content-Type": CONTENT_TYPE})

    @app.page("/healthz")
    async def healthz(view: Any, request: Any) -> Any:
        # Answering at all is the proof of life: the event loop is running.
        return view.json(readiness(app, runtime, table_names))

    @app.page("/readyz")
    async def readyz(view: Any, request: Any) -> Any:
        state = readiness(app, runtime, table_names)
        return view.json(state, status=200 if state["ready"] else 503)

    @app.timer(interval=LAG_INTERVAL)
    async def _consumer_lag() -> None:
        try:
            await sample_consumer_lag(app, topics, shown)
        except Exception:  # a metric must never stop the worker
            logger.exception("consumer lag sample failed")
