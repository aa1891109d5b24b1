"""Every setting has a default, a TRIPWIRE_ variable, and a line in the README."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import Settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_every_setting_is_documented_in_the_readme(name: str) -> None:
    assert f"`TRIPWIRE_{name.upper()}`" in README


def test_settings_come_from_tripwire_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRIPWIRE_PARTITIONS", "7")
    monkeypatch.setenv("TRIPWIRE_DATA_DIR", "/srv/tripwire")
    settings = Settings()
    assert settings.partitions == 7
    assert settings.state_dir == Path("/srv/tripwire/worker")


def test_every_setting_has_a_default_and_a_description() -> None:
    for name, field in Settings.model_fields.items():
        assert not field.is_required(), name
        assert field.description, name
