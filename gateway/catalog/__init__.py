"""The model catalog: ids, aliases, lifecycle dates, cache minimums, tokenizer and latency.

The table itself is data (`models.yaml` beside this file, extended from gateway.yaml);
this module only loads it and answers look-ups by id or alias, and — for an id the table
does not list yet but that follows a provider's naming (`claude-opus-5-1`, `gpt-6.2-sol`) —
names the listed model of the same family and tier whose defaults it can be served with.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from importlib import resources
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

Lifecycle = Literal["active", "deprecated", "retired"]


class LatencyProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    ttft_base_ms: float = Field(ge=0)
    prefill_ms_per_1k: float = Field(ge=0)
    cached_prefill_ms_per_1k: float = Field(ge=0)
    output_tokens_per_s: float = Field(gt=0)


class ModelSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    provider: Literal["anthropic", "openai"] = "anthropic"
    aliases: tuple[str, ...] = ()
    display_name: str
    line: str | None = None
    created_at: dt.date
    deprecated_at: dt.date | None = None
    retires_at: dt.date | None = None
    min_cacheable_tokens: int = Field(gt=0)
    chars_per_token: float = Field(gt=0)
    max_input_tokens: int = Field(gt=0)
    max_tokens: int = Field(gt=0)
    latency: LatencyProfile
    # OpenAI's caching generation (docs/wire.md), None for Anthropic models: `exact` (GPT-5.6 and
    # later) reports exact boundaries and bills writes; `rounded` rounds reads down to 128.
    openai_cache: Literal["rounded", "exact"] | None = None
    # Accepts prompt_cache_retention "24h" (docs/wire.md lists the models).
    extended_retention: bool = False
    # Accepts `role: "system"` messages inside `messages` (Anthropic; docs/emulator.md).
    mid_conversation_system: bool = False

    def lifecycle(self, today: dt.date) -> Lifecycle:
        if self.retires_at is not None and today >= self.retires_at:
            return "retired"
        if self.deprecated_at is not None and today >= self.deprecated_at:
            return "deprecated"
        return "active"


class ModelCatalog:
    """Models by id and alias; the order of the table is the order `/v1/models` lists."""

    def __init__(self, models: Iterable[ModelSpec]) -> None:
        self.models: tuple[ModelSpec, ...] = tuple(models)
        self._by_name: dict[str, ModelSpec] = {}
        for spec in self.models:
            for name in (spec.id, *spec.aliases):
                self._by_name[name] = spec

    def resolve(self, name: str) -> ModelSpec | None:
        return self._by_name.get(name)

    def for_provider(self, provider: str) -> tuple[ModelSpec, ...]:
        return tuple(spec for spec in self.models if spec.provider == provider)

    def nearest(self, name: str) -> ModelSpec | None:
        """The listed model an unlisted id is served like, None if the id follows no known naming.

        Same provider, family and tier (`claude-<line>-…`, `gpt-<major>…-<tier>`, `o<n>-<tier>`):
        the newest listed version not above the requested one, else the oldest above it.
        """
        wanted = model_family(name)
        if wanted is None or self.resolve(name) is not None:
            return None
        family, version = wanted
        relatives = [
            (found[1], spec)
            for spec in self.models
            if (found := model_family(spec.id)) is not None and found[0] == family
        ]
        older = [pair for pair in relatives if pair[0] <= version]
        if older:
            return max(older, key=lambda pair: (pair[0], pair[1].created_at))[1]
        newer = [pair for pair in relatives if pair[0] > version]
        return min(newer, key=lambda pair: (pair[0], pair[1].created_at))[1] if newer else None

    def infer(self, name: str) -> ModelSpec | None:
        """An unlisted id with its nearest listed relative's defaults, without lifecycle dates."""
        base = self.nearest(name)
        if base is None:
            return None
        return base.model_copy(
            update={
                "id": name,
                "aliases": (),
                "display_name": name,
                "deprecated_at": None,
                "retires_at": None,
            }
        )

    @classmethod
    def load(cls, overrides: Iterable[BaseModel] = ()) -> ModelCatalog:
        """The packaged table, with entries from config (settings.ModelOverride) replacing the
        fields they set of same-id ones, or appended."""
        text = resources.files(__package__).joinpath("models.yaml").read_text("utf-8")
        entries: dict[str, Mapping[str, Any]] = {m["id"]: m for m in yaml.safe_load(text)["models"]}
        for override in overrides:
            entry = override.model_dump(exclude_unset=True)
            entries[entry["id"]] = {**entries.get(entry["id"], {}), **entry}
        return cls(ModelSpec.model_validate(entry) for entry in entries.values())


Family = tuple[str, ...]  # provider, line or series, tier
Version = tuple[int, ...]

# claude-opus-4-8, claude-opus-5, claude-opus-4-5-20251101 (the old claude-3-7-sonnet order is
# not a pattern new models follow).
_CLAUDE = re.compile(r"^claude-(opus|sonnet|haiku|fable|mythos)-(\d+)(?:-(\d{1,2}))?(?:-\d{8})?$")
# gpt-6.2-sol, gpt-6-astra, gpt-5.4-mini-2026-03-17, gpt-5, gpt-4o-mini.
_GPT = re.compile(r"^gpt-(\d+)(?:\.(\d+))?(o)?(?:-([a-z]+))?(?:-\d{4}-\d{2}-\d{2})?$")
# o3, o4-mini, o3-2025-04-16.
_O_SERIES = re.compile(r"^o(\d+)(?:-([a-z]+))?(?:-\d{4}-\d{2}-\d{2})?$")


def model_family(name: str) -> tuple[Family, Version] | None:
    """(provider, line, tier) and the version numbers an id spells, None if it spells none."""
    if match := _CLAUDE.match(name):
        line, major, minor = match.groups()
        return ("anthropic", line, ""), (int(major), int(minor or 0))
    if match := _GPT.match(name):
        major, minor, omni, tier = match.groups()
        return ("openai", "gpt" + (omni or ""), tier or ""), (int(major), int(minor or 0))
    if match := _O_SERIES.match(name):
        series, tier = match.groups()
        return ("openai", "o", tier or ""), (int(series),)
    return None
