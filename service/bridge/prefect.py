"""`tripwire bridge prefect`: a Prefect server's live events onto Tripwire's events topic.

The protocol is Prefect's own events websocket (`/api/events/out`, as
`prefect.events.clients.PrefectEventSubscriber` speaks it): an `auth` message, then a
`filter` message whose `occurred.since` asks the server to backfill, then events. On
every (re)connect the bridge asks again from one minute before the newest `occurred` it
has produced, and drops event ids it has already produced, as Prefect's subscriber does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import websockets
from aiokafka import AIOKafkaProducer

from service.config import Settings
from service.errors import ConfigError
from service.logs import notice
from service.messaging.topics import ensure_topics

__all__ = ["PrefectBridge", "events_socket_url", "run_bridge"]

logger = logging.getLogger(__name__)

# Prefect's subscriber re-asks from one minute before the last event it saw.
REPLAY_MARGIN = timedelta(minutes=1)
# The server's websocket backfill reads its database, and its event persister writes
# there only every 5 s (PREFECT_SERVER_SERVICES_EVENT_PERSISTER_FLUSH_INTERVAL): events
# published while the bridge was away but not yet persisted when it re-subscribed are
# in neither the backfill nor the live stream. A second pass over the REST API, this
# long after each (re)connect, picks them up.
CATCH_UP_DELAY = 12.0
SEEN_IDS = 100_000


def events_socket_url(api_url: str) -> str:
    """Prefect's events_out_socket_from_api_url: http(s) -> ws(s), plus /events/out."""
    url = api_url.rstrip("/")
    if url.startswith("https://"):
        url = "wss://" + url.removeprefix("https://")
    elif url.startswith("http://"):
        url = "ws://" + url.removeprefix("http://")
    return url + "/events/out"


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


