"""Prefect's automation JSON, accepted verbatim, with the server's validation rules (spec §2-3)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from service.models.errors import validated

__all__ = [
    "ACTION_TYPES",
    "MAX_AUTOMATION_DEPTH",
    "MAX_TRIGGER_DEPTH",
    "METRIC_WINDOWS",
    "PREFECT_MIN_METRIC_WINDOW",
    "Action",
    "Automation",
    "CompoundTrigger",
    "EventTrigger",
    "MetricTrigger",
    "MetricTriggerQuery",
    "ResourceSpec",
    "SequenceTrigger",
    "Trigger",
    "json_depth",
    "parse_automation",
    "parse_automations",
]

# Labels to one pattern or a list of patterns (spec §4.2).
ResourceSpec = dict[str, str | list[str]]

PROACTIVE_MIN_WITHIN = timedelta(seconds=10)

# Levels of composite nesting, the automation's trigger being level 1. Prefect sets no
# limit; every stage walks the tree recursively and a firing nests its children's, so a
# bound keeps each walk and record shallow (docs/semantics.md). Ten is deeper than any
# automation written by hand.
MAX_TRIGGER_DEPTH = 10
# Nesting levels of an automation's JSON, the automation object being level 1. It is
# stored and served with orjson, which refuses more than 254 levels; the events' bound.
MAX_AUTOMATION_DEPTH = 128

ACTION_TYPES = frozenset(
    {
        "do-nothing",
        "run-deployment",
        "pause-deployment",
        "resume-deployment",
        "cancel-flow-run",
        "delete-flow-run",
        "change-flow-run-state",
        "suspend-flow-run",
        "resume-flow-run",
        "call-webhook",
        "send-notification",
        "pause-work-pool",
        "resume-work-pool",
        "pause-work-queue",
        "resume-work-queue",
        "pause-automation",
        "resume-automation",
        "emit-event",
    }
)

_RUN_LOOP_EVENTS = frozenset(
    {
        "prefect.flow-run.Scheduled",
        "prefect.flow-run.Pending",
        "prefect.flow-run.Running",
        "prefect.flow-run.*",
    }
)


class _Model(BaseModel):
    # Unknown fields are ignored, as Prefect's server models do (spec §2).
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class Action(BaseModel):
    """One action in Prefect's JSON shape; fields beyond `type` belong to the action."""

    model_config = ConfigDict(extra="allow")

    # Prefect's server validates actions against a plain union whose first member is
    # DoNothing, so an action without `type` is do-nothing. Its own client relies on it:
    # update_automation drops defaulted fields, sending `{}` for DoNothing().
    type: str = "do-nothing"

    @field_validator("type")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in ACTION_TYPES:
            allowed = ", ".join(sorted(ACTION_TYPES))
            msg = f"unknown action type {value!r}; expected one of: {allowed}"
            raise ValueError(msg)
        return value

    @model_validator(mode="before")
    @classmethod
    def _url_not_its_served_block(cls, data: Any) -> Any:
        from service.models.actions import without_served_block_id

        return without_served_block_id(data) if isinstance(data, dict) else data

    @model_validator(mode="after")
    def _fields_of_its_type(self) -> Action:
        # Each type's own fields, as Prefect's server validates them (service/models/
        # actions.py); pydantic's errors keep their location: actions[0].deployment_id.
        from service.models.actions import action_spec

        action_spec(self.model_dump())
        return self


