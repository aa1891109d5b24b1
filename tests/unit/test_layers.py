"""The layer check (tools/check_layers.py) passes this tree and fails a tree that breaks it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tools.check_layers import ROOT, check

SCRIPT = ROOT / "tools" / "check_layers.py"


def tree(root: Path, files: dict[str, str]) -> Path:
    """A minimal repository under `root`: the given modules and their packages."""
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        for package in path.relative_to(root).parents:
            if package != Path():
                (root / package / "__init__.py").touch()
        path.write_text(text)
    return root


def run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), str(root)], capture_output=True, text=True, check=False
    )


def test_the_repository_keeps_its_layers() -> None:
    assert check(ROOT) == []
    done = run(ROOT)
    assert done.returncode == 0, done.stderr


def test_imports_down_the_layers_pass(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "service/errors.py": "",
            "service/models/events.py": "from service.errors import ValidationFailed\n",
            "service/core/engine.py": "from service.models import events\n",
            "service/state/memory.py": "from service.core.engine import Engine\n",
            "service/messaging/records.py": "import service.state.memory\n",
            "topologies/app.py": "from service.messaging import records\nfrom . import runtime\n",
            "topologies/runtime.py": "from service.core import engine\n",
            "service/cli.py": "from topologies.app import create_app\n",
        },
    )
    assert check(root) == []
    assert run(root).returncode == 0


def test_a_model_importing_the_action_worker_fails(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "service/models/actions.py": (
                "def later() -> None:\n    from service.actions.templates import render\n"
            ),
            "service/actions/templates.py": "",
        },
    )
    [violation] = check(root)
    assert (str(violation.path), violation.line) == ("service/models/actions.py", 2)
    assert violation.imported == "service.actions.templates"
    assert "models layer must not import the higher services layer" in violation.why
    done = run(root)
    assert done.returncode == 1
    assert "service/models/actions.py:2" in done.stderr


def test_upward_imports_of_every_kind_fail(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            # the core reaching for state, relatively and by `from package import module`
            "service/core/engine.py": "from ..state import documents\n",
            "service/core/registry.py": "from service import worker\n",
            "service/state/documents.py": "from topologies.tables import PartitionTable\n",
            "service/errors.py": "import service.models.events\n",
            "service/models/events.py": "",
            "service/worker.py": "",
            "topologies/tables.py": "",
        },
    )
    found = {(str(v.path), v.imported) for v in check(root)}
    assert found == {
        ("service/core/engine.py", "service.state"),
        ("service/core/registry.py", "service.worker"),
        ("service/state/documents.py", "topologies.tables"),
        ("service/errors.py", "service.models.events"),
    }


def test_independent_services_and_unplaced_modules_fail(tmp_path: Path) -> None:
    root = tree(
        tmp_path,
        {
            "topologies/app.py": "from service.api.app import create\n",
            "service/api/app.py": "from service.actions import outcome_events\n",
            "service/actions/outcome_events.py": "",
            "service/newthing.py": "",
        },
    )
    found = {(str(v.path), v.imported, v.why) for v in check(root)}
    assert found == {
        (
            "topologies/app.py",
            "service.api.app",
            "topologies and service.api are independent services",
        ),
        ("service/newthing.py", "-", "service.newthing is in no layer"),
    }
