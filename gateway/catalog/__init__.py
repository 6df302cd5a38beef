"""The model catalog: ids, aliases, lifecycle dates, cache minimums, tokenizer and latency.

The table itself is data (`models.yaml` beside this file, extended from gateway.yaml);
this module only loads it and answers look-ups by id or alias.
"""

from __future__ import annotations

import datetime as dt
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
    # OpenAI's caching generation (WIRE D.4), None for Anthropic models: `exact` (GPT-5.6 and
    # later) reports exact boundaries and bills writes; `rounded` rounds reads down to 128.
    openai_cache: Literal["rounded", "exact"] | None = None
    # Accepts prompt_cache_retention "24h" (WIRE D.4 lists the models).
    extended_retention: bool = False

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

    @classmethod
    def load(cls, overrides: Iterable[Mapping[str, Any]] = ()) -> ModelCatalog:
        """The packaged table, with entries from config replacing same-id ones or appended."""
        text = resources.files(__package__).joinpath("models.yaml").read_text("utf-8")
        entries: dict[str, Mapping[str, Any]] = {m["id"]: m for m in yaml.safe_load(text)["models"]}
        for entry in overrides:
            entries[entry["id"]] = {**entries.get(entry["id"], {}), **entry}
        return cls(ModelSpec.model_validate(entry) for entry in entries.values())
