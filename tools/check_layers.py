"""Fail when a module imports a higher layer than its own (`make lint` runs this).

The layers, lowest first: the foundation (errors, settings, logging, metrics), models,
the core, state, messaging, then the services that drive them (the worker's topologies,
the API, the action worker, the bridge, replay), and the entry points at the top. A
module may import its own layer and the layers below it. The services are independent
of each other too: one may import another only where ALLOWED_PEERS says so. So the
pure core never reaches for the worker, and models stay importable by every process.

    python tools/check_layers.py [ROOT]

Every import is checked, inside functions and `if TYPE_CHECKING:` blocks too. A module
in no layer is an error as well, so a new package has to be placed.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LAYERS", "Violation", "check", "main"]

ROOT = Path(__file__).resolve().parent.parent
# The top-level packages this checks; imports of anything else (the standard library,
# third-party packages) are not its business.
PACKAGES = ("service", "topologies")

# (layer name, its units, are its units independent of each other), lowest first. A
# unit is a subpackage or a module of `service`, or the `topologies` package.
LAYERS: list[tuple[str, frozenset[str], bool]] = [
    (
        "foundation",
        frozenset(
            {
                "service",
                "service.compiled_core",
                "service.config",
                "service.errors",
                "service.logs",
                "service.metrics",
                "service.progress",
                "service.readiness",
            }
        ),
        False,
    ),
    ("models", frozenset({"service.models"}), False),
    ("core", frozenset({"service.core"}), False),
    ("state", frozenset({"service.state"}), False),
    ("messaging", frozenset({"service.messaging", "service.event_records"}), False),
    (
        "services",
        frozenset(
            {
                "topologies",
                "service.actions",
                "service.api",
                "service.api_client",
                "service.backtest",
                "service.bridge",
                "service.console",
                "service.embedded",
                "service.membership",
                "service.replay",
            }
        ),
        True,
    ),
    (
        "entry points",
        frozenset(
            {
                "service.automations_cli",
                "service.backtest_cli",
                "service.cli",
                "service.kafka_cli",
                "service.worker",
            }
        ),
        False,
    ),
]

# Imports between independent units of one layer that are allowed, and why.
ALLOWED_PEERS = {
    # The history API serves the action worker's outcome events and shares their names.
    ("service.api", "service.actions"),
    # A backtest runs replay's engine and timeline, so that the two cannot differ.
    ("service.backtest", "service.replay"),
    # The API serves backtests and the console; the console's pages read the API's
    # history, catalog and live feed.
    ("service.api", "service.backtest"),
    ("service.api", "service.console"),
    ("service.console", "service.api"),
}


@dataclass(frozen=True, slots=True)
class Violation:
    """One import that points the wrong way."""

    path: Path
    line: int
    importer: str
    imported: str
    why: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.importer} imports {self.imported}: {self.why}"


def _layer_of(unit: str) -> tuple[int, bool] | None:
    for number, (_, units, independent) in enumerate(LAYERS):
        if unit in units:
            return number, independent
    return None


def _unit(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "service" and len(parts) > 1 else parts[0]


def _module_name(root: Path, path: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import of the checked packages."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from service import metrics` imports the module service.metrics.
            names = [f"{base}.{alias.name}" for alias in node.names] if base in PACKAGES else [base]
        else:
            continue
        for name in names:
            if name.split(".")[0] in PACKAGES:
                yield node.lineno, name


def check(root: Path) -> list[Violation]:
    """Every import under `root`'s packages that points up, or out of every layer."""
    found: list[Violation] = []
    for top in PACKAGES:
        for path in sorted((root / top).rglob("*.py")):
            module = _module_name(root, path)
            importer = _unit(module)
            own = _layer_of(importer)
            shown = path.relative_to(root)
            if own is None:
                found.append(Violation(shown, 1, module, "-", f"{importer} is in no layer"))
                continue
            tree = ast.parse(path.read_bytes(), filename=str(path))
            for line, name in _imports(tree, module, path.name == "__init__.py"):
                imported = _unit(name)
                if imported == importer:
                    continue
                theirs = _layer_of(imported)
                if theirs is None:
                    found.append(Violation(shown, line, module, name, f"{imported} is in no layer"))
                elif theirs[0] > own[0]:
                    why = (
                        f"the {LAYERS[own[0]][0]} layer must not import the higher "
                        f"{LAYERS[theirs[0]][0]} layer"
                    )
                    found.append(Violation(shown, line, module, name, why))
                elif theirs[0] == own[0] and own[1] and (importer, imported) not in ALLOWED_PEERS:
                    why = f"{importer} and {imported} are independent {LAYERS[own[0]][0]}"
                    found.append(Violation(shown, line, module, name, why))
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", type=Path, default=ROOT, help="the repository root")
    args = parser.parse_args(argv)
    violations = check(args.root)
    for violation in violations:
        print(violation, file=sys.stderr)
    if violations:
        print(f"{len(violations)} import(s) against the layers", file=sys.stderr)
        return 1
    print("imports point down the layers")
    return 0


if __name__ == "__main__":
    sys.exit(main())
