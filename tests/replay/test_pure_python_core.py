"""The pure-Python core gives the conformance scenarios' firings too, not only the compiled one.

`make install` compiles the core with mypyc (tools/compile_core.py) and every other test
runs that build where a C compiler exists. These run `tripwire replay` from a copy of
the sources without the compiled modules, so both builds stay held to Prefect's output.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tests.replay.test_conformance import FOLDERS, check

ROOT = Path(__file__).resolve().parents[2]

LAUNCHER = """
import sys
sys.path.insert(0, {root!r})
import service.core.engine
import service.state.memory
for module in (service.core.engine, service.state.memory):
    if not module.__file__.endswith(".py"):
        sys.exit(f"not the pure-Python core: {{module.__file__}}")
from service.cli import main
sys.exit(main())
"""


@pytest.fixture(scope="module")
def pure_replay(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A `replay` command template running a copy of the sources without compiled modules."""
    root = tmp_path_factory.mktemp("pure")
    ignore = shutil.ignore_patterns("*.so", "compiled.json", "__pycache__")
    shutil.copytree(ROOT / "service", root / "service", ignore=ignore)
    launcher = root / "tripwire_pure.py"
    launcher.write_text(LAUNCHER.format(root=str(root)))
    return (
        f"{sys.executable} {launcher} replay --automations {{automations}} "
        "--events {events} {ticks} {args}"
    )


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_pure_python_replay_matches_prefect(pure_replay: str, folder: Path) -> None:
    check.check(check.engine_command(pure_replay, folder), folder, timeout=120)
