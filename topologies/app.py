"""Build the Faust app of one worker: topics, tables, agents and the tick timer."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Any

import faust

from service.config import Settings
from service.messaging.compat import install_faust_patch
from service.messaging.ordered_fetch import install_ordered_fetch, positions_of
from service.state.documents import DocumentStore
from topologies.automations import follow_automations
from topologies.batches import BatchRunner
from topologies.compose import compose_batch
from topologies.evaluate import evaluate_batch
from topologies.explain import register_explain
from topologies.proactive import tick
from topologies.progress import RouteProgress, progress_tick
from topologies.route import route_batch, route_tick
from topologies.runtime import Headers, Runtime
from topologies.tables import PartitionTable
from topologies.web import register_web

__all__ = ["create_app"]

logger = logging.getLogger(__name__)


def create_app(settings: Settings) -> tuple[faust.App, Runtime]:
    """A configured Faust app and the runtime its agents share."""
    install_faust_patch(settings.fetch_wait_ms)
    install_ordered_fetch()

    async def send(
        topic_name: str,
        key: bytes | None,
        value: bytes | None,
        partition: int | None,
        headers: Headers | None,
    ) -> Any:
        # `app` is looked up when a record is sent, once it is built below.
        return await app.producer.send(topic_name, key, value, partition, None, headers)

    runtime = Runtime(settings, send)
    app = faust.App(
        settings.app_id,
        broker=[f"kafka://{host}" for host in settings.kafka_bootstrap.split(",")],
        store="rocksdb://",
        datadir=str(settings.state_dir),
        topic_partitions=settings.partitions,
        processing_guarantee="at_least_once",
        broker_session_timeout=settings.broker_session_timeout,
        broker_heartbeat_interval=settings.broker_heartbeat_interval,
        table_standby_replicas=settings.standby_replicas,
        web_enabled=settings.worker_web_port > 0,
        web_port=max(settings.worker_web_port, 1),
        web_host=settings.worker_web_host,
        # Faust's own pages (table contents, key routing, cluster assignment, sensor
        # statistics, the service graph) are off: the web port serves only
        # topologies/web.py's and explain, which is behind the API token.
        web_router_enabled=False,
        web_tables_enabled=False,
        web_stats_enabled=False,
        web_graph_enabled=False,
        web_metrics_enabled=False,
        autodiscover=False,
        # Room to dead-letter the largest record we accept, with its headers.
        producer_max_request_size=max(settings.max_event_bytes + 65_536, 1_048_576),
        producer_max_batch_size=settings.producer_batch_bytes,
        producer_request_timeout=settings.producer_timeout,
        topic_allow_declare=True,
    )

    def topic(name: str) -> Any:
        return app.topic(
            name,
            key_type=bytes,
            value_type=bytes,
            key_serializer="raw",
            value_serializer="raw",
            partitions=settings.partitions,
        )

    events, matches, child_firings = (
        topic(settings.topic_events),
        topic(settings.topic_matches),
        topic(settings.topic_child_firings),
    )

    def table(
        name: str,
        stores: dict[int, DocumentStore],
        new_store: Callable[[], DocumentStore] = DocumentStore,
    ) -> PartitionTable:
        return PartitionTable(
            app.Table(
                name,
                partitions=settings.partitions,
                key_type=bytes,
                value_type=bytes,
                schema=faust.Schema(
                    key_type=bytes,
                    value_type=bytes,
                    key_serializer="raw",
                    value_serializer="raw",
                ),
            ),
            stores,
            new_store,
        )

    # Tables of one number of partitions are co-partitioned with the source topics: a
    # worker owns route[p] with events[p], buckets[p] with matches[p], and so on.
    route_table = table("route", runtime.route_stores, runtime.route_store)
    buckets = table("buckets", runtime.evaluate_stores)
    composites = table("composites", runtime.compose_stores)
    tables = (route_table, buckets, composites)

    batch, linger = settings.batch_size, settings.batch_linger

    def runner(name: str) -> BatchRunner:
        return BatchRunner(name, lambda: positions_of(app.consumer), runtime.stalled)

    route_runner, evaluate_runner, compose_runner = map(runner, ("route", "evaluate", "compose"))

    progress = RouteProgress(runtime, lambda: app.consumer)

    @app.agent(events, name="route")
    async def route(stream: Any) -> None:
        """Decode, validate and order events; fan them out as matches."""
        async for batch_events in stream.take_events(batch, within=linger):
            await route_runner.run(
                batch_events, partial(route_batch, runtime, route_table, progress)
            )

    @app.agent(matches, name="evaluate")
    async def evaluate(stream: Any) -> None:
        """Apply matches to the buckets of this worker's partitions."""
        async for batch_events in stream.take_events(batch, within=linger):
            await evaluate_runner.run(
                batch_events,
                partial(evaluate_batch, runtime, buckets, positions_of(app.consumer)),
            )

    @app.agent(child_firings, name="compose")
    async def compose(stream: Any) -> None:
        """Combine child firings into composite firings."""
        async for batch_events in stream.take_events(batch, within=linger):
            await compose_runner.run(batch_events, partial(compose_batch, runtime, composites))

    for each in tables:

        async def recovered(each: PartitionTable = each) -> None:
            each.load()
            runtime.recovered_tables.add(each.table.name)

        each.table.on_recover(recovered)

    @app.on_partitions_revoked.connect
    async def _revoked(sender: Any, /, *args: Any, signal: Any, **kwargs: Any) -> None:
        # Sent once the agents finished their batches. A revoked partition may go to
        # another worker, and a store kept here would be stale by the time it returns:
        # the tick would write it over the new owner's documents. Recovery rebuilds them.
        async with route_table.lock, buckets.lock, composites.lock:
            for each in tables:
                each.stores.clear()
            # Stream time starts again from what the new owners tell.
            progress.reset()
            runtime.watermarks.clear()
            # Held matches go with their partitions: no commit passed them, so whoever
            # owns a partition next reads them again.
            runtime.holds.clear()

    @app.task
    async def _automations() -> None:
        await follow_automations(runtime, settings.data_dir / "automations.json")

    @app.timer(interval=settings.tick_interval)
    async def _tick() -> None:
        await route_tick(runtime, route_table)
        await tick(runtime, buckets)

    # Several reports per tick: a deadline is judged within a tick of the watermark
    # passing it, however the route and evaluate timers of two workers interleave; and
    # while events flow, matches of one worker's sources wait for another's at most this
    # long (progress_tick reports less often while route is idle).
    @app.timer(interval=min(settings.progress_interval, settings.tick_interval / 5))
    async def _progress() -> None:
        await progress_tick(runtime, progress, route_table)

    if settings.worker_web_port > 0:
        register_explain(app, runtime)
        register_web(
            app,
            runtime,
            tables=tuple(each.table.name for each in tables),
            source_topics=(
                settings.topic_events,
                settings.topic_matches,
                settings.topic_child_firings,
            ),
        )
    return app, runtime
