"""Tokens from characters at the model's fixed ratio: fast and deterministic.

The emulator bills with it exactly; the gateway uses it as its estimate (for cache
minimums and breakpoint placement, and for the most a call can cost). Not a real
tokenizer: the ratio per model lives in the catalog (`chars_per_token`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sized
from dataclasses import dataclass
from typing import Any, NamedTuple

# Media is billed by its pixels and pages, not its characters. Inline (base64) media is
# reserved at one token per this many characters: above what providers bill for images
# and PDF pages of that size, far below counting it as text.
MEDIA_CHARS_PER_TOKEN = 32
# Every media item reserves at least this, whatever its size (an image by URL or file id
# shows none; a small base64 image is billed more than its characters / 32). Above what
# providers bill for one image: Anthropic resizes to ~1.15 MP, ~1,600 tokens (pixels /
# 750; the emulator bills 1,600), ~4,800 on models taking 2,576 px edges; OpenAI's high
# detail is at most 8 tiles of 170 + 85 = 1,445 (the emulator bills 765), at most 1,536
# patches times a model's multiplier (< 2.5) on patch-billed models.
MEDIA_FLOOR_TOKENS = 5_000
_HEADER_MAX = 256  # where a data URL's comma must be: `data:<mime>[;k=v...];base64,`
# Blocks holding content blocks: a message (chat has no type), an Anthropic tool result,
# a Responses item returning a tool's output. Their other fields are text.
_CONTAINERS = frozenset({None, "message", "tool_result", "function_call_output"})
_CONTENT_FIELDS = ("content", "output")
CONVERSATION_FIELDS = ("messages", "input")  # where a body's content blocks are
# Media blocks by the field their reference or data is in: Anthropic `image`/`document`
# (`source`), chat `image_url`/`file`/`input_audio`, Responses `input_image`/`input_file`
# and a computer call's screenshot.
_IMAGE_URL = frozenset({"image_url", "input_image", "computer_screenshot"})
_FILES = frozenset({"file", "input_file"})
_MEDIA = frozenset({"image", "document", "input_audio", *_IMAGE_URL, *_FILES})


def count_tokens(text: str, chars_per_token: float) -> int:
    return math.ceil(len(text) / chars_per_token) if text else 0


def count_json_tokens(raw: bytes, chars_per_token: float) -> int:
    """`count_tokens` of JSON bytes' text, decoded only when not ASCII (a byte a character):
    most are, and decoding Claude Code's 81 KB of tools a call cost ~25 us."""
    return math.ceil((len(raw) if raw.isascii() else len(raw.decode())) / chars_per_token)


def estimate_body_tokens(body: Any, chars_per_token: float) -> int:
    """At least the input tokens a request body is billed for, a document by reference
    aside (its pages are not in the body: `BodyChars.unsized`, which the cost ceiling
    reserves at the model's whole input window): every string in it (field names
    included) counted as text, inline media and media by reference as `BodyChars` says."""
    return BodyChars.of(body).tokens(chars_per_token)


class Media(NamedTuple):
    chars: int  # base64 characters, billed as media (not text)
    tokens: int  # what the media items reserve
    unsized: bool  # a document or file by reference: pages the body does not show


@dataclass(frozen=True, slots=True)
class BodyChars:
    """A body's characters, counted once for any number of models' ratios."""

    text: int
    media: int = 0
    media_tokens: int = 0
    unsized: bool = False  # reserve the model's whole input window

    def tokens(self, chars_per_token: float) -> int:
        return math.ceil(self.text / chars_per_token) + self.media_tokens

    @classmethod
    def of(cls, body: Any) -> BodyChars:
        """Every string's characters (and 8 a number) walked, less the media's, which
        `media_of` finds as for `of_json`. Iterative: a body nested as deep as the JSON
        parser allows is walked without recursion."""
        media = media_of(body)
        return cls(_text(body) - media.chars, *media)

    @classmethod
    def of_json(cls, raw: Sized, body: Mapping[str, Any], media: Media | None = None) -> BodyChars:
        """The characters of a body from `raw`, its JSON (`body` parsed), without walking
        every value: text is the JSON's length (a character is at least a byte; quotes,
        separators and escapes only add: 2-7% above `of` on recorded agent bodies) less
        the media's (`media_of`: the content blocks only; `media` where the caller has
        it). Never below what the text is billed for."""
        media = media_of(body) if media is None else media
        return cls(len(raw) - media.chars, *media)


