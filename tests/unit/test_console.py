"""The console's parts without a server: live feed fan-out, dead letters, timeline, summaries, assets."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson

from service.api.dead_letters import PREVIEW_CHARS, DeadLetters, dead_letter
from service.api.live import LiveFeed
from service.console.auth import session_value
from service.console.summary import feed_item, trigger_summary
from service.console.timeline import compare_layout, layout
from service.messaging.records import dead_letter_headers
from service.models.automations import parse_automation

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)
CONSOLE = Path(__file__).resolve().parents[2] / "service" / "console"


def _event(name: str, at: datetime, **payload: Any) -> dict[str, Any]:
    return {
        "id": f"{name}-{at.isoformat()}",
        "occurred": at.isoformat(),
        "event": name,
        "resource": {
            "prefect.resource.id": "prefect.automation.a1",
            "prefect.resource.name": "etl",
        },
        "payload": payload,
    }


def test_a_slow_subscriber_loses_its_oldest_events_and_never_blocks_the_publisher() -> None:
    async def scenario() -> tuple[list[Any], list[int], list[Any], int]:
        feed = LiveFeed(queue_size=5)
        async with feed.subscribe() as (slow, slow_dropped), feed.subscribe() as (fast, _):
            got_fast: list[Any] = []
            for n in range(20):
                # Never awaits: a full queue makes room by dropping its oldest.
                feed.publish([_event("prefect.automation.triggered", NOW + timedelta(seconds=n))])
                got_fast.append(fast.get_nowait())
            kept = [slow.get_nowait() for _ in range(slow.qsize())]
            assert feed.subscribers == 2
            feed.close()
            ended = fast.get_nowait()
        return kept, slow_dropped, got_fast, feed.subscribers if ended is None else -1

    kept, dropped, fast, left = asyncio.run(scenario())
    assert [e["occurred"] for e in kept] == [
        (NOW + timedelta(seconds=n)).isoformat() for n in range(15, 20)
    ]
    assert dropped == [15]
    assert len(fast) == 20
    assert left == 0  # unsubscribed on leaving, and close ended the stream


def test_a_batch_is_published_in_time_order_firing_before_its_actions() -> None:
    async def scenario() -> list[str]:
        feed = LiveFeed(queue_size=10)
        async with feed.subscribe() as (queue, _):
            feed.publish(
                [
                    _event("prefect.automation.action.executed", NOW, action_index=0),
                    _event("prefect.automation.action.triggered", NOW, action_index=0),
                    _event("prefect.automation.triggered", NOW),
                    _event("prefect.automation.triggered", NOW - timedelta(seconds=1)),
                ]
            )
            return [str(queue.get_nowait()["id"]).split("-20")[0] for _ in range(4)]

    assert asyncio.run(scenario()) == [
        "prefect.automation.triggered",
        "prefect.automation.triggered",
        "prefect.automation.action.triggered",
        "prefect.automation.action.executed",
    ]


def test_dead_letters_keep_the_newest_and_read_the_action_document() -> None:
    kept = DeadLetters(size=3)
    headers = dead_letter_headers("invalid event: not JSON", "tripwire.events", 2, 41)
    kept.add(
        dead_letter("event", "dlq", 0, n, 1_700_000_000_000 + n, b"k", b"x" * 5000, headers)
        for n in range(5)
    )
    document = {
        "firing": {"id": "f1", "automation_id": "a1", "automation_name": "etl"},
        "action_index": 1,
        "action": {"type": "call-webhook", "url": "http://127.0.0.1:9/"},
        "error": "Unexpected status from 'call-webhook' action: 404",
        "attempts": 5,
    }
    action = dead_letter(
        "action", "adlq", 1, 0, 1_700_000_000_010, b"f1", orjson.dumps(document), []
    )
    kept.add([action])
    newest = kept.newest()
    assert [(d["kind"], d["offset"]) for d in newest] == [("action", 0), ("event", 4), ("event", 3)]
    assert kept.newest(kind="event", limit=1)[0]["offset"] == 4
    event = newest[1]
    assert event["reason"] == "invalid event: not JSON"
    assert event["source"] == {"topic": "tripwire.events", "partition": "2", "offset": "41"}
    assert len(event["value"]) == PREVIEW_CHARS and event["truncated"] is True
    assert (action["automation_name"], action["action_type"], action["attempts"]) == (
        "etl",
        "call-webhook",
        5,
    )
    assert action["error"].endswith("404")
    # The same record read again (a reconnect) is not a second dead letter.
    kept.add([action])
    assert len(kept.newest()) == 3


def test_timeline_places_marks_by_time_and_row_and_counts_them() -> None:
    since, until = NOW - timedelta(hours=1), NOW
    events = [
        _event("prefect.automation.triggered", since),
        _event("prefect.automation.action.triggered", since + timedelta(minutes=30)),
        _event(
            "prefect.automation.action.failed",
            until,
            action_index=1,
            action_type="call-webhook",
            reason="refused",
        ),
        _event("prefect.automation.resolved", until + timedelta(seconds=1)),  # out of range
    ]
    plot = layout(events, since, until)
    assert plot.counts == {"triggered": 1, "resolved": 0, "executed": 0, "failed": 1}
    first, last = plot.marks
    assert (first.x, last.x) == (plot.left, plot.right)
    rows = {kind: y for kind, _, y in plot.rows}
    assert (first.y, last.y) == (rows["triggered"], rows["failed"])
    assert last.title == "2026-01-02 12:00:00 UTC: failed, action 1 call-webhook: refused"
    # Ticks on round times inside the range, left to right.
    assert [label for _, label in plot.ticks] == [
        "11:10",
        "11:20",
        "11:30",
        "11:40",
        "11:50",
        "12:00",
    ]
    week = layout([], NOW - timedelta(days=7), NOW)
    assert week.ticks[0][1] == "Dec 27 00:00" and len(week.ticks) == 7


def _firing(diff: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "diff": diff,
        "fired_at": at.isoformat().replace("+00:00", "Z"),
        "state": "Triggered",
        "path": "trigger",
        "bucket": {"prefect.resource.id": "prefect.flow-run.r1"},
        "triggering_event": "e1",
        **extra,
    }


def test_a_backtest_timeline_has_a_row_per_version_and_draws_shared_firings_on_both() -> None:
    since, until = NOW - timedelta(hours=6), NOW
    firings = [
        _firing("only_new", since),
        _firing("only_deployed", since + timedelta(hours=3), path="trigger.triggers[1]"),
        # Both fire it; the deployed version an hour earlier.
        _firing(
            "both",
            until,
            deployed={"id": "d", "fired_at": (until - timedelta(hours=1)).isoformat()},
        ),
        _firing("only_new", until + timedelta(seconds=1)),  # out of range
    ]
    plot = compare_layout(firings, since, until)
    rows = {kind: y for kind, _, y in plot.rows}
    assert [label for _, label, _ in plot.rows] == ["new version", "deployed"]
    assert plot.counts == {"new": 2, "deployed": 2}
    placed = [(m.kind, m.y, m.x) for m in plot.marks]
    middle = plot.left + (plot.right - plot.left) / 2
    assert placed == [
        ("only_new", rows["new"], plot.left),
        ("only_deployed", rows["deployed"], middle),
        ("both", rows["new"], plot.right),
        ("both", rows["deployed"], round(plot.left + (plot.right - plot.left) * 5 / 6, 1)),
    ]
    assert plot.marks[1].title == (
        "2026-01-02 09:00:00 UTC: Triggered (only deployed) trigger.triggers[1], "
        "prefect.resource.id=prefect.flow-run.r1, event e1"
    )


def test_trigger_summaries_say_what_each_kind_waits_for() -> None:
    def summary(trigger: dict[str, Any]) -> str:
        automation = parse_automation({"name": "a", "trigger": trigger, "actions": []})
        return trigger_summary(automation.trigger)

    event = {
        "type": "event",
        "posture": "Reactive",
        "expect": ["prefect.flow-run.Failed"],
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "for_each": ["prefect.resource.id"],
        "threshold": 3,
        "within": 90,
    }
    assert summary(event) == (
        "Reactive: 3 x prefect.flow-run.Failed within 1m30s "
        "on prefect.resource.id=prefect.flow-run.*, per prefect.resource.id"
    )
    stuck = {
        "type": "event",
        "posture": "Proactive",
        "after": ["prefect.flow-run.Running"],
        "expect": ["prefect.flow-run.Completed"],
        "threshold": 1,
        "within": 3600,
    }
    assert summary(stuck) == (
        "Proactive: fewer than 1 x prefect.flow-run.Completed after prefect.flow-run.Running "
        "within 1h"
    )
    both = {"type": "compound", "require": "all", "within": 60, "triggers": [event, stuck]}
    assert summary(both).startswith("Compound, all of 2 within 1m: [Reactive: 3 x")


def test_feed_items_describe_firings_and_action_outcomes() -> None:
    fired = _event(
        "prefect.automation.triggered",
        NOW,
        triggering_event={"event": "prefect.flow-run.Failed"},
        triggering_labels={"prefect.resource.id": "prefect.flow-run.r1"},
    )
    item = feed_item(fired)
    assert (item["kind"], item["state"], item["automation_id"], item["automation_name"]) == (
        "firing",
        "triggered",
        "a1",
        "etl",
    )
    assert item["detail"] == "on prefect.flow-run.Failed [prefect.resource.id=prefect.flow-run.r1]"
    started = feed_item(
        _event("prefect.automation.action.triggered", NOW, action_index=0, action_type="x")
    )
    assert (started["kind"], started["state"]) == ("action", "started")


def test_the_session_cookie_is_not_the_token() -> None:
    assert session_value("t") != "t"
    assert session_value("t") == session_value("t") != session_value("u")


def test_templates_and_assets_name_no_other_origin() -> None:
    # The pages' own markup; what a page shows of the user's data is checked in the browser.
    files = [*CONSOLE.glob("templates/*.html"), *CONSOLE.glob("static/*")]
    assert len(files) >= 8
    for path in files:
        assert re.findall(r"https?://", path.read_text()) == [], path