class PrefectBridge:
    """Follows one Prefect server's event stream and produces every event, keyed by resource."""

    def __init__(self, settings: Settings, since: datetime | None = None) -> None:
        if not settings.prefect_api_url:
            msg = "TRIPWIRE_PREFECT_API_URL is not set: which Prefect server should be bridged?"
            raise ConfigError(msg)
        self.settings = settings
        self.url = events_socket_url(settings.prefect_api_url)
        self.checkpoint = checkpoint_path(settings)
        self.saved_at = 0.0
        self.since = since or self._load_checkpoint() or datetime.now(UTC) - REPLAY_MARGIN
        self.seen: OrderedDict[str, None] = OrderedDict()
        self.produced = 0
        self.connections = 0
        self.stopping = asyncio.Event()

    def _load_checkpoint(self) -> datetime | None:
        try:
            return _parse(orjson.loads(self.checkpoint.read_bytes())["since"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save_checkpoint(self) -> None:
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.checkpoint.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({"since": self.since.isoformat()}))
        tmp.replace(self.checkpoint)

    async def run(self) -> None:
        await ensure_topics(self.settings)
        producer = AIOKafkaProducer(
            bootstrap_servers=self.settings.kafka_bootstrap, acks="all", linger_ms=5
        )
        await producer.start()
        try:
            failures = 0
            while not self.stopping.is_set():
                try:
                    await self._session(producer)
                    failures = 0
                except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                    failures += 1
                    logger.warning("Prefect event stream lost (%s); reconnecting", exc)
                if not self.stopping.is_set():
                    # The first two retries are quick (a load balancer's idle timeout),
                    # as Prefect's subscriber does; then at most one every 5 s.
                    delay = 0.0 if failures <= 2 else min(5.0, 0.5 * failures)
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self.stopping.wait(), timeout=max(delay, 0.1))
        finally:
            await producer.stop()
            self._save_checkpoint()

    async def _session(self, producer: AIOKafkaProducer) -> None:
        headers = {}
        if self.settings.prefect_api_key:
            headers["Authorization"] = f"Bearer {self.settings.prefect_api_key}"
        async with websockets.connect(
            self.url, subprotocols=[websockets.Subprotocol("prefect")], additional_headers=headers
        ) as socket:
            token = self.settings.prefect_api_key or self.settings.prefect_api_auth_string or None
            await socket.send(orjson.dumps({"type": "auth", "token": token}).decode())
            answer = orjson.loads(await socket.recv())
            if answer.get("type") != "auth_success":
                msg = f"the Prefect server refused the events stream: {answer.get('reason')}"
                raise ConfigError(msg)
            now = datetime.now(UTC)
            event_filter = {
                "occurred": {
                    "since": self.since.isoformat(),
                    "until": (now + timedelta(days=365)).isoformat(),
                }
            }
            await socket.send(orjson.dumps({"type": "filter", "filter": event_filter}).decode())
            self.connections += 1
            # At the default level: the one line that says the bridge is connected.
            notice(logger, "following %s from %s", self.url, self.since.isoformat())
            stop = asyncio.ensure_future(self.stopping.wait())
            catch_up = asyncio.ensure_future(self._catch_up(producer, self.since, now))
            try:
                while True:
                    receive = asyncio.ensure_future(socket.recv())
                    done, _ = await asyncio.wait(
                        {receive, stop}, return_when=asyncio.FIRST_COMPLETED
                    )
                    if stop in done:
                        receive.cancel()
                        return
                    await self._handle(producer, orjson.loads(receive.result()))
            finally:
                stop.cancel()
                catch_up.cancel()

    async def _catch_up(self, producer: AIOKafkaProducer, since: datetime, until: datetime) -> None:
        """Read [since, until] again from POST /events/filter once the persister has run."""
        await asyncio.sleep(CATCH_UP_DELAY)
        headers = {}
        if self.settings.prefect_api_key:
            headers["Authorization"] = f"Bearer {self.settings.prefect_api_key}"
        base = self.settings.prefect_api_url.rstrip("/")
        body = {
            "filter": {
                "occurred": {"since": since.isoformat(), "until": until.isoformat()},
                "order": "ASC",
            },
            "limit": 50,
        }
        try:
            async with httpx.AsyncClient(timeout=30, headers=headers) as http:
                page = (await http.post(f"{base}/events/filter", json=body)).json()
                found = 0
                while True:
                    for event in page.get("events") or []:
                        found += await self._handle(producer, {"type": "event", "event": event})
                    if not page.get("next_page"):
                        break
                    page = (await http.get(page["next_page"])).json()
        except (httpx.HTTPError, ValueError) as exc:
            logger.warning("catch-up read of the Prefect events failed: %s", exc)
            return
        if found:
            logger.info("catch-up found %d events the stream had not delivered", found)

    async def _handle(self, producer: AIOKafkaProducer, message: dict[str, Any]) -> int:
        """Produce one event unless already produced; 1 if it was produced."""
        if message.get("type") != "event":
            return 0
        event = message.get("event") or {}
        event_id = str(event.get("id", ""))
        if not event_id or event_id in self.seen:
            return 0
        # Marked before the send: the stream and the catch-up pass may both hold it.
        self.seen[event_id] = None
        resource_id = str((event.get("resource") or {}).get("prefect.resource.id", ""))
        try:
            await producer.send_and_wait(
                self.settings.topic_events, orjson.dumps(event), key=resource_id.encode()
            )
        except BaseException:
            self.seen.pop(event_id, None)  # not produced: a replay must not skip it
            raise
        self.produced += 1
        if len(self.seen) > SEEN_IDS:
            self.seen.popitem(last=False)
        try:
            replay_since = _parse(str(event["occurred"])) - REPLAY_MARGIN
        except (KeyError, ValueError):
            return 1
        if replay_since > self.since:
            self.since = replay_since
            # At most once a second: a crash replays a little more, and the events topic's
            # consumers drop repeated ids.
            if time.monotonic() - self.saved_at >= 1.0:
                self._save_checkpoint()
                self.saved_at = time.monotonic()
        return 1

    def stop(self) -> None:
        self.stopping.set()


async def _main(settings: Settings, since: datetime | None) -> None:
    bridge = PrefectBridge(settings, since)
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, bridge.stop)
    await bridge.run()


def run_bridge(settings: Settings, since: str | None = None) -> int:
    """Bridge the Prefect server at TRIPWIRE_PREFECT_API_URL until SIGINT/SIGTERM."""
    start = None
    if since:
        try:
            start = _parse(since)
        except ValueError:
            msg = f"--since must be an ISO 8601 timestamp, not {since!r}"
            raise ConfigError(msg) from None
        if start.tzinfo is None:
            start = start.replace(tzinfo=UTC)
    asyncio.run(_main(settings, start))
    return 0


def checkpoint_path(settings: Settings) -> Path:
    """Where the bridge keeps the time it resumes from."""
    return settings.data_dir / "bridge-prefect.json"
