"""Entries that add to or replace the packaged model catalog (gateway/catalog/models.yaml).

An entry names a model by `id`; an id the catalog lists keeps every field the entry does
not set (a `latency` set is set whole), and a new id needs every field a catalog entry has.
The fields and their meaning are the catalog's (gateway/catalog ModelSpec).
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import Field

from gateway.catalog import LatencyProfile
from gateway.settings.section import Section


class ModelOverride(Section):
    id: str
    provider: Literal["anthropic", "openai"] | None = None
    aliases: tuple[str, ...] | None = None
    display_name: str | None = None
    line: str | None = None
    created_at: dt.date | None = None
    deprecated_at: dt.date | None = None
    retires_at: dt.date | None = None
    min_cacheable_tokens: int | None = Field(default=None, gt=0)
    chars_per_token: float | None = Field(default=None, gt=0)
    max_input_tokens: int | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    latency: LatencyProfile | None = None
    openai_cache: Literal["rounded", "exact"] | None = None
    extended_retention: bool | None = None
    mid_conversation_system: bool | None = None
