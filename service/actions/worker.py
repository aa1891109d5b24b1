"""`tripwire actions`: consume firings in a consumer group, run their actions, commit after."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import defaultdict
from typing import Any

import httpx
from aiohttp import web
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError, KafkaError
from aiokafka.structs import TopicPartition

from service import metrics
from service.actions.delivery import RetryPolicy
from service.actions.effects import Services
from service.actions.prefect_client import HttpApi
from service.actions.render_pool import RenderLimits, RenderPool
from service.actions.runner import FiringHandler, Source
from service.actions.store import CompletionStore
from service.config import Settings
from service.logs import notice
from service.messaging.topics import ensure_topics
from service.readiness import health_body

__all__ = ["ActionWorker", "run_actions"]

logger = logging.getLogger(__name__)


class ActionWorker:
    """The consumer loop; per-action logic lives in runner.py and effects.py."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.ready = False
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        settings = self.settings
        await ensure_topics(settings)
        store = CompletionStore(settings.actions_state_dir, settings.actions_completed_ttl)
        producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap, acks="all")
        consumer = AIOKafkaConsumer(
            settings.topic_firings,
            bootstrap_servers=settings.kafka_bootstrap,
            group_id=settings.actions_group,
            enable_auto_commit=False,
            # Not "latest": Tansu's ListOffsets is wrong (broker notes, gap 1), and a new
            # group must not skip firings written before it started.
            auto_offset_reset="earliest",
            max_poll_records=settings.actions_concurrency,
            session_timeout_ms=int(settings.broker_session_timeout * 1000),
            heartbeat_interval_ms=int(settings.broker_heartbeat_interval * 1000),
            # A batch may retry for a while; leaving the group would only redeliver it.
            max_poll_interval_ms=max(300_000, int(settings.action_max_seconds * 4000)),
            fetch_max_wait_ms=100,
        )
        timeout = httpx.Timeout(settings.action_timeout)
        templates = RenderPool(
            RenderLimits(
                cpu_seconds=settings.template_cpu_seconds,
                max_output=settings.template_max_output,
                max_memory_mib=settings.template_max_memory,
            ),
            processes=settings.template_processes,
        )
        await templates.start()
        async with httpx.AsyncClient(timeout=timeout) as http:

            async def emit(key: bytes, value: bytes) -> None:
                await producer.send_and_wait(settings.topic_events, value, key=key)

            async def dead_letter(
                key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
            ) -> None:
                await producer.send_and_wait(
                    settings.topic_actions_dlq, value, key=key, headers=headers
                )

            services = Services(
                http=http,
                prefect=HttpApi(
                    http,
                    settings.prefect_api_url,
                    bearer=settings.prefect_api_key,
                    basic=settings.prefect_api_auth_string,
                ),
                tripwire=HttpApi(
                    http,
                    settings.api_url,
                    bearer=settings.api_token,
                    name="Tripwire",
                    setting="TRIPWIRE_API_URL",
                ),
                emit=emit,
                templates=templates,
            )
            policy = RetryPolicy(
                max_attempts=settings.action_max_attempts,
                max_seconds=settings.action_max_seconds,
                backoff=settings.action_backoff,
                backoff_max=settings.action_backoff_max,
            )
            announce = emit if settings.emit_action_events else None
            handler = FiringHandler(store, services, dead_letter, policy, announce)
            await producer.start()
            await consumer.start()
            try:
                await self._loop(consumer, handler, store)
            finally:
                self.ready = False
                await consumer.stop()
                await producer.stop()
                await templates.close()
                store.close()

    async def _loop(
        self, consumer: AIOKafkaConsumer, handler: FiringHandler, store: CompletionStore
    ) -> None:
        while not self.stopping.is_set():
            batches = await consumer.getmany(timeout_ms=500)
            self.ready = True
            if not batches:
                continue
            jobs: list[tuple[TopicPartition, int, asyncio.Task[None]]] = []
            for tp, records in batches.items():
                for record in records:
                    source = Source(tp.topic, tp.partition, record.offset)
                    task = asyncio.create_task(handler.handle(record.key, record.value, source))
                    jobs.append((tp, record.offset, task))
            await asyncio.wait([task for _, _, task in jobs])
            commit, retry_from = _positions(jobs)
            store.flush()
            if commit:
                try:
                    await consumer.commit(commit)
                except (CommitFailedError, KafkaError) as exc:
                    # Lost the partitions in a rebalance: their new owner redelivers the
                    # batch, and finds these completions only if it is this process.
                    logger.warning("offset commit failed: %s", exc)
            for tp, offset in retry_from.items():
                consumer.seek(tp, offset)
            if retry_from:
                await asyncio.sleep(1.0)

    def stop(self) -> None:
        self.stopping.set()


def _positions(
    jobs: list[tuple[TopicPartition, int, asyncio.Task[None]]],
) -> tuple[dict[TopicPartition, int], dict[TopicPartition, int]]:
    """Offsets to commit (every record before them done) and where to read again."""
    failed: dict[TopicPartition, int] = {}
    last: dict[TopicPartition, int] = defaultdict(lambda: -1)
    for tp, offset, task in jobs:
        last[tp] = max(last[tp], offset)
        error = task.exception()
        if error is not None:
            logger.error(
                "firing record not handled, will be read again: %s",
                error,
                extra={"partition": tp.partition, "offset": offset},
            )
            failed[tp] = min(failed.get(tp, offset), offset)
    commit: dict[TopicPartition, int] = {}
    for tp, highest in last.items():
        end = failed.get(tp, highest + 1)
        commit[tp] = end
    return commit, failed


async def _serve(worker: ActionWorker, settings: Settings) -> web.AppRunner | None:
    if not settings.actions_web_port:
        return None

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(
            body=metrics.exposition("actions"), headers={"Content-Type": metrics.CONTENT_TYPE}
        )

    def health() -> dict[str, Any]:
        return health_body(worker.ready, {"consumer_polled": worker.ready})

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response(health())

    async def readyz(request: web.Request) -> web.Response:
        return web.json_response(health(), status=200 if worker.ready else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.worker_web_host, settings.actions_web_port)
    await site.start()
    logger.info(
        "action worker web server on http://%s:%d",
        settings.worker_web_host,
        settings.actions_web_port,
    )
    return runner


async def _main(settings: Settings) -> None:
    worker = ActionWorker(settings)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, worker.stop)
    runner = await _serve(worker, settings)
    try:
        await worker.run()
    finally:
        if runner is not None:
            await runner.cleanup()


def run_actions(settings: Settings) -> int:
    """Run one action worker until SIGINT/SIGTERM; the batch in hand is finished first."""
    notice(
        logger,
        "action worker started: group %r on %r, dead letters to %r",
        settings.actions_group,
        settings.topic_firings,
        settings.topic_actions_dlq,
    )
    asyncio.run(_main(settings))
    return 0
