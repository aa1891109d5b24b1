"""Explain an automation: its live state per trigger and bucketing key, and why it has or has not fired."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from service.core.metrics import CompiledMetricTrigger, MetricState, metric_value, window_totals
from service.core.store import Bucket, StateStore
from service.core.times import SECOND, from_us
from service.core.triggers import (
    BucketKey,
    CompiledAutomation,
    CompiledComposite,
    CompiledEventTrigger,
    CompiledTrigger,
)
from service.models.automations import Automation

__all__ = ["explain_state", "key_text", "merge_explanations", "model_version"]

Facts = dict[str, Any]


def model_version(automation: Automation) -> str:
    """A digest of an automation's definition: equal digests, same version evaluated."""
    data = orjson.dumps(automation.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(data).hexdigest()[:16]


def key_text(key: BucketKey) -> str:
    """A bucketing key as users pass it in `?key=`: its values joined by commas."""
    return ",".join(key)


def explain_state(
    automation: CompiledAutomation,
    stores: Iterable[StateStore],
    now: int,
    key: str | None = None,
) -> list[Facts]:
    """The state one worker holds for each trigger of the automation, in tree order.

    `stores` are the partition stores this worker owns; `key` keeps one bucketing key.
    """
    stores = list(stores)
    return [
        _trigger_facts(trigger, path, stores, now, key)
        for trigger, path in _walk(automation.root, "trigger")
    ]


def merge_explanations(
    automation: CompiledAutomation, parts: Iterable[list[Facts]], now: int
) -> list[Facts]:
    """Join the facts several workers hold for one automation and say why, per trigger."""
    shares: dict[str, list[Facts]] = {}
    for part in parts:
        for facts in part:
            shares.setdefault(facts["trigger_id"], []).append(facts)
    out = []
    for trigger, path in _walk(automation.root, "trigger"):
        # The shape comes from this version of the model; the state from the workers.
        facts = _trigger_facts(trigger, path, [], now, None)
        for share in shares.get(trigger.id, []):
            if "buckets" in facts:
                facts["buckets"].extend(share.get("buckets", []))
            if "children" in facts:
                facts["children"].extend(share.get("children", []))
            if share.get("metric") is not None:
                facts["metric"] = share["metric"]
        if "buckets" in facts:
            facts["buckets"].sort(key=lambda b: (b["key"], b["start"]))
        if "children" in facts:
            facts["children"].sort(key=lambda c: c["fired_at"])
        facts["explanation"] = _summary(trigger, facts, automation.enabled)
        out.append(facts)
    return out


def _walk(trigger: CompiledTrigger | None, path: str) -> list[tuple[CompiledTrigger, str]]:
    if trigger is None:
        return []
    out: list[tuple[CompiledTrigger, str]] = [(trigger, path)]
    if isinstance(trigger, CompiledComposite):
        for index, child in enumerate(trigger.children):
            out.extend(_walk(child, f"{path}.triggers[{index}]"))
    return out


def _trigger_facts(
    trigger: CompiledTrigger, path: str, stores: list[StateStore], now: int, key: str | None
) -> Facts:
    if isinstance(trigger, CompiledEventTrigger):
        return {
            "trigger_id": trigger.id,
            "path": path,
            "type": "event",
            "posture": trigger.posture,
            "threshold": trigger.threshold,
            "within_seconds": trigger.within / SECOND,
            "after": list(trigger.after),
            "expect": list(trigger.expect),
            "for_each": list(trigger.for_each),
            "buckets": [
                _bucket_facts(trigger, bucket_key, bucket, store, now)
                for store in stores
                for bucket_key, bucket in store.buckets(trigger.id)
                if key is None or key_text(bucket_key) == key
            ],
        }
    if isinstance(trigger, CompiledComposite):
        return {
            "trigger_id": trigger.id,
            "path": path,
            "type": trigger.kind,
            "require": trigger.needed,
            "of": len(trigger.children),
            "within_seconds": None if trigger.within is None else trigger.within / SECOND,
            "children": [
                {
                    "trigger_id": firing.trigger_id,
                    "firing_id": firing.id,
                    "fired_at": from_us(firing.fired_at).isoformat(),
                }
                for store in stores
                for firing in store.child_firings(trigger.id)
            ],
        }
    return {
        "trigger_id": trigger.id,
        "path": path,
        "type": "metric",
        "metric": _metric_facts(trigger, stores, now),
    }


def _bucket_facts(
    trigger: CompiledEventTrigger,
    bucket_key: BucketKey,
    bucket: Bucket,
    store: StateStore,
    now: int,
) -> Facts:
    facts: Facts = {
        "key": key_text(bucket_key),
        "labels": trigger.labels(bucket_key),
        "start": from_us(bucket.start).isoformat(),
        "end": from_us(bucket.end).isoformat(),
        "count": bucket.count,
        "threshold": trigger.threshold,
        "last_event_id": bucket.last_event.id if bucket.last_event is not None else None,
    }
    if trigger.after:
        # A bucket of a trigger with `after` exists only once an `after` event opened it.
        facts["after_seen"] = True
    if trigger.holds_events:
        facts["held_events"] = len(store.held(trigger.id, bucket_key))
    facts["explanation"] = _bucket_sentence(trigger, bucket, now)
    return facts


def _bucket_sentence(trigger: CompiledEventTrigger, bucket: Bucket, now: int) -> str:
    count, threshold = bucket.count, trigger.threshold
    end = from_us(bucket.end).isoformat()
    opened = "an `after` event opened this window; " if trigger.after else ""
    if trigger.proactive:
        if count >= threshold:
            return (
                f"{opened}{count} of the {threshold} expected events arrived, so it will "
                f"not fire for the window ending {end}"
            )
        if now >= bucket.end:
            return (
                f"{opened}only {count} of {threshold} expected events arrived by {end}: "
                "it fires at the next proactive evaluation"
            )
        return (
            f"{opened}{count} of {threshold} expected events so far; it fires at {end} "
            f"unless {threshold - count} more arrive before then"
        )
    if now >= bucket.end:
        return (
            f"{opened}the window ended at {end} with {count} of {threshold} events: it did "
            "not fire and the next matching event starts a new window"
        )
    if count >= threshold:
        return f"{opened}{count} of {threshold} events: the threshold is met in this window"
    return (
        f"{opened}{count} of {threshold} events so far; it fires if {threshold - count} "
        f"more arrive before {end}"
    )


def _metric_facts(
    trigger: CompiledMetricTrigger, stores: list[StateStore], now: int
) -> Facts | None:
    for store in stores:
        data = store.metric_state(trigger.id)
        if data is None:
            continue
        state = MetricState.decode(data, trigger.fingerprint)
        total, count = window_totals(state, trigger, now)
        return {
            "phase": state.phase,
            "value": metric_value(trigger, total, count),
            "observations": count,
            "open_runs": len(state.runs),
            "operator": trigger.operator,
            "threshold": trigger.threshold,
        }
    return None


def _summary(trigger: CompiledTrigger, facts: Mapping[str, Any], enabled: bool) -> str:
    prefix = "" if enabled else "The automation is disabled, so nothing is evaluated. "
    if isinstance(trigger, CompiledEventTrigger):
        buckets = facts["buckets"]
        if buckets:
            return f"{prefix}{len(buckets)} open bucket(s); see each bucket's explanation."
        if trigger.after:
            waiting = ", ".join(trigger.after)
            return (
                f"{prefix}No open bucket: it is waiting for an `after` event ({waiting}) "
                "to open a window."
            )
        if trigger.proactive:
            return (
                f"{prefix}No open bucket: no matching event has arrived since the last "
                "window closed, so there is no deadline to miss yet."
            )
        return (
            f"{prefix}No open bucket: no matching event has arrived since it last fired "
            "or its last window ended."
        )
    if isinstance(trigger, CompiledComposite):
        stored = {child["trigger_id"] for child in facts["children"]}
        window = f" within {trigger.within / SECOND:g} s" if trigger.within is not None else ""
        order = " in order" if trigger.kind == "sequence" else ""
        return (
            f"{prefix}{len(stored)} of the {trigger.needed} required child firings are "
            f"stored; it fires when {trigger.needed} of its {len(trigger.children)} "
            f"children have fired{order}{window}."
        )
    metric = facts.get("metric")
    if metric is None or metric["value"] is None:
        return f"{prefix}No flow-run data in the metric's range yet: nothing to compare."
    return (
        f"{prefix}The {trigger.metric} metric is {metric['value']:g} "
        f"({trigger.operator} {trigger.threshold:g} breaches); state {metric['phase']}."
    )
