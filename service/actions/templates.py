"""User templates in a Jinja2 sandbox, with Prefect's limits, size limits and template context."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from jinja2 import ChainableUndefined, Template, Undefined, pass_eval_context
from jinja2.exceptions import SecurityError
from jinja2.nodes import EvalContext
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from service.models.templates import MAX_TEMPLATE_RANGE

__all__ = [
    "EventView",
    "LabelDiver",
    "ResourceView",
    "Sandbox",
    "TemplateFailed",
    "maybe_template",
    "render",
    "render_all",
    "template_context",
]


class TemplateFailed(Exception):
    """A template could not be rendered; the action fails for good (no retry helps)."""


def _limited_range(*args: int) -> range:
    values = range(*args)
    if len(values) > MAX_TEMPLATE_RANGE:
        msg = f"Range too big. The sandbox blocks ranges larger than {MAX_TEMPLATE_RANGE}."
        raise OverflowError(msg)
    return values


def _plain(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, LabelDiver):
        return dict(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@pass_eval_context
def _tojson(eval_ctx: EvalContext, value: object, indent: int | None = None) -> Markup:
    return htmlsafe_json_dumps(_plain(value), dumps=json.dumps, indent=indent)


# A power whose result would have more bits than this is refused before it is computed:
# `9 ** (9 ** 8)` alone took 58 s of CPU. Python cannot print an int of over 4,300
# digits (about 14,300 bits) anyway, so legitimate arithmetic stays far below it.
MAX_POWER_BITS = 65_536
DEFAULT_MAX_OUTPUT = 1_000_000


class Sandbox(ImmutableSandboxedEnvironment):
    """Prefect's sandbox, plus: unsafe attributes are errors, and `**` and `*` are sized.

    `max_output` is the most characters a render may produce; a string or list
    multiplied past it is refused before Python builds it.
    """

    intercepted_binops = frozenset({"**", "*"})

    def __init__(self, max_output: int = DEFAULT_MAX_OUTPUT) -> None:
        super().__init__(undefined=ChainableUndefined, autoescape=False)
        self.max_output = max_output
        self.globals["range"] = _limited_range
        self.filters["tojson"] = _tojson

    def unsafe_undefined(self, obj: Any, attribute: str) -> Undefined:
        # Jinja returns an Undefined that renders as "", so `{{ f.__globals__ }}` sent an
        # empty webhook without a word; a template that reaches for internals is a bug
        # (or an attack) its author must hear about.
        msg = (
            f"access to attribute {attribute!r} of a {type(obj).__name__!r} object is "
            "unsafe; templates may not use attributes starting with '_' or Python internals"
        )
        raise SecurityError(msg)

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            _check_power(left, right)
        elif operator == "*":
            self._check_repeat(left, right)
        return self.binop_table[operator](left, right)

    def _check_repeat(self, left: Any, right: Any) -> None:
        for sequence, times in ((left, right), (right, left)):
            if (
                isinstance(sequence, str | list | tuple)
                and isinstance(times, int)
                and len(sequence) * times > self.max_output
            ):
                unit = "characters" if isinstance(sequence, str) else "items"
                msg = (
                    f"{len(sequence):,} {unit} repeated {times:,} times would be "
                    f"{len(sequence) * times:,} {unit}; templates may render at most "
                    f"{self.max_output:,} characters (TRIPWIRE_TEMPLATE_MAX_OUTPUT)"
                )
                raise SecurityError(msg)


def _check_power(base: Any, exponent: Any) -> None:
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0:
        return  # floats overflow at once; a negative exponent gives a float
    bits = exponent * (abs(base).bit_length() - 1)
    if bits > MAX_POWER_BITS:
        msg = (
            f"{base} ** {exponent} would be a number of about {bits:,} bits; the sandbox "
            f"refuses powers over {MAX_POWER_BITS:,} bits"
        )
        raise SecurityError(msg)


ENVIRONMENT = Sandbox()


def maybe_template(value: str) -> bool:
    """Prefect's test: does a string contain Jinja syntax at all."""
    return "{{" in value or "{%" in value


@lru_cache(maxsize=512)
def _compiled(environment: Sandbox, template: str) -> Template:
    # Compiling costs about ten times a small render; automations fire again and again.
    return environment.from_string(template)


def render(template: str, context: Mapping[str, Any], environment: Sandbox = ENVIRONMENT) -> str:
    """Render one user template in the sandbox; TemplateFailed says why it could not."""
    return render_all([template], context, environment)[0]


def render_all(
    templates: Sequence[str], context: Mapping[str, Any], environment: Sandbox = ENVIRONMENT
) -> list[str]:
    """Render the templates of one action; together at most `max_output` characters.

    The output is counted as it is produced, so a loop that keeps writing stops at the
    limit instead of building the whole text first. No CPU budget here: that is the
    render process's (service/actions/render_pool.py), which runs this.
    """
    left = environment.max_output
    out: list[str] = []
    for template in templates:
        if not maybe_template(template):
            out.append(template)
            continue
        chunks: list[str] = []
        try:
            for chunk in _compiled(environment, template).generate(**context):
                left -= len(chunk)
                if left < 0:
                    msg = (
                        f"Template rendering failed: the output is over the limit of "
                        f"{environment.max_output:,} characters (TRIPWIRE_TEMPLATE_MAX_OUTPUT)"
                    )
                    raise TemplateFailed(msg)
                chunks.append(chunk)
        except (TemplateFailed, MemoryError):
            raise  # the render process names the memory limit
        except Exception as exc:  # noqa: BLE001  # any error in user code fails the action
            msg = f"Template rendering failed: {exc!r}"
            raise TemplateFailed(msg) from None
        out.append("".join(chunks))
    return out