class EventTrigger(_Model):
    """A reactive or proactive event trigger (spec §3.1)."""

    type: Literal["event"] = "event"
    id: uuid.UUID | None = None
    match: ResourceSpec = Field(default_factory=dict)
    match_related: ResourceSpec | list[ResourceSpec] = Field(default_factory=dict)
    after: list[str] = Field(default_factory=list)
    expect: list[str] = Field(default_factory=list)
    for_each: list[str] = Field(default_factory=list)
    posture: Literal["Reactive", "Proactive"]
    # Prefect does not validate the threshold: zero and negatives are accepted (spec §3.1).
    threshold: int = 1
    within: timedelta = Field(default=timedelta(0), validate_default=True)

    @field_validator("within", mode="before")
    @classmethod
    def _within_before(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            msg = "`within` should be a valid timedelta"
            raise ValueError(msg)
        # Prefect runs the proactive rule before the >= 0 check, so a negative proactive
        # `within` gets this message; missing or 0 becomes 10 s (spec §3.1).
        if info.data.get("posture") != "Proactive":
            return value
        seconds = _seconds(value)
        if seconds == 0:
            return PROACTIVE_MIN_WITHIN
        if seconds is not None and seconds < PROACTIVE_MIN_WITHIN.total_seconds():
            msg = "`within` for Proactive triggers must be greater than or equal to 10 seconds"
            raise ValueError(msg)
        return value

    @field_validator("within")
    @classmethod
    def _within_non_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            msg = "Input should be greater than or equal to 0 seconds"
            raise ValueError(msg)
        return value


def _seconds(value: Any) -> float | None:
    """Best-effort seconds of a duration before pydantic parses it; None if unknown."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            try:
                return _Duration.model_validate({"value": value}).value.total_seconds()
            except ValueError:
                return None
    return None


class _Duration(BaseModel):
    value: timedelta


# -- metric triggers (issue #5; docs/metric-triggers.md) -----------------------------
METRIC_NAMES = ("successes", "duration", "lateness")
# Prefect Cloud's client wants 300 s for both; Tripwire accepts the seed's own examples.
METRIC_MIN_RANGE = timedelta(seconds=10)
# Prefect's client models refuse a `range` or `firing_for` under this, so the API serves
# shorter ones as this, with the real values under `tripwire` (docs/api.md).
PREFECT_MIN_METRIC_WINDOW = timedelta(seconds=300)
METRIC_WINDOWS = ("range", "firing_for")


class MetricTriggerQuery(_Model):
    """What a metric trigger computes and when it breaches (`MetricTriggerQuery`)."""

    name: str
    threshold: float = Field(allow_inf_nan=False)
    operator: Literal["<", "<=", ">", ">="]
    range: timedelta = timedelta(seconds=300)
    firing_for: timedelta = timedelta(seconds=300)

    @model_validator(mode="before")
    @classmethod
    def _tripwire_windows(cls, data: Any) -> Any:
        # The API serves windows under 300 s as 300 s for Prefect's client and keeps the
        # real ones in `tripwire`; a client writing that shape back means the real ones.
        if not isinstance(data, dict) or "tripwire" not in data:
            return data
        real = data["tripwire"]
        if not isinstance(real, dict):
            msg = "`tripwire` must be an object of `range` and `firing_for`"
            raise ValueError(msg)
        windows = {key: real[key] for key in METRIC_WINDOWS if key in real}
        return {**{k: v for k, v in data.items() if k != "tripwire"}, **windows}

    @field_validator("name")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        if value not in METRIC_NAMES:
            msg = f"unknown metric {value!r}; Tripwire computes 'successes', 'duration' and 'lateness'"
            raise ValueError(msg)
        return value

    @field_validator("range")
    @classmethod
    def _range_minimum(cls, value: timedelta) -> timedelta:
        if value < METRIC_MIN_RANGE:
            msg = "`range` must be at least 10 seconds"
            raise ValueError(msg)
        return value

    @field_validator("firing_for")
    @classmethod
    def _firing_for_non_negative(cls, value: timedelta) -> timedelta:
        if value < timedelta(0):
            msg = "`firing_for` must be at least 0 seconds"
            raise ValueError(msg)
        return value


class MetricTrigger(_Model):
    """Fires while a flow-run metric breaches its threshold, resolves when it recovers."""

    type: Literal["metric"] = "metric"
    id: uuid.UUID | None = None
    match: ResourceSpec = Field(default_factory=dict)
    match_related: ResourceSpec | list[ResourceSpec] = Field(default_factory=dict)
    posture: Literal["Metric"] = "Metric"
    metric: MetricTriggerQuery


# -- end metric triggers ---------------------------------------------------------------


class CompoundTrigger(_Model):
    """Fires when `require` of its child triggers have fired within `within` (spec §3.2)."""

    type: Literal["compound"] = "compound"
    id: uuid.UUID | None = None
    triggers: list[Trigger]
    require: int | Literal["any", "all"]
    # The key is required; its value may be null. No sign check (spec §3.2).
    within: timedelta | None

    @model_validator(mode="after")
    def _require_fits(self) -> CompoundTrigger:
        if isinstance(self.require, int):
            if self.require < 1:
                msg = "require must be at least 1"
                raise ValueError(msg)
            if self.require > len(self.triggers):
                msg = "require must be less than or equal to the number of triggers"
                raise ValueError(msg)
        return self

    @property
    def num_expected_firings(self) -> int:
        if self.require == "any":
            return 1
        if self.require == "all":
            return len(self.triggers)
        return self.require


class SequenceTrigger(_Model):
    """Fires when all its child triggers have fired in declared order (spec §3.2)."""

    type: Literal["sequence"] = "sequence"
    id: uuid.UUID | None = None
    triggers: list[Trigger]
    within: timedelta | None

    @property
    def num_expected_firings(self) -> int:
        return len(self.triggers)


def _trigger_kind(data: Any) -> str:
    # Prefect's client discriminator: a missing `type` is inferred from the shape.
    if isinstance(data, BaseModel):
        return str(getattr(data, "type", "event"))
    if not isinstance(data, dict):
        return "event"
    if "type" in data:
        return str(data["type"])
    if "triggers" in data:
        return "compound" if "require" in data else "sequence"
    if data.get("posture") == "Metric":
        return "metric"
    return "event"


Trigger = Annotated[
    Annotated[EventTrigger, Tag("event")]
    | Annotated[CompoundTrigger, Tag("compound")]
    | Annotated[SequenceTrigger, Tag("sequence")]
    | Annotated[MetricTrigger, Tag("metric")],
    Discriminator(
        _trigger_kind,
        custom_error_type="trigger_type",
        custom_error_message=(
            "unknown trigger type; expected 'event', 'compound', 'sequence' or 'metric'"
        ),
    ),
]

CompoundTrigger.model_rebuild()
SequenceTrigger.model_rebuild()


class Automation(_Model):
    """An automation: one root trigger and the actions its firings run."""

    id: uuid.UUID | None = None
    name: str
    description: str = ""
    enabled: bool = True
    tags: list[str] = Field(default_factory=list)
    trigger: Trigger
    actions: list[Action]
    actions_on_trigger: list[Action] = Field(default_factory=list)
    actions_on_resolve: list[Action] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _not_too_deep(cls, data: Any) -> Any:
        # Before any field is validated: pydantic, and every walk of the tree after it,
        # recurse once per level, so a deep body must be refused without recursing.
        if not isinstance(data, dict):
            return data
        room = MAX_AUTOMATION_DEPTH - 1  # the automation object is level 1
        for name, value in data.items():
            if name == "trigger" and _too_deep_trigger(value) is not None:
                continue  # the trigger's own validator names the nesting rule
            if json_depth(value, room) > room:
                msg = (
                    f"`{name}` is nested too deep: an automation's JSON may have at most "
                    f"{MAX_AUTOMATION_DEPTH} levels (the automation object is level 1)"
                )
                raise ValueError(msg)
            if _holds_huge_integer(value):
                # orjson, which stores and serves automations, refuses them (a fuzzed
                # action field of 2**70 gave a 500).
                msg = (
                    f"`{name}` holds an integer outside -2**63 to 2**64-1, the range "
                    "JSON tools read exactly; write it as a string"
                )
                raise ValueError(msg)
        return data

    @field_validator("trigger", mode="before")
    @classmethod
    def _trigger_not_too_deep(cls, value: Any) -> Any:
        path = _too_deep_trigger(value)
        if path is not None:
            msg = (
                f"triggers are nested more than {MAX_TRIGGER_DEPTH} levels deep (at "
                f"{path}; the automation's trigger is level 1): Tripwire's limit on "
                "compound and sequence nesting"
            )
            raise ValueError(msg)
        return value

    @model_validator(mode="after")
    def _prevent_run_deployment_loops(self) -> Automation:
        # AutomationCore.prevent_run_deployment_loops (spec §2).
        trigger = self.trigger
        if not self.enabled or not isinstance(trigger, EventTrigger):
            return self
        if trigger.posture != "Reactive" or not _RUN_LOOP_EVENTS & set(trigger.expect):
            return self
        for action in self.actions:
            if action.type != "run-deployment":
                continue
            source = (action.model_extra or {}).get("source", "selected")
            if source == "inferred":
                msg = (
                    "Running an inferred deployment from a flow run state change event "
                    "will lead to an infinite loop of flow runs."
                )
                raise ValueError(msg)
            if _could_match_any_flow_run(trigger.match) and _related_could_match(
                trigger.match_related
            ):
                msg = (
                    "Running a selected deployment from a flow run state change event "
                    "may lead to an infinite loop of flow runs."
                )
                raise ValueError(msg)
        return self

    def with_ids(self) -> Automation:
        """Give the automation and every nested trigger a stable id where none was given."""
        automation_id = self.id or uuid.uuid5(uuid.NAMESPACE_URL, f"tripwire:{self.name}")
        trigger = _with_trigger_ids(self.trigger, automation_id, "trigger")
        return self.model_copy(update={"id": automation_id, "trigger": trigger})


def json_depth(value: Any, limit: int) -> int:
    """Nesting levels of decoded JSON (a scalar is 0), counted up to `limit` + 1 at most.

    Iterative, so a value nested deeper than Python's recursion limit is measured too.
    """
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)] if isinstance(value, dict | list) else []
    while stack:
        node, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > limit:
            return deepest
        for child in node.values() if isinstance(node, dict) else node:
            if isinstance(child, dict | list):
                stack.append((child, level + 1))
    return deepest


def _holds_huge_integer(value: Any) -> bool:
    """Whether decoded JSON holds an integer orjson cannot write; iterative, like json_depth."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, int) and not isinstance(node, bool):
            if not -(2**63) <= node < 2**64:
                return True
        elif isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _too_deep_trigger(trigger: Any) -> str | None:
    """The path of a trigger past MAX_TRIGGER_DEPTH in raw JSON, if any; never recursing."""
    stack: list[tuple[Any, str, int]] = [(trigger, "trigger", 1)]
    while stack:
        node, path, level = stack.pop()
        if not isinstance(node, dict) or not isinstance(node.get("triggers"), list):
            continue
        for index, child in enumerate(node["triggers"]):
            if isinstance(child, dict):
                if level + 1 > MAX_TRIGGER_DEPTH:
                    return f"{path}.triggers[{index}]"
                stack.append((child, f"{path}.triggers[{index}]", level + 1))
    return None


def _could_match_any_flow_run(spec: ResourceSpec) -> bool:
    if not spec:
        return True
    if set(spec) != {"prefect.resource.id"}:
        return False
    values = spec["prefect.resource.id"]
    values = [values] if isinstance(values, str) else values
    return "prefect.flow-run.*" in values


def _related_could_match(related: ResourceSpec | list[ResourceSpec]) -> bool:
    specs = [related] if isinstance(related, dict) else related
    return any(_could_match_any_flow_run(spec) for spec in specs)


def _with_trigger_ids(trigger: Any, automation_id: uuid.UUID, path: str) -> Any:
    update: dict[str, Any] = {}
    if trigger.id is None:
        update["id"] = uuid.uuid5(automation_id, path)
    if isinstance(trigger, CompoundTrigger | SequenceTrigger):
        update["triggers"] = [
            _with_trigger_ids(child, automation_id, f"{path}.triggers[{i}]")
            for i, child in enumerate(trigger.triggers)
        ]
    return trigger.model_copy(update=update) if update else trigger


def parse_automation(data: Any) -> Automation:
    """Validate one automation object; raise `ValidationFailed` naming field and rule."""
    return validated(lambda: Automation.model_validate(data)).with_ids()


def parse_automations(data: Any) -> list[Automation]:
    """Validate a list of automations (a single object is a list of one)."""
    items = data if isinstance(data, list) else [data]
    out = []
    for index, item in enumerate(items):
        try:
            out.append(parse_automation(item))
        except Exception as exc:
            from service.errors import ValidationFailed

            if isinstance(exc, ValidationFailed) and len(items) > 1:
                raise ValidationFailed(
                    [(f"[{index}].{loc}" if loc else f"[{index}]", msg) for loc, msg in exc.errors]
                ) from None
            raise
    return out
