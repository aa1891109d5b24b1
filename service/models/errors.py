"""Turn pydantic's validation errors into Tripwire's one error type, naming field and rule."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from service.errors import ValidationFailed

__all__ = ["clean_location", "clean_message", "field_path", "validated"]

T = TypeVar("T")


def field_path(loc: tuple[int | str, ...]) -> str:
    """Render a pydantic location as `trigger.triggers[0].within`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def clean_location(raw: Sequence[int | str]) -> tuple[int | str, ...]:
    """A pydantic error location without union tags: the JSON path a user wrote."""
    return tuple(p for i, p in enumerate(raw) if not _is_union_tag(p, raw[i - 1] if i else None))


def clean_message(message: str) -> str:
    """A pydantic error message without the prefix pydantic adds to raised errors."""
    return message.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _describe(error: Any) -> tuple[str, str]:
    return field_path(clean_location(error["loc"])), clean_message(str(error["msg"]))


_TRIGGER_TAGS = frozenset({"event", "compound", "sequence", "metric"})


def _is_union_tag(part: int | str, before: int | str | None) -> bool:
    # pydantic puts the tagged-union member name ("event", "compound", ...) after a
    # trigger's location; a user thinks in JSON paths only.
    if not isinstance(part, str):
        return False
    if part.startswith("function-"):
        return True
    return part in _TRIGGER_TAGS and (before == "trigger" or isinstance(before, int))


def validated(parse: Callable[[], T]) -> T:
    """Run a pydantic parse, re-raising failures as `ValidationFailed`."""
    try:
        return parse()
    except ValidationError as exc:
        raise ValidationFailed([_describe(e) for e in exc.errors()]) from None
