"""`tripwire automations ...` and `tripwire explain`: the API's operations from a shell."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import yaml

from service.api_client import ApiClient, ApiError
from service.config import Settings
from service.core.times import since_time
from service.errors import ConfigError

__all__ = ["main", "read_file"]


def main(args: Any, settings: Settings) -> int:
    """Run one `automations` subcommand or `explain`; returns the exit status."""
    with ApiClient(settings.api_url, settings.api_token) as api:
        if args.command == "explain":
            return _explain(api, args)
        action = args.action
        if action == "apply":
            return _apply(api, read_file(args.file), args)
        if action == "ls":
            last = api.last_fired()
            for automation in api.list():
                state = "enabled" if automation["enabled"] else "paused"
                fired = last.get(str(automation["id"]))
                when = _short_time(fired["occurred"]) if fired else "never"
                print(f"{automation['id']}  {state:8}  {when:20}  {automation['name']}")
            return 0
        if action == "history":
            return _history(api, args)
        if action == "get":
            for name in args.automations:
                sys.stdout.write(
                    orjson.dumps(api.find(name), option=orjson.OPT_INDENT_2).decode() + "\n"
                )
            return 0
        for name in args.automations:
            automation = api.find(name)
            automation_id = automation["id"]
            if action == "rm":
                api.delete(automation_id)
                print(f"removed {automation_id} {automation['name']}")
            else:
                api.set_enabled(automation_id, enabled=action == "resume")
                done = "resumed" if action == "resume" else "paused"
                print(f"{done} {automation_id} {automation['name']}")
        return 0


def read_file(path: Path | str) -> list[dict[str, Any]]:
    """Automations from a JSON or YAML file, or stdin for `-`, in Prefect's file shapes.

    Those of `prefect automation create --from-file`: an object with an `automations`
    list, a bare list, or one automation object.
    """
    where = "stdin" if str(path) == "-" else str(path)
    try:
        text = sys.stdin.buffer.read() if str(path) == "-" else Path(path).read_bytes()
    except OSError as exc:
        msg = f"cannot read {where}: {exc.strerror}"
        raise ConfigError(msg) from None
    as_json = str(path) != "-" and Path(path).suffix == ".json"
    try:
        data = orjson.loads(text) if as_json else _json_or_yaml(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        msg = f"{where}: not valid {'JSON' if as_json else 'YAML or JSON'}: {exc}"
        raise ConfigError(msg) from None
    if isinstance(data, dict) and "automations" in data:
        data = data["automations"]
        if not isinstance(data, list):
            msg = f"{where}: `automations` must be a list of automation objects"
            raise ConfigError(msg)
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            msg = f"{where}: item {index} is not an automation object"
            raise ConfigError(msg)
    return items


def _json_or_yaml(text: bytes) -> Any:
    # JSON first: YAML reads most JSON too, but not all of it (tabs, some escapes).
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return yaml.safe_load(text)


class _Ambiguous(ApiError):
    """Several stored automations have the name an automation of the file updates."""


@dataclass
class _Plan:
    """One automation of the file: where it goes and what that changes."""

    label: str
    body: dict[str, Any]
    target: str | None  # the stored automation it updates; None creates one
    change: str = "created"  # created, updated or unchanged


def _apply(api: ApiClient, automations: list[dict[str, Any]], args: Any) -> int:
    # All or nothing: every automation is validated by the API (as the write would be)
    # before any is written, so a file with one invalid automation changes nothing.
    errors: list[str] = []
    plans: list[_Plan] = []
    seen: dict[str, str] = {}
    for index, automation in enumerate(automations):
        name = automation.get("name")
        label = name if isinstance(name, str) and name else f"item {index}"
        key = f"id {automation['id']}" if automation.get("id") else f"name {name!r}"
        if key in seen and (automation.get("id") or isinstance(name, str)):
            # Applied one after the other, the second would overwrite the first.
            errors.append(f"{label}: the file has two automations with {key} ({seen[key]})")
            continue
        seen[key] = f"item {index}"
        try:
            target = _target(api, automation)
        except _Ambiguous as exc:
            errors.append(f"{label}: {exc}")
            continue
        body = {**automation, "id": target} if target else automation
        would_be, problems = api.validate(body, args.allow_self_trigger)
        errors.extend(f"{label}: {field or '(automation)'}: {rule}" for field, rule in problems)
        if would_be is None:
            continue
        plan = _Plan(label, automation, target)
        if target is not None:
            current = api.get(target) or {}
            plan.change = "unchanged" if _same(current, would_be) else "updated"
        plans.append(plan)
    if errors:
        for error in errors:
            print(f"tripwire automations apply: {error}", file=sys.stderr)
        invalid = len(automations) - len(plans)
        print(
            f"tripwire automations apply: {invalid} of {len(automations)} automations "
            "are invalid; nothing was written",
            file=sys.stderr,
        )
        return 2
    if args.dry_run:
        for plan in plans:
            verb = {"created": "would create", "updated": "would update"}.get(plan.change)
            print(f"{verb or plan.change} {plan.target or '-'} {plan.label}")
        counts = {c: sum(p.change == c for p in plans) for c in ("created", "updated", "unchanged")}
        print(
            f"dry run: {counts['created']} to create, {counts['updated']} to update, "
            f"{counts['unchanged']} unchanged; nothing was written"
        )
        return 0
    for done, plan in enumerate(plans):
        try:
            if plan.change == "created":
                automation_id = api.create(plan.body, args.allow_self_trigger)
                print(f"created {automation_id} {plan.label}")
            elif plan.change == "updated" and plan.target is not None:
                api.replace(plan.target, plan.body, args.allow_self_trigger)
                print(f"updated {plan.target} {plan.label}")
            else:
                print(f"unchanged {plan.target} {plan.label}")
        except ApiError as exc:
            # Validated, yet the write failed (the broker, a concurrent change): the
            # ones before it are written, and the message says which were not.
            rest = ", ".join(p.label for p in plans[done:])
            print(f"tripwire automations apply: {plan.label}: {exc}", file=sys.stderr)
            print(f"tripwire automations apply: not written: {rest}", file=sys.stderr)
            return 2
    return 0


def _same(current: dict[str, Any], would_be: dict[str, Any]) -> bool:
    ignored = ("created", "updated")
    return {k: v for k, v in current.items() if k not in ignored} == {
        k: v for k, v in would_be.items() if k not in ignored
    }


def _target(api: ApiClient, automation: dict[str, Any]) -> str | None:
    # Idempotent: an id updates that automation (or creates it with that id); without
    # one, the single automation of the same name is updated, else one is created.
    given = automation.get("id")
    if given:
        return str(given) if api.get(str(given)) is not None else None
    name = automation.get("name")
    if not isinstance(name, str):
        return None
    named = api.list(name)
    if len(named) > 1:
        msg = f"{len(named)} automations are named {name!r}: add an id to choose one"
        raise _Ambiguous(msg)
    return str(named[0]["id"]) if named else None


def _short_time(iso: str) -> str:
    moment = datetime.fromisoformat(iso).astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def firings_of(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """State events in the given order, each with the action outcomes that name it.

    An action outcome whose firing is not among the events (older than the window)
    is a firing of its own with `event: null`, so nothing read is left out.
    """
    firings: dict[str, dict[str, Any]] = {}
    for event in events:
        if not str(event["event"]).startswith("prefect.automation.action."):
            firings[str(event["id"])] = {**event, "actions": []}
    for event in events:
        if str(event["event"]).startswith("prefect.automation.action."):
            state_id = next(
                (
                    str(r["prefect.resource.id"]).removeprefix("prefect.event.")
                    for r in event.get("related") or []
                    if r.get("prefect.resource.role") == "automation-triggered-event"
                ),
                f"unknown:{event['payload'].get('invocation')}",
            )
            holder = firings.setdefault(
                state_id, {"id": state_id, "event": None, "occurred": event["occurred"]}
            )
            holder.setdefault("actions", []).append(event)
    return list(firings.values())


def _print_firing(firing: dict[str, Any], indent: str = "") -> None:
    if firing.get("event") is None:
        print(f"{indent}(firing {firing['id']} is older than the window)")
    else:
        state = str(firing["event"]).rsplit(".", 1)[-1].capitalize()
        payload = firing.get("payload") or {}
        triggering = payload.get("triggering_event") or {}
        cause = (
            f"on {triggering.get('event')} ({triggering.get('id')})"
            if triggering
            else "without an event (proactive)"
        )
        labels = payload.get("triggering_labels") or {}
        shown = ", ".join(f"{k}={v}" for k, v in labels.items())
        print(f"{indent}{_short_time(firing['occurred'])}  {state}  {cause}")
        if shown:
            print(f"{indent}    labels {shown}")
    outcomes: dict[int, dict[str, Any]] = {}
    for action in firing.get("actions") or []:
        index = int(action["payload"].get("action_index", 0))
        # The outcome (executed, failed) wins over the `.triggered` event of the same action.
        if index not in outcomes or not str(action["event"]).endswith(".triggered"):
            outcomes[index] = action
    for index in sorted(outcomes):
        action = outcomes[index]
        outcome = str(action["event"]).rsplit(".", 1)[-1]
        if outcome == "triggered":
            outcome = "started, no outcome yet"
        reason = action["payload"].get("reason")
        kind = action["payload"].get("action_type")
        line = f"{indent}    action {index} {kind}: {outcome}"
        print(f"{line}: {reason}" if reason else line)


def _history(api: ApiClient, args: Any) -> int:
    automation = api.find(args.automation)
    now = datetime.now(UTC)
    since = since_time(args.since, now) if args.since else now - timedelta(days=180)
    events = api.events(
        {
            "occurred": {"since": since.isoformat(), "until": now.isoformat()},
            "resource": {"id": [f"prefect.automation.{automation['id']}"]},
            "order": "ASC",
        }
    )
    firings = firings_of(events)
    if args.json:
        sys.stdout.write(orjson.dumps(firings, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    count = sum(1 for f in firings if f.get("event") is not None)
    print(f"{automation['name']} ({automation['id']}): {count} firings since {since.isoformat()}")
    for firing in firings:
        _print_firing(firing, "  ")
    return 0


def _explain(api: ApiClient, args: Any) -> int:
    automation = api.find(args.automation)
    report = api.explain(automation["id"], args.key)
    if args.json:
        sys.stdout.write(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n")
        return 0
    state = "enabled" if report["enabled"] else "paused"
    print(f"{report['name']} ({report['automation_id']}), {state}, as of {report['as_of']}")
    for worker in report["workers"]["unreachable"]:
        print(f"  ! worker {worker['worker']} did not answer: {worker['error']}")
    for trigger in report["triggers"]:
        print(f"\n{trigger['path']} [{trigger['type']}] {trigger['trigger_id']}")
        print(f"  {trigger['explanation']}")
        for bucket in trigger.get("buckets", []):
            key = bucket["key"] or "(no for_each key)"
            print(f"  - key {key}: {bucket['count']}/{bucket['threshold']} ")
            print(f"    window {bucket['start']} .. {bucket['end']}")
            print(f"    {bucket['explanation']}")
        for child in trigger.get("children", []):
            print(f"  - child {child['trigger_id']} fired at {child['fired_at']}")
    recent = report.get("recent_firings") or []
    print(f"\nlast {len(recent)} firings (tripwire automations history for more):")
    for firing in recent:
        _print_firing(firing, "  ")
    if not recent:
        print("  none kept")
    return 0
