"""Template checks at creation: parse in the sandbox's syntax, Prefect's loop limits."""

from __future__ import annotations

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

__all__ = [
    "MAX_LOOP_COUNT",
    "MAX_NESTED_LOOP_DEPTH",
    "MAX_TEMPLATE_RANGE",
    "validate_template",
]

# Prefect's user_templates limits.
MAX_TEMPLATE_RANGE = 100
MAX_LOOP_COUNT = 10
MAX_NESTED_LOOP_DEPTH = 2

# Parsing needs only the syntax, which the action worker's render environment
# (service/actions/templates.py) shares: both use Jinja's default delimiters and no
# extensions. Models must not import the worker packages (issue 18).
_PARSER = ImmutableSandboxedEnvironment(autoescape=False)


def validate_template(template: str, field: str) -> str:
    """Parse a template and check Prefect's loop limits; ValueError names the field."""
    try:
        root = _PARSER.parse(template)
    except TemplateSyntaxError as exc:
        msg = f"{field!r} is not a valid template: {exc}"
        raise ValueError(msg) from None
    loops = list(root.find_all(nodes.For))
    if len(loops) > MAX_LOOP_COUNT:
        msg = (
            f"{field!r} is not a valid template: Contains {len(loops)} for loops. "
            f"Templates can contain no more than {MAX_LOOP_COUNT} for loops."
        )
        raise ValueError(msg)
    depth = max((_loop_depth(loop) for loop in loops), default=0)
    if depth > MAX_NESTED_LOOP_DEPTH:
        msg = (
            f"{field!r} is not a valid template: Contains nested for loops at a depth of "
            f"{depth}. Templates can nest for loops no more than {MAX_NESTED_LOOP_DEPTH} "
            "loops deep."
        )
        raise ValueError(msg)
    return template


def _loop_depth(node: nodes.Node, depth: int = 0) -> int:
    here = depth + 1 if isinstance(node, nodes.For) else depth
    return max((_loop_depth(child, here) for child in node.iter_child_nodes()), default=here)
