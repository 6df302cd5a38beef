"""A Chat Completions or Responses request flattened into the hashed blocks the cache keys on.

One block per content part (a string content is one part), in prompt order: tools, then
instructions (Responses), then the messages or input items. Each block's digest covers the
model, the settings whose change invalidates the cache (docs/wire.md: tools, images, text format,
reasoning effort, verbosity) and every block before it. A part marked
`prompt_cache_breakpoint: {"mode": "explicit"}` is a breakpoint (GPT-5.6 and later).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any

import orjson

from gateway.catalog import ModelSpec
from gateway.catalog.tokens import count_tokens

MEDIA_TOKENS = 765  # a high-detail 512×512 tile set; the exact count depends on the image
MESSAGE_OVERHEAD_TOKENS = 3
REQUEST_OVERHEAD_TOKENS = 3
_TEXT_PARTS = frozenset({"text", "input_text", "output_text", "refusal"})
_MEDIA_PARTS = frozenset({"image_url", "input_image", "input_audio", "input_file", "file"})


@dataclass(frozen=True, slots=True)
class Block:
    tokens: int
    digest: bytes  # cumulative: model, settings, everything before, and this block
    breakpoint: bool  # marked prompt_cache_breakpoint explicit


@dataclass(frozen=True, slots=True)
class Prompt:
    model: str
    blocks: tuple[Block, ...]
    overhead_tokens: int

    @property
    def total_tokens(self) -> int:
        return sum(block.tokens for block in self.blocks) + self.overhead_tokens


def _link(chain: bytes, data: bytes) -> bytes:
    h = blake2b(chain, digest_size=16)
    h.update(data)
    return h.digest()


def _marked(part: Mapping[str, Any]) -> bool:
    marker = part.get("prompt_cache_breakpoint")
    return isinstance(marker, Mapping) and marker.get("mode") == "explicit"


def _part_text(part: Mapping[str, Any]) -> str | None:
    kind = part.get("type")
    if kind in _TEXT_PARTS:
        return str(part.get("text") or part.get("refusal") or "")
    if kind in _MEDIA_PARTS:
        return None
    return orjson.dumps(part).decode()


class _Builder:
    def __init__(self, spec: ModelSpec, settings: bytes) -> None:
        self.cpt = spec.chars_per_token
        self.chain = _link(_link(b"model", spec.id.encode()), settings)
        self.blocks: list[Block] = []

    def add(self, data: bytes, tokens: int, breakpoint: bool = False) -> None:
        self.chain = _link(self.chain, data)
        self.blocks.append(Block(tokens, self.chain, breakpoint))

    def message(self, role: str, content: Any) -> None:
        """A message's parts, its role and framing counted with the first."""
        parts: Sequence[Any] = (
            [{"type": "text", "text": content}] if isinstance(content, str) else content or [{}]
        )
        for index, part in enumerate(parts):
            part = part if isinstance(part, Mapping) else {"type": "text", "text": str(part)}
            text = _part_text(part)
            tokens = MEDIA_TOKENS if text is None else count_tokens(text, self.cpt)
            head = role.encode() + b"\n" if index == 0 else b""
            clean = {k: v for k, v in part.items() if k != "prompt_cache_breakpoint"}
            overhead = MESSAGE_OVERHEAD_TOKENS if index == 0 else 0
            self.add(head + orjson.dumps(clean), tokens + overhead, _marked(part))

    def text(self, role: str, text: str) -> None:
        self.message(role, [{"type": "text", "text": text}])

    def prompt(self, model: str) -> Prompt:
        return Prompt(model, tuple(self.blocks), REQUEST_OVERHEAD_TOKENS)


def _tool_text(tool: Mapping[str, Any]) -> str:
    function = tool.get("function") if isinstance(tool.get("function"), Mapping) else tool
    return orjson.dumps(function, option=orjson.OPT_SORT_KEYS).decode()


def _has_image(items: Sequence[Any]) -> bool:
    for item in items:
        content = item.get("content") if isinstance(item, Mapping) else None
        if isinstance(content, list) and any(
            isinstance(p, Mapping) and p.get("type") in ("image_url", "input_image")
            for p in content
        ):
            return True
    return False


def build_chat_prompt(body: Mapping[str, Any], spec: ModelSpec) -> Prompt:
    messages: Sequence[Mapping[str, Any]] = body.get("messages") or []
    settings = orjson.dumps(
        [
            body.get("response_format"),
            body.get("reasoning_effort"),
            body.get("verbosity"),
            _has_image(messages),
        ]
    )
    builder = _Builder(spec, settings)
    for tool in body.get("tools") or ():
        text = _tool_text(tool)
        builder.add(text.encode(), count_tokens(text, builder.cpt))
    for message in messages:
        role = str(message.get("role"))
        content = message.get("content")
        calls = message.get("tool_calls")
        if content is not None or not calls:
            builder.message(role, content)
        for call in calls or ():
            text = orjson.dumps(call.get("function")).decode()
            builder.add(orjson.dumps(call), count_tokens(text, builder.cpt))
    return builder.prompt(spec.id)


def build_responses_prompt(body: Mapping[str, Any], spec: ModelSpec) -> Prompt:
    raw_input = body.get("input")
    items: Sequence[Any] = (
        [{"role": "user", "content": raw_input}] if isinstance(raw_input, str) else raw_input or []
    )
    text = body.get("text")
    text = text if isinstance(text, Mapping) else {}
    reasoning = body.get("reasoning")
    reasoning = reasoning if isinstance(reasoning, Mapping) else {}
    settings = orjson.dumps(
        [text.get("format"), text.get("verbosity"), reasoning.get("effort"), _has_image(items)]
    )
    builder = _Builder(spec, settings)
    for tool in body.get("tools") or ():
        tool_text = _tool_text(tool)
        builder.add(tool_text.encode(), count_tokens(tool_text, builder.cpt))
    if isinstance(instructions := body.get("instructions"), str) and instructions:
        builder.text("developer", instructions)
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            builder.message(str(item.get("role")), item.get("content"))
        elif kind == "function_call":
            call_text = str(item.get("name", "")) + str(item.get("arguments", ""))
            builder.add(orjson.dumps(item), count_tokens(call_text, builder.cpt))
        elif kind == "function_call_output":
            output = item.get("output")
            output_text = output if isinstance(output, str) else orjson.dumps(output).decode()
            builder.text("tool", output_text)
        else:
            builder.add(orjson.dumps(item), count_tokens(orjson.dumps(item).decode(), builder.cpt))
    return builder.prompt(spec.id)
