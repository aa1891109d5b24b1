"""Every public conformance scenario, run through the `tripwire replay` command."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCENARIOS = Path(__file__).resolve().parents[1] / "conformance"
TRIPWIRE = Path(sys.executable).with_name("tripwire")
TEMPLATE = f"{TRIPWIRE} replay --automations {{automations}} --events {{events}} {{ticks}} {{args}}"


def _load_checker():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("conformance_check", SCENARIOS / "check.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


check = _load_checker()
FOLDERS = check.scenario_folders([])


def test_every_scenario_folder_is_collected() -> None:
    assert len(FOLDERS) >= 20
    assert all((folder / "automations.json").is_file() for folder in FOLDERS)


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_replay_matches_prefect(folder: Path) -> None:
    command = check.engine_command(TEMPLATE, folder)
    check.check(command, folder, timeout=120)
