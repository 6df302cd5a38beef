"""The model catalog: documented output limits, and unlisted ids served like their family."""

from __future__ import annotations

import datetime as dt

import pytest

from gateway.catalog import ModelCatalog
from gateway.emulator.models import INFERRED_HEADER, served_model

CATALOG = ModelCatalog.load()
TODAY = dt.date(2026, 11, 1)


@pytest.mark.parametrize(
    ("model", "max_tokens"),
    [
        # Anthropic's model pages: 128K for Opus 4.6 and later, Sonnet 4.6 and later, Haiku 5.5.
        ("claude-sonnet-4-6", 128_000),
        ("claude-sonnet-5", 128_000),
        ("claude-sonnet-5-5", 128_000),
        ("claude-haiku-5-5", 128_000),
        ("claude-opus-4-6", 128_000),
        ("claude-opus-4-8", 128_000),
        ("claude-opus-5-5", 128_000),
        # ... and 64K for the 4.5 generation.
        ("claude-opus-4-5", 64_000),
        ("claude-sonnet-4-5", 64_000),
        ("claude-haiku-4-5", 64_000),
        ("gpt-6.1-sol", 128_000),
        ("gpt-4.1", 32_768),
        ("o3", 100_000),
    ],
)
def test_documented_output_limits(model: str, max_tokens: int) -> None:
    spec = CATALOG.resolve(model)
    assert spec is not None
    assert spec.max_tokens == max_tokens


def test_haiku_5_5_has_a_million_token_context() -> None:
    spec = CATALOG.resolve("claude-haiku-5-5")
    assert spec is not None
    assert spec.max_input_tokens == 1_000_000


@pytest.mark.parametrize(
    ("name", "relative"),
    [
        ("gpt-6.2-sol", "gpt-6.1-sol"),  # Codex 0.171's default
        ("gpt-6.2-astra", "gpt-6-astra"),
        ("gpt-7-luna", "gpt-6-luna"),
        ("gpt-5.7-terra", "gpt-5.6-terra"),
        ("gpt-5.4-mini-2026-09-01", "gpt-5.4-mini-2026-03-17"),
        ("o5-mini", "o4-mini-2025-04-16"),
        ("claude-opus-5-1", "claude-opus-5"),
        ("claude-opus-4-9", "claude-opus-4-8"),
        ("claude-sonnet-6", "claude-sonnet-5-5"),
        ("claude-haiku-4-5-20260101", "claude-haiku-4-5-20251001"),
        ("claude-fable-5-2", "claude-fable-5-1"),
        ("claude-opus-3", "claude-opus-4-20250514"),  # older than any listed: the oldest
    ],
)
def test_unlisted_ids_take_their_nearest_relative(name: str, relative: str) -> None:
    base = CATALOG.nearest(name)
    assert base is not None
    assert base.id == relative
    inferred = CATALOG.infer(name)
    assert inferred is not None
    assert inferred.id == name
    assert inferred.max_tokens == base.max_tokens
    assert inferred.provider == base.provider
    assert inferred.retires_at is None


@pytest.mark.parametrize(
    "name", ["gpt-6.2-pro", "claude-poem-5", "llama-4", "gpt-6.1-sol-turbo", "claude-3-9-opus"]
)
def test_ids_outside_any_known_naming_are_not_inferred(name: str) -> None:
    assert CATALOG.nearest(name) is None
    assert CATALOG.infer(name) is None


def test_served_model_says_when_it_inferred_and_strict_refuses() -> None:
    served = served_model(CATALOG, "gpt-6.2-sol", "openai", TODAY, strict=False)
    assert served is not None
    assert served.headers() == {INFERRED_HEADER: "gpt-6.1-sol"}
    assert served_model(CATALOG, "gpt-6.2-sol", "openai", TODAY, strict=True) is None
    assert served_model(CATALOG, "gpt-6.2-sol", "anthropic", TODAY, strict=False) is None
    listed = served_model(CATALOG, "gpt-6.1-sol", "openai", TODAY, strict=True)
    assert listed is not None
    assert listed.headers() == {}