def media_of(body: Any) -> Media:
    """The media of a body where the wire places it, and nowhere else: the content blocks
    of `messages` (Anthropic, chat) and `input` (Responses), and the blocks of a tool
    result, a function call's output or an Anthropic document's content source. A tool's
    definition, a tool call's input and text that begins with "data:" are text. Media is
    a base64 source, a base64 data URL, or audio data: its characters at
    MEDIA_CHARS_PER_TOKEN, and every item at least MEDIA_FLOOR_TOKENS; a document or file
    by URL or file id is `unsized`. Walked without recursion, and only along content."""
    items: list[Any] = []
    if isinstance(body, Mapping):
        for name in CONVERSATION_FIELDS:
            if isinstance(found := body.get(name), list):
                items.extend(found)
    return media_in(items)


def media_in(items: list[Any]) -> Media:
    """`media_of` the conversation's items `items` (messages, blocks): a sum over them."""
    chars = tokens = 0
    unsized = False
    stack = list(items)
    while stack:
        block = stack.pop()
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind.__class__ is not str:
            kind = None  # a message (chat's have no type), or not a block
        if kind not in _MEDIA:
            if kind in _CONTAINERS:
                for name in _CONTENT_FIELDS:
                    inner = block.get(name)
                    if isinstance(inner, list):
                        stack.extend(inner)
                    elif isinstance(inner, dict):
                        stack.append(inner)
            continue  # text, a tool call, anything else: in the JSON's length
        size: int | None = 0  # base64 characters; None: a document by reference
        if kind == "image" or kind == "document":
            source = block.get("source")
            source = source if isinstance(source, dict) else {}
            origin = source.get("type")
            if origin == "base64":
                data = source.get("data")
                size = len(data) if isinstance(data, str) else 0
            elif origin == "text":  # a plain-text document: its text, in the JSON
                continue
            elif origin == "content":  # a document of content blocks
                if isinstance(inner := source.get("content"), list):
                    stack.extend(inner)
                continue
            elif kind == "document":  # by URL or file id: pages unseen
                size = None
        elif kind in _IMAGE_URL:
            url = block.get("image_url")
            size = _base64_url(url.get("url") if isinstance(url, dict) else url)
        elif kind in _FILES:
            file = block.get("file") if kind == "file" else block
            file = file if isinstance(file, dict) else {}
            data = file.get("file_data")
            size = _base64_url(data) if data is not None else None
        else:  # input_audio
            audio = block.get("input_audio")
            data = audio.get("data") if isinstance(audio, dict) else None
            size = len(data) if isinstance(data, str) else 0
        if size is None:
            unsized = True
        else:
            chars += size
        tokens += max(MEDIA_FLOOR_TOKENS, math.ceil((size or 0) / MEDIA_CHARS_PER_TOKEN))
    return Media(chars, tokens, unsized)


def _base64_url(value: Any) -> int:
    """The length of a base64 data URL (`data:<type>/<subtype>[;...];base64,<data>`), 0 for
    anything else (a URL, a file id, a data URL that is not base64: text in the JSON)."""
    if isinstance(value, str) and value.startswith("data:"):
        comma = value.find(",", 5, _HEADER_MAX)
        if comma > 0 and value.endswith(";base64", 5, comma) and "/" in value[5:comma]:
            return len(value)
    return 0


def _text(body: Any) -> int:
    text = 0
    stack: list[Any] = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            text += len(value)
        elif isinstance(value, dict):
            for name, item in value.items():
                text += len(name) if isinstance(name, str) else 0
                stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
        elif value is not None:
            text += 8  # a number or a boolean
    return text
