"""Tokens from characters at the model's fixed ratio: fast and deterministic.

The emulator bills with it exactly; the gateway uses it as its estimate (for cache
minimums and breakpoint placement, and for the most a call can cost). Not a real
tokenizer: the ratio per model lives in the catalog (`chars_per_token`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# Inline media (base64 images and documents) is billed by its pixels and pages, not its
# characters: one token per this many base64 characters is above what providers bill
# for images and PDF pages, far below counting it as text.
MEDIA_CHARS_PER_TOKEN = 32


def count_tokens(text: str, chars_per_token: float) -> int:
    return math.ceil(len(text) / chars_per_token) if text else 0


def count_json_tokens(raw: bytes, chars_per_token: float) -> int:
    """`count_tokens` of JSON bytes' text, decoded only when not ASCII (a byte a character):
    most are, and decoding Claude Code's 81 KB of tools a call cost ~25 us."""
    return math.ceil((len(raw) if raw.isascii() else len(raw.decode())) / chars_per_token)


def estimate_body_tokens(body: Any, chars_per_token: float) -> int:
    """At least the input tokens a request body is billed for: every string in it (field
    names included) counted as text, inline media at MEDIA_CHARS_PER_TOKEN."""
    return BodyChars.of(body).tokens(chars_per_token)


@dataclass(frozen=True, slots=True)
class BodyChars:
    """A body's characters, counted once for any number of models' ratios."""

    text: int
    media: int

    def tokens(self, chars_per_token: float) -> int:
        return math.ceil(self.text / chars_per_token) + math.ceil(
            self.media / MEDIA_CHARS_PER_TOKEN
        )

    @classmethod
    def of(cls, body: Any) -> BodyChars:
        """Media is known by its shape, not its content (text that looks like base64 is
        still text): a data URL (OpenAI's images and files), or the `data` of a
        `{"type": "base64"}` source (Anthropic's). Iterative: a body nested as deep as the
        JSON parser allows is walked without recursion."""
        return cls(*_walk(body))

    @classmethod
    def of_json(cls, raw: bytes, body: Mapping[str, Any]) -> BodyChars:
        """The characters of a body from `raw`, its JSON (`body` parsed), without walking
        every value: text is the JSON's length (a character is at least a byte; quotes,
        separators and escapes only add: 2-7% above `of` on recorded agent bodies) less
        the media's. Media is looked for as `of` does but outside `tools` (a provider
        reads a tool's definition as text, whatever it holds), so the walk sees the
        conversation only: ~40 us instead of ~240 at a 340 KB Claude Code turn, whose 24
        tools hold most of its values. Never below what the text is billed for."""
        media = _walk_media([value for name, value in body.items() if name != "tools"])
        return cls(len(raw) - media, media)


def _walk_media(values: list[Any]) -> int:
    """The media characters of `_walk`, alone."""
    media = 0
    stack = values
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if value.startswith("data:"):
                media += len(value)
        elif isinstance(value, dict):
            if value.get("type") == "base64" and isinstance(data := value.get("data"), str):
                media += len(data)
                stack.extend(item for name, item in value.items() if name != "data")
            else:
                stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return media


def _walk(body: Any) -> tuple[int, int]:
    text = media = 0
    stack: list[Any] = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            if value.startswith("data:"):
                media += len(value)
            else:
                text += len(value)
        elif isinstance(value, dict):
            base64_source = value.get("type") == "base64"
            for name, item in value.items():
                text += len(name) if isinstance(name, str) else 0
                if base64_source and name == "data" and isinstance(item, str):
                    media += len(item)
                else:
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
        elif value is not None:
            text += 8  # a number or a boolean
    return text, media
