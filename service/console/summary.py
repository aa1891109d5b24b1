"""One-line summaries of triggers and of history events, as the console shows them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from service.models.automations import (
    CompoundTrigger,
    EventTrigger,
    MetricTrigger,
    SequenceTrigger,
    Trigger,
)

__all__ = ["duration", "feed_item", "trigger_summary"]


def duration(value: timedelta) -> str:
    """A window as people write it: 90 s is `1m30s`, 0 is `0s`."""
    seconds = int(value.total_seconds())
    if seconds == 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)):
        amount, seconds = divmod(seconds, size)
        if amount:
            parts.append(f"{amount}{unit}")
    return "".join(parts)


def _names(names: list[str]) -> str:
    return " or ".join(names) if names else "any event"


def _match(spec: dict[str, Any]) -> str:
    shown = [
        f"{label}={'|'.join(value) if isinstance(value, list) else value}"
        for label, value in spec.items()
    ]
    return f" on {', '.join(shown)}" if shown else ""


def trigger_summary(trigger: Trigger) -> str:
    """What the trigger waits for, in one line: kind, events, threshold, window, key."""
    if isinstance(trigger, EventTrigger):
        window = f" within {duration(trigger.within)}" if trigger.within else ""
        key = f", per {', '.join(trigger.for_each)}" if trigger.for_each else ""
        after = f" after {_names(trigger.after)}" if trigger.after else ""
        if trigger.posture == "Proactive":
            what = f"fewer than {trigger.threshold} x {_names(trigger.expect)}"
        else:
            what = f"{trigger.threshold} x {_names(trigger.expect)}"
        return f"{trigger.posture}: {what}{after}{window}{_match(trigger.match)}{key}"
    if isinstance(trigger, MetricTrigger):
        query = trigger.metric
        return (
            f"Metric: {query.name} {query.operator} {query.threshold:g} over "
            f"{duration(query.range)}, for {duration(query.firing_for)}{_match(trigger.match)}"
        )
    children = "; ".join(trigger_summary(child) for child in trigger.triggers)
    window = f" within {duration(trigger.within)}" if trigger.within else ""
    if isinstance(trigger, SequenceTrigger):
        return f"Sequence of {len(trigger.triggers)}{window}: [{children}]"
    assert isinstance(trigger, CompoundTrigger)  # noqa: S101  # the union's last member
    return f"Compound, {trigger.require} of {len(trigger.triggers)}{window}: [{children}]"


def feed_item(event: dict[str, Any]) -> dict[str, Any]:
    """A history event (a firing's state event or an action outcome) as a feed line."""
    resource = event.get("resource") or {}
    payload = event.get("payload") or {}
    name = str(event.get("event", ""))
    outcome = name.rsplit(".", 1)[-1]
    action = name.startswith("prefect.automation.action.")
    if action:
        kind = "action"
        detail = f"action {payload.get('action_index')} {payload.get('action_type')}"
        if payload.get("reason"):
            detail += f": {payload['reason']}"
    else:
        kind = "firing"
        triggering = payload.get("triggering_event") or {}
        detail = f"on {triggering.get('event')}" if triggering else "without an event (proactive)"
        labels = payload.get("triggering_labels") or {}
        if labels:
            detail += " [" + ", ".join(f"{k}={v}" for k, v in labels.items()) + "]"
    return {
        "id": str(event.get("id", "")),
        "kind": kind,
        "state": "started" if action and outcome == "triggered" else outcome,
        "occurred": str(event.get("occurred", "")),
        "automation_id": str(resource.get("prefect.resource.id", "")).removeprefix(
            "prefect.automation."
        ),
        "automation_name": str(resource.get("prefect.resource.name", "")),
        "detail": detail,
    }
