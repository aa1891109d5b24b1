"""`tripwire automations ...` and `tripwire explain`: the API's operations from a shell."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import orjson
import yaml

from service.api_client import ApiClient, ApiError
from service.config import Settings
from service.errors import ConfigError

__all__ = ["main", "read_file"]


def main(args: Any, settings: Settings) -> int:
    """Run one `automations` subcommand or `explain`; returns the exit status."""
    with ApiClient(settings.api_url, settings.api_token) as api:
        if args.command == "explain":
            return _explain(api, args)
        action = args.action
        if action == "apply":
            return _apply(api, read_file(Path(args.file)), args.allow_self_trigger)
        if action == "ls":
            for automation in api.list():
                state = "enabled" if automation["enabled"] else "paused"
                print(f"{automation['id']}  {state:8}  {automation['name']}")
            return 0
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


def read_file(path: Path) -> list[dict[str, Any]]:
    """Automations from a JSON or YAML file: one object, or a list of them."""
    try:
        text = path.read_bytes()
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror}"
        raise ConfigError(msg) from None
    try:
        data = orjson.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (orjson.JSONDecodeError, yaml.YAMLError) as exc:
        kind = "JSON" if path.suffix == ".json" else "YAML"
        msg = f"{path}: not valid {kind}: {exc}"
        raise ConfigError(msg) from None
    items = data if isinstance(data, list) else [data]
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            msg = f"{path}: item {index} is not an automation object"
            raise ConfigError(msg)
    return items


def _apply(api: ApiClient, automations: list[dict[str, Any]], allow_self_trigger: bool) -> int:
    # Idempotent: an id updates that automation (or creates it with that id); without
    # one, the single automation of the same name is updated, else one is created.
    failed = 0
    for index, automation in enumerate(automations):
        label = automation.get("name") or f"item {index}"
        try:
            target = _target(api, automation)
            if target is None:
                automation_id = api.create(automation, allow_self_trigger)
                print(f"created {automation_id} {label}")
            else:
                api.replace(target, automation, allow_self_trigger)
                print(f"updated {target} {label}")
        except ApiError as exc:
            print(f"tripwire automations apply: {label}: {exc}", file=sys.stderr)
            failed += 1
    return 2 if failed else 0


def _target(api: ApiClient, automation: dict[str, Any]) -> str | None:
    given = automation.get("id")
    if given:
        return str(given) if api.get(str(given)) is not None else None
    name = automation.get("name")
    if not isinstance(name, str):
        return None
    named = api.list(name)
    if len(named) > 1:
        msg = f"{len(named)} automations are named {name!r}: add an id to choose one"
        raise ApiError(msg)
    return str(named[0]["id"]) if named else None


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
    return 0