# -- the context: Prefect's objects, rebuilt from the firing record --------------------


class ResourceView(dict[str, str]):
    """A resource's labels with Prefect's `.id`, `.name` and `.role` accessors."""

    @property
    def id(self) -> str:
        return self.get("prefect.resource.id", "")

    @property
    def name(self) -> str | None:
        return self.get("prefect.resource.name")

    @property
    def role(self) -> str:
        return self.get("prefect.resource.role", "")


class _Attrs(dict[str, Any]):
    """A JSON object whose keys are also attributes (Prefect's models in templates)."""

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class EventView(_Attrs):
    """A Prefect event: `event.resource.id`, `event.related`, `event.occurred`, ..."""

    @classmethod
    def of(cls, data: Mapping[str, Any]) -> EventView:
        view = cls(data)
        view["resource"] = ResourceView(data.get("resource") or {})
        view["related"] = [ResourceView(r) for r in data.get("related") or []]
        view["payload"] = data.get("payload") or {}
        for key in ("occurred", "received"):
            if isinstance(data.get(key), str):
                view[key] = _datetime(data[key])
        return view

    @property
    def involved_resources(self) -> list[ResourceView]:
        return [self["resource"], *self["related"]]

    @property
    def resource_in_role(self) -> dict[str, ResourceView]:
        return {r.role: r for r in reversed(self["related"])}

    @property
    def resources_in_role(self) -> dict[str, list[ResourceView]]:
        out: dict[str, list[ResourceView]] = {}
        for related in self["related"]:
            out.setdefault(related.role, []).append(related)
        return out


def _datetime(text: str) -> datetime | str:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return text


class LabelDiver:
    """Prefect's LabelDiver: `labels.prefect.resource.id` walks dotted label names."""

    def __init__(self, labels: Mapping[str, str], value: str = "") -> None:
        self._labels = dict(labels)
        self._value = value
        nested: dict[str, dict[str, str]] = {}
        values: dict[str, str] = {}
        for key, item in labels.items():
            head, _, tail = key.partition(".")
            if tail:
                nested.setdefault(head, {})[tail] = item
            else:
                values[head] = item
        self._divers = {k: LabelDiver(v, value=values.pop(k, "")) for k, v in nested.items()}
        self._divers.update({k: LabelDiver({}, value=v) for k, v in values.items()})

    def __str__(self) -> str:
        return self._value or ""

    def __len__(self) -> int:
        return len(self._labels)

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._labels.items())

    def keys(self) -> list[str]:
        return list(self._labels)

    def __getitem__(self, key: str) -> str:
        return self._labels[key]

    def __getattr__(self, name: str) -> LabelDiver:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._divers[name]
        except KeyError:
            raise AttributeError(name) from None


def _firing_view(record: Mapping[str, Any], trigger_id: str, state: str) -> _Attrs:
    event = record.get("triggering_event")
    children = [
        _firing_view(child, child["trigger_id"], "Triggered")
        for child in record.get("child_firings") or []
    ]
    return _Attrs(
        id=record["id"],
        trigger=_Attrs(id=trigger_id),
        trigger_states=[state],
        triggered=_datetime(record["fired_at"]),
        triggering_labels=dict(record.get("bucket") or {}),
        triggering_firings=children,
        triggering_event=EventView.of(event) if event else None,
        triggering_value=record.get("triggering_value"),
    )


def _all_firings(firing: _Attrs) -> list[_Attrs]:
    return [firing, *(f for child in firing["triggering_firings"] for f in _all_firings(child))]


def _all_events(firing: _Attrs) -> list[EventView]:
    own = [firing["triggering_event"]] if firing["triggering_event"] else []
    return own + [e for child in firing["triggering_firings"] for e in _all_events(child)]


_OBJECT_NAME = re.compile(r"\b(flow_run|flow|deployment|work_pool|work_queue)\b")


def template_context(record: Mapping[str, Any], event: Mapping[str, Any] | None) -> dict[str, Any]:
    """Prefect's context: automation, event, labels, firing, firings, events.

    `event` is the action's triggering event: the firing's triggering event for
    `actions`, the firing's state event for `actions_on_trigger`/`actions_on_resolve`.
    """
    firing = _firing_view(record, record["trigger_id"], record["state"])
    return {
        "automation": _Attrs(
            id=record["automation_id"],
            name=record["automation_name"],
            trigger=_Attrs(id=record["trigger_id"]),
            actions=record.get("actions") or [],
            actions_on_trigger=record.get("actions_on_trigger") or [],
            actions_on_resolve=record.get("actions_on_resolve") or [],
        ),
        "event": EventView.of(event) if event else None,
        "labels": LabelDiver(record.get("bucket") or {}),
        "firing": firing,
        "firings": _all_firings(firing),
        "events": _all_events(firing),
    }


def objects_named(templates: list[str]) -> set[str]:
    """Prefect objects (`flow_run`, `deployment`, ...) the templates mention."""
    return {m.group(1) for t in templates for m in _OBJECT_NAME.finditer(t)}


def attrs(data: Mapping[str, Any]) -> _Attrs:
    """A JSON object with attribute access, nested objects too."""
    out = _Attrs()
    for key, value in data.items():
        out[key] = attrs(value) if isinstance(value, Mapping) else value
    return out
