"""One firing record in, its actions done or dead-lettered out, each at most once."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import ValidationError

from service.actions.delivery import RetryPolicy, deliver
from service.actions.effects import ActionRun, Services, perform
from service.actions.outcome_events import Outcome, outcome_events
from service.actions.store import CompletionStore
from service.messaging.records import dead_letter_headers
from service.metrics import ACTION_ATTEMPTS, ACTION_DLQ, ACTION_FAILURES, ACTION_SUCCESSES
from service.models.actions import action_spec
from service.models.firings import FiringRecord

__all__ = ["DeadLetter", "FiringHandler", "Planned", "plan"]

logger = logging.getLogger(__name__)

DeadLetter = Callable[[bytes | None, bytes, list[tuple[str, bytes]]], Awaitable[None]]
# Produces one event (key, value) to the events topic.
Announce = Callable[[bytes, bytes], Awaitable[None]]


@dataclass(frozen=True)
class Planned:
    """An action to run for a firing, at its index in Prefect's numbering."""

    index: int
    action: Mapping[str, Any]
    event: Mapping[str, Any] | None


def plan(record: Mapping[str, Any]) -> list[Planned]:
    """The actions of a firing, numbered as Prefect's act() numbers them.

    `actions` run on every firing with the triggering event, then
    `actions_on_trigger` (Triggered) or `actions_on_resolve` (Resolved) with the
    firing's own state event as their triggering event; indexes run across all three.
    """
    state_event = record.get("state_event")
    sources: list[tuple[Mapping[str, Any], Mapping[str, Any] | None]] = [
        (a, record.get("triggering_event")) for a in record.get("actions") or []
    ]
    if record["state"] == "Triggered":
        sources += [(a, state_event) for a in record.get("actions_on_trigger") or []]
    if record["state"] == "Resolved":
        sources += [(a, state_event) for a in record.get("actions_on_resolve") or []]
    return [Planned(i, action, event) for i, (action, event) in enumerate(sources)]


@dataclass(frozen=True)
class Source:
    """Where a firing record was read."""

    topic: str
    partition: int
    offset: int


