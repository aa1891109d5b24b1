"""Compiled label and event-name patterns with Prefect's server semantics (spec §4).

Every pattern is compiled once, when automations load: equality, prefix and "any"
patterns become plain string operations and only real globs use a regular expression.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = [
    "LabelPredicate",
    "NamePredicate",
    "compile_glob",
    "compile_label_patterns",
    "compile_name_pattern",
    "compile_name_patterns",
    "compile_related_specs",
    "compile_resource_spec",
    "covers_name_regex",
    "covers_related",
    "glob_kind",
]

LabelPredicate = Callable[[str], bool]
NamePredicate = Callable[[str], bool]
ResourcePredicate = Callable[[Mapping[str, str]], bool]

_GLOB_CHARS = frozenset("*?[")


def glob_kind(pattern: str) -> tuple[str, str]:
    """Classify an fnmatch pattern: ("eq", s), ("prefix", p), ("any", "") or ("glob", pattern)."""
    if not _GLOB_CHARS & set(pattern):
        return "eq", pattern
    if pattern == "*":
        return "any", ""
    head = pattern[:-1]
    if pattern.endswith("*") and not _GLOB_CHARS & set(head):
        return "prefix", head
    return "glob", pattern


def compile_glob(pattern: str) -> LabelPredicate:
    """A plain fnmatch glob, case-sensitive; `!` has no special meaning here."""
    kind, arg = glob_kind(pattern)
    if kind == "eq":
        return arg.__eq__
    if kind == "prefix":
        return lambda value: value.startswith(arg)
    if kind == "any":
        return lambda value: True
    match = re.compile(fnmatch.translate(arg), re.DOTALL).match
    return lambda value: match(value) is not None


def compile_name_pattern(pattern: str) -> NamePredicate:
    """`schemas/events.py:matches`: a full fnmatch glob, a leading `!` negates."""
    if pattern.startswith("!"):
        inner = compile_glob(pattern[1:])
        return lambda value: not inner(value)
    return compile_glob(pattern)


def compile_name_patterns(patterns: Sequence[str], *, negation: bool = True) -> NamePredicate:
    """Any of several event-name patterns; plain names become one set lookup.

    With `negation`, a leading `!` negates (`expects`, `starts_after`); without, it is a
    literal character (the pre-filter's plain fnmatch, spec §4.1).
    """
    if all(glob_kind(p)[0] == "eq" and not (negation and p.startswith("!")) for p in patterns):
        return frozenset(patterns).__contains__
    compile_one = compile_name_pattern if negation else compile_glob
    predicates = [compile_one(p) for p in patterns]
    if len(predicates) == 1:
        return predicates[0]
    return lambda name: any(p(name) for p in predicates)


def compile_label_patterns(patterns: str | Sequence[str]) -> LabelPredicate:
    """One label's patterns: a list is an OR, `[]` matches nothing (spec §4.2)."""
    items = [patterns] if isinstance(patterns, str) else list(patterns)
    predicates = [compile_name_pattern(p) for p in items]
    if not predicates:
        return lambda value: False
    if len(predicates) == 1:
        return predicates[0]
    return lambda value: any(p(value) for p in predicates)


def compile_resource_spec(spec: Mapping[str, str | Sequence[str]]) -> ResourcePredicate:
    """Labels are ANDed; a missing label never matches, not even a negated one (spec §4.2)."""
    checks = [(label, compile_label_patterns(patterns)) for label, patterns in spec.items()]
    if not checks:
        return lambda resource: True
    if len(checks) == 1:
        ((label, check),) = checks

        def single(resource: Mapping[str, str]) -> bool:
            value = resource.get(label)
            return value is not None and check(value)

        return single

    def every(resource: Mapping[str, str]) -> bool:
        for label, check in checks:
            value = resource.get(label)
            if value is None or not check(value):
                return False
        return True

    return every


def compile_related_specs(match_related: Any) -> list[ResourcePredicate]:
    """`match_related`: one object, or a list of objects each tested on its own (§4.3).

    Empty objects match everything, so they are left out.
    """
    specs = [match_related] if isinstance(match_related, Mapping) else list(match_related)
    return [compile_resource_spec(spec) for spec in specs if spec]


def covers_related(
    specs: Sequence[ResourcePredicate], related: Sequence[Mapping[str, str]]
) -> bool:
    """Every spec is met by at least one related resource (the same one or not)."""
    for spec in specs:
        for resource in related:
            if spec(resource):
                break
        else:
            return False
    return True


def covers_name_regex(expect: Sequence[str], after: Sequence[str]) -> NamePredicate:
    """`EventTrigger.event_pattern`, matched at the start of the name.

    Patterns are escaped and `*` means one or more characters; an empty `expect` admits
    any non-empty name.
    """
    if not expect:
        return lambda name: bool(name)
    patterns = sorted(set(expect) | set(after))
    body = "|".join(re.escape(p).replace("\\*", ".+") for p in patterns)
    match = re.compile(f"^({body})", re.DOTALL).match
    return lambda name: match(name) is not None
