"""Action outcome events, the self-loop check on them, the events filter and the history store."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from service.actions.outcome_events import action_event_id, outcome_events
from service.api.event_filter import EventFilter
from service.api.history import History, automation_event
from service.api.loops import action_event_loops
from service.automations_cli import firings_of, since_time
from service.errors import ConfigError
from service.models.automations import parse_automation

NOW = datetime(2026, 1, 2, 12, 0, tzinfo=UTC)


def _record(automation_id: str, fired_at: datetime = NOW) -> dict[str, Any]:
    firing_id = str(uuid.uuid4())
    return {
        "id": firing_id,
        "automation_id": automation_id,
        "automation_name": "etl",
        "fired_at": fired_at.isoformat().replace("+00:00", "Z"),
        "state_event": {
            "id": str(uuid.uuid5(uuid.NAMESPACE_URL, firing_id)),
            "occurred": fired_at.isoformat().replace("+00:00", "Z"),
            "event": "prefect.automation.triggered",
            "resource": {
                "prefect.resource.id": f"prefect.automation.{automation_id}",
                "prefect.resource.name": "etl",
                "prefect.posture": "Reactive",
            },
            "related": [],
            "payload": {"triggering_labels": {}, "triggering_event": None},
        },
    }


def test_outcome_events_have_prefects_shape_and_deterministic_ids() -> None:
    automation_id = str(uuid.uuid4())
    record = _record(automation_id)
    triggering = {"id": str(uuid.uuid4())}
    done = NOW + timedelta(seconds=3)
    triggered, failed = outcome_events(
        record, 2, "call-webhook", triggering, "failed", done, "HTTP 500", {"status_code": 500}
    )
    assert triggered["event"] == "prefect.automation.action.triggered"
    assert failed["event"] == "prefect.automation.action.failed"
    assert triggered["resource"] == {
        "prefect.resource.id": f"prefect.automation.{automation_id}",
        "prefect.resource.name": "etl",
        "prefect.trigger-type": "event",
        "prefect.posture": "Reactive",
    }
    assert triggered["related"] == [
        {
            "prefect.resource.id": f"prefect.event.{record['state_event']['id']}",
            "prefect.resource.role": "automation-triggered-event",
        },
        {
            "prefect.resource.id": f"prefect.event.{triggering['id']}",
            "prefect.resource.role": "triggering-event",
        },
    ]
    details = {"action_index": 2, "action_type": "call-webhook", "invocation": record["id"]}
    assert triggered["payload"] == details
    assert failed["payload"] == {**details, "reason": "HTTP 500", "status_code": 500}
    assert failed["follows"] == triggered["id"]
    assert triggered["occurred"] == record["fired_at"]
    assert failed["occurred"] == "2026-01-02T12:00:03Z"
    again = outcome_events(record, 2, "call-webhook", triggering, "failed", done, "HTTP 500")
    assert [e["id"] for e in again] == [triggered["id"], failed["id"]]
    assert failed["id"] == action_event_id(record["id"], 2, "failed")
    executed = outcome_events(record, 2, "call-webhook", triggering, "executed", done)[1]
    assert executed["id"] != failed["id"]
    assert "reason" not in executed["payload"]


def _automation(trigger: dict[str, Any], actions: list[Any] | None = None) -> Any:
    return parse_automation(
        {
            "name": "loop",
            "trigger": trigger,
            "actions": [{"type": "do-nothing"}] if actions is None else actions,
        }
    )


def test_a_trigger_on_its_own_action_events_is_a_loop_and_another_automations_is_not() -> None:
    own = _automation(
        {
            "posture": "Reactive",
            "expect": ["prefect.automation.action.executed"],
            "match": {"prefect.resource.id": "prefect.automation.*"},
            "threshold": 1,
            "within": 0,
        }
    )
    assert action_event_loops(own) == [str(own.with_ids().trigger.id)]
    other = _automation(
        {
            "posture": "Reactive",
            "expect": ["prefect.automation.action.failed"],
            "match": {"prefect.resource.id": f"prefect.automation.{uuid.uuid4()}"},
            "threshold": 1,
            "within": 0,
        }
    )
    assert action_event_loops(other) == []
    flow_runs = _automation({"posture": "Reactive", "expect": ["prefect.flow-run.Failed"]})
    assert action_event_loops(flow_runs) == []


def _history(tmp_path: Path, per_automation: int = 100) -> History:
    return History(tmp_path / "history", 7 * 86400.0, per_automation)


def _events(automation_id: str, count: int, start: datetime = NOW) -> list[dict[str, Any]]:
    out = []
    for n in range(count):
        record = _record(automation_id, start + timedelta(minutes=n))
        out.append(record["state_event"])
        out.extend(outcome_events(record, 0, "do-nothing", None, "executed", start))
    return out


def test_history_keeps_each_event_once_with_its_offsets_and_filters_like_prefect(
    tmp_path: Path,
) -> None:
    history = _history(tmp_path)
    a, b = str(uuid.uuid4()), str(uuid.uuid4())
    events = _events(a, 3) + _events(b, 1)
    now = (NOW + timedelta(hours=1)).timestamp()
    assert history.ingest(events, {("firings", 0): 7}, now) == 12
    assert history.ingest(events[:3], {("firings", 0): 9, ("events", 1): 2}, now) == 0
    assert history.positions() == {("firings", 0): 9, ("events", 1): 2}

    def ids(spec: dict[str, Any]) -> list[str]:
        chosen = history.query(EventFilter.model_validate(spec), now)
        return [str(s.event["id"]) for s in chosen]

    window = {"since": NOW.isoformat(), "until": (NOW + timedelta(hours=1)).isoformat()}
    everything = ids({"occurred": window})
    assert len(everything) == 12
    only_a = ids({"occurred": window, "resource": {"id": [f"prefect.automation.{a}"]}})
    assert len(only_a) == 9
    states = ids(
        {
            "occurred": window,
            "event": {"name": ["prefect.automation.triggered"]},
            "order": "ASC",
        }
    )
    triggered = [e["id"] for e in events if e["event"] == "prefect.automation.triggered"]
    assert sorted(states) == sorted(triggered)
    assert [i for i in states if i in triggered[:3]] == triggered[:3]  # a's, oldest first
    failed = ids({"occurred": window, "event": {"prefix": ["prefect.automation.action.f"]}})
    assert failed == []
    by_related = ids(
        {
            "occurred": window,
            "related": {"role": ["automation-triggered-event"]},
            "event": {"name": ["prefect.automation.action.executed"]},
        }
    )
    assert len(by_related) == 4
    last = history.last_fired()
    assert set(last) == {a, b}
    assert last[a]["occurred"] == (NOW + timedelta(minutes=2)).isoformat().replace("+00:00", "Z")
    (recent,) = history.recent(b, now, 5)
    assert [e["event"] for e in recent["actions"]] == [
        "prefect.automation.action.triggered",
        "prefect.automation.action.executed",
    ]
    history.close()


def test_history_keeps_the_newest_per_automation_and_forgets_by_age(tmp_path: Path) -> None:
    history = _history(tmp_path, per_automation=4)
    a = str(uuid.uuid4())
    now = (NOW + timedelta(hours=1)).timestamp()
    events = [e for e in _events(a, 6) if e["event"] == "prefect.automation.triggered"]
    history.ingest(events[:3], {}, now)
    history.ingest(events[3:], {}, now)
    kept = history.query(
        EventFilter.model_validate(
            {
                "order": "ASC",
                "occurred": {
                    "since": NOW.isoformat(),
                    "until": (NOW + timedelta(hours=1)).isoformat(),
                },
            }
        ),
        now,
    )
    assert [s.event["id"] for s in kept] == [e["id"] for e in events[2:]]
    later = (NOW + timedelta(days=7, minutes=3, seconds=30)).timestamp()
    assert history.sweep(later) == 2  # minutes 2 and 3 are older than 7 days then
    # Last fired is a fact, not history: it outlives both limits.
    assert history.last_fired()[a]["id"] == events[-1]["id"]
    left = history.query(
        EventFilter.model_validate({"occurred": {"since": NOW.isoformat()}}), later
    )
    assert sorted(s.event["id"] for s in left) == sorted(e["id"] for e in events[4:])
    history.close()


def test_only_action_outcome_events_about_automations_are_read_from_the_events_topic() -> None:
    record = _record(str(uuid.uuid4()))
    (event, _) = outcome_events(record, 0, "do-nothing", None, "executed", NOW)
    key = event["resource"]["prefect.resource.id"].encode()
    assert automation_event(key, orjson.dumps(event)) == event
    assert automation_event(b"prefect.flow-run.x", orjson.dumps(event)) is None
    assert automation_event(key, orjson.dumps(record["state_event"])) is None
    assert automation_event(key, b"not json prefect.automation.action.") is None


def test_since_takes_durations_and_iso_times() -> None:
    assert since_time("30m", NOW) == NOW - timedelta(minutes=30)
    assert since_time("2d", NOW) == NOW - timedelta(days=2)
    assert since_time("2026-01-01T00:00:00", NOW) == datetime(2026, 1, 1, tzinfo=UTC)
    with pytest.raises(ConfigError, match="duration"):
        since_time("yesterday", NOW)


def test_outcomes_join_their_firing() -> None:
    record = _record(str(uuid.uuid4()))
    actions = outcome_events(record, 0, "do-nothing", None, "executed", NOW)
    orphan = outcome_events(_record(str(uuid.uuid4())), 1, "x", None, "failed", NOW, "no")
    (firing, lost) = firings_of([record["state_event"], *actions, *orphan])
    assert firing["id"] == record["state_event"]["id"]
    assert [a["id"] for a in firing["actions"]] == [a["id"] for a in actions]
    assert lost["event"] is None and len(lost["actions"]) == 2