class FiringHandler:
    """Runs the actions of firing records; never raises for a bad record or action.

    It raises only when Tripwire's own infrastructure fails (the dead-letter topic
    cannot be written, the completion table cannot be read): the caller must then
    not commit the record's offset.
    """

    def __init__(
        self,
        store: CompletionStore,
        services: Services,
        dead_letter: DeadLetter,
        policy: RetryPolicy,
        announce: Announce | None = None,
    ) -> None:
        self.store = store
        self.services = services
        self.dead_letter = dead_letter
        self.policy = policy
        self.announce = announce

    async def handle(self, key: bytes | None, value: bytes | None, source: Source) -> None:
        try:
            record = _decode(value)
        except ValueError as exc:
            reason = f"bad firing record: {exc}"
            logger.warning(
                "bad firing record dead-lettered",
                extra={"reason": reason, "partition": source.partition, "offset": source.offset},
            )
            await self._dead_letter_record(key, value, reason, source)
            return
        for planned in plan(record):
            await self._one(record, planned, source)

    async def _one(self, record: dict[str, Any], planned: Planned, source: Source) -> None:
        key = f"{record['id']}:{planned.index}"
        action_type = str(planned.action.get("type"))
        log = {
            "automation_id": record["automation_id"],
            "firing_id": record["id"],
            "action": f"{planned.index}:{action_type}",
        }
        done = self.store.outcome(key)
        if done is not None:
            logger.info("action already completed; skipped", extra=log)
            # The crash may have come between the completion and its events: announce
            # it again, with the same ids (the router and the history drop repeats).
            if isinstance(done.get("finished"), str):
                kind: Outcome = "executed" if done.get("outcome") == "done" else "failed"
                finished = datetime.fromisoformat(str(done["finished"]))
                error = done.get("error")
                extra = done.get("details")
                await self._announce(
                    record,
                    planned,
                    kind,
                    finished,
                    str(error) if error is not None else None,
                    extra if isinstance(extra, dict) else None,
                )
            return
        try:
            spec = action_spec(dict(planned.action))
        except (ValidationError, ValueError) as exc:
            reason = f"invalid action: {_one_line(exc)}"
            await self._give_up(record, planned, reason, 0, source, log)
            return
        run = ActionRun(record, planned.index, spec, planned.event)

        def failed(attempt: int, reason: str, again: bool) -> None:
            ACTION_FAILURES.labels(action_type).inc()
            logger.warning(
                "action attempt %d failed%s: %s",
                attempt,
                ", will retry" if again else "",
                reason,
                extra={**log, "reason": reason},
            )

        async def attempt() -> None:
            ACTION_ATTEMPTS.labels(action_type).inc()
            await perform(run, self.services)

        outcome = await deliver(attempt, self.policy, on_failure=failed)
        if outcome.ok:
            ACTION_SUCCESSES.labels(action_type).inc()
            finished = datetime.now(UTC)
            self.store.record(
                key,
                "done",
                outcome.attempts,
                finished=finished.isoformat(),
                details=run.details,
            )
            logger.info("action done after %d attempt(s)", outcome.attempts, extra=log)
            await self._announce(record, planned, "executed", finished, None, run.details)
            return
        await self._give_up(
            record, planned, outcome.error or "failed", outcome.attempts, source, log, run.details
        )

    async def _give_up(
        self,
        record: dict[str, Any],
        planned: Planned,
        reason: str,
        attempts: int,
        source: Source,
        log: dict[str, Any],
        details: dict[str, Any] | None = None,
    ) -> None:
        document = {
            "firing": record,
            "action_index": planned.index,
            "action": planned.action,
            "error": reason,
            "attempts": attempts,
            "details": details or {},
            "dead_lettered_at": datetime.now(UTC).isoformat(),
        }
        headers = [
            *dead_letter_headers(reason, source.topic, source.partition, source.offset),
            ("tripwire.firing-id", str(record["id"]).encode()),
            ("tripwire.action-index", str(planned.index).encode()),
        ]
        await self.dead_letter(str(record["id"]).encode(), orjson.dumps(document), headers)
        ACTION_DLQ.labels(str(planned.action.get("type"))).inc()
        finished = datetime.now(UTC)
        # A dead-lettered action is complete too: a redelivery must not run it again.
        self.store.record(
            f"{record['id']}:{planned.index}",
            "dead-lettered",
            attempts,
            finished=finished.isoformat(),
            error=reason,
            details=details or {},
        )
        logger.error("action dead-lettered: %s", reason, extra={**log, "reason": reason})
        await self._announce(record, planned, "failed", finished, reason, details)

    async def _announce(
        self,
        record: dict[str, Any],
        planned: Planned,
        outcome: Outcome,
        finished: datetime,
        reason: str | None,
        details: Mapping[str, Any] | None,
    ) -> None:
        # After the completion is recorded: a failure to announce raises, the firing is
        # read again, and the completed action is announced (not run) again.
        if self.announce is None:
            return
        events = outcome_events(
            record,
            planned.index,
            str(planned.action.get("type")),
            planned.event,
            outcome,
            finished,
            reason,
            details,
        )
        key = f"prefect.automation.{record['automation_id']}".encode()
        for event in events:
            # One at a time, in order: `.executed` follows `.triggered` in one partition.
            await self.announce(key, orjson.dumps(event))

    async def _dead_letter_record(
        self, key: bytes | None, value: bytes | None, reason: str, source: Source
    ) -> None:
        text = (value or b"").decode("utf-8", errors="replace")
        document: dict[str, Any] = {
            "firing": None,
            "firing_raw": text,
            "action_index": None,
            "action": None,
            "error": reason,
            "attempts": 0,
            "details": {},
            "dead_lettered_at": datetime.now(UTC).isoformat(),
        }
        headers = dead_letter_headers(reason, source.topic, source.partition, source.offset)
        await self.dead_letter(key, orjson.dumps(document), headers)
        ACTION_DLQ.labels("-").inc()


def _decode(value: bytes | None) -> dict[str, Any]:
    if value is None:
        msg = "empty record"
        raise ValueError(msg)
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        msg = f"not JSON: {exc}"
        raise ValueError(msg) from None
    try:
        FiringRecord.model_validate(data)
    except ValidationError as exc:
        raise ValueError(_one_line(exc)) from None
    record: dict[str, Any] = data
    return record


def _one_line(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" if e["loc"] else e["msg"]
            for e in exc.errors()
        )
    return str(exc).replace("\n", " ")
