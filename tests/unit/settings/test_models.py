"""The `models` entries of the config: typed, checked at load, and merged into the catalog
field by field."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from gateway.catalog import ModelCatalog
from gateway.settings import ConfigError, load_settings


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


def test_an_entry_replaces_only_the_fields_it_sets(tmp_path: Path) -> None:
    path = config(tmp_path, "models:\n  - {id: claude-opus-5, retires_at: 2020-01-01}\n")
    catalog = ModelCatalog.load(load_settings(path).models)
    listed = ModelCatalog.load().resolve("claude-opus-5")
    spec = catalog.resolve("claude-opus-5")
    assert listed is not None
    assert spec is not None
    assert spec.retires_at == dt.date(2020, 1, 1)
    assert spec.model_copy(update={"retires_at": listed.retires_at}) == listed


def test_a_bad_entry_is_a_config_error_naming_its_field(tmp_path: Path) -> None:
    path = config(tmp_path, "models:\n  - {id: m, max_tokens: 0}\n")
    with pytest.raises(ConfigError, match=r"models\.0\.max_tokens"):
        load_settings(path)


def test_an_entry_without_an_id_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"models\.0\.id"):
        load_settings(config(tmp_path, "models:\n  - {max_tokens: 10}\n"))
