"""A Messages request flattened into the ordered, hashed blocks the prompt cache keys on.

Prefix order is tools → system → messages (docs/wire.md); cache_control placement is checked here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from hashlib import blake2b
from typing import Any, Literal, NamedTuple

import orjson

from gateway.catalog import ModelSpec
from gateway.catalog.tokens import count_tokens
from gateway.emulator.errors import invalid_request

Ttl = Literal["5m", "1h"]
Section = Literal["tools", "system", "messages"]

MAX_BREAKPOINTS = 4
MEDIA_TOKENS = 1_600
MESSAGE_OVERHEAD_TOKENS = 3
REQUEST_OVERHEAD_TOKENS = 3
_THINKING = frozenset({"thinking", "redacted_thinking"})
_TEXT_FIELD = {"text": "text", "thinking": "thinking", "redacted_thinking": "data"}
_TTL_ORDER = (
    "a ttl='1h' cache_control block must not come after a ttl='5m' cache_control block. "
    "Note that blocks are processed in the following order: `tools`, `system`, `messages`."
)


@dataclass(frozen=True, slots=True)
class PromptBlock:
    section: Section
    tokens: int
    digest: bytes  # cumulative: model, everything before, and this block
    ttl: Ttl | None  # the block's breakpoint, None when it carries none


@dataclass(frozen=True, slots=True)
class Prompt:
    model: str
    blocks: tuple[PromptBlock, ...]
    overhead_tokens: int
    tools_digest: bytes
    system_digest: bytes
    messages_digests: tuple[bytes, ...]  # chain value after each message
    speed: str
    settings_digest: bytes  # tool_choice, images, thinking: what misses messages only
    tools_tokens: int  # cumulative block tokens at the end of each section / message
    system_tokens: int
    messages_tokens: tuple[int, ...]

    @property
    def total_tokens(self) -> int:
        return sum(block.tokens for block in self.blocks) + self.overhead_tokens


class _Raw(NamedTuple):
    data: bytes
    tokens: int
    ttl: Ttl | None
    path: str
    markable: bool  # may carry cache_control (automatic caching skips the others)


def _link(chain: bytes, data: bytes) -> bytes:
    h = blake2b(chain, digest_size=16)
    h.update(data)
    return h.digest()


def _ttl(cache_control: Any, path: str) -> Ttl | None:
    if cache_control is None:
        return None
    if not isinstance(cache_control, Mapping) or cache_control.get("type") != "ephemeral":
        raise invalid_request(f"{path}.cache_control.type: Input should be 'ephemeral'")
    ttl = cache_control.get("ttl", "5m")
    if ttl not in ("5m", "1h"):
        raise invalid_request(f"{path}.cache_control.ttl: Input should be '5m' or '1h'")
    return "1h" if ttl == "1h" else "5m"


def _dumps(block: Mapping[str, Any]) -> bytes:
    # Dropping the marker keeps content hashes stable when a breakpoint moves.
    if "cache_control" in block:
        block = {k: v for k, v in block.items() if k != "cache_control"}
    return orjson.dumps(block)


def _visible(block: Mapping[str, Any], cpt: float) -> int:
    """Tokens of what the model sees in a content block (the JSON framing is not counted)."""
    kind = block.get("type")
    if kind in _TEXT_FIELD:
        return count_tokens(str(block.get(_TEXT_FIELD[kind], "")), cpt)
    if kind in ("tool_use", "server_tool_use"):
        text = str(block.get("name", "")) + orjson.dumps(block.get("input")).decode()
        return count_tokens(text, cpt)
    if kind == "tool_result":
        inner = block.get("content", "")
        if isinstance(inner, str):
            return count_tokens(inner, cpt)
        return sum(_visible(b, cpt) for b in inner if isinstance(b, Mapping))
    if kind in ("image", "document"):
        source = block.get("source")
        source = source if isinstance(source, Mapping) else {}
        if source.get("type") == "text":
            return count_tokens(str(source.get("data", "")), cpt)
        if source.get("type") == "content":
            return _visible({"type": "tool_result", "content": source.get("content", "")}, cpt)
        return MEDIA_TOKENS
    return count_tokens(_dumps(block).decode(), cpt)


def _tool_raw(tool: Mapping[str, Any], path: str, cpt: float) -> _Raw:
    if tool.get("type", "custom") == "custom":
        schema = orjson.dumps(tool.get("input_schema")).decode()
        text = f"{tool.get('name', '')}{tool.get('description', '')}{schema}"
    else:
        text = _dumps(tool).decode()
    ttl = _ttl(tool.get("cache_control"), path)
    return _Raw(_dumps(tool), count_tokens(text, cpt), ttl, path, markable=True)


def _content_raw(block: Mapping[str, Any], path: str, cpt: float) -> _Raw:
    kind = block.get("type")
    ttl = _ttl(block.get("cache_control"), path)
    empty = kind == "text" and not block.get("text")
    if ttl is not None and kind in _THINKING:
        raise invalid_request(f"{path}.{kind}.cache_control: Extra inputs are not permitted")
    if ttl is not None and empty:
        raise invalid_request(f"{path}.text: cache_control cannot be set for empty text blocks")
    return _Raw(_dumps(block), _visible(block, cpt), ttl, path, kind not in _THINKING and not empty)


def _as_blocks(content: Any) -> Sequence[Mapping[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _message_raws(messages: Sequence[Mapping[str, Any]], spec: ModelSpec) -> list[list[_Raw]]:
    # Opus 4.5+ and Sonnet 4.6+ keep earlier thinking blocks; older models and
    # every Haiku drop them once a user turn that is not only tool results arrives.
    cut = -1
    if spec.line == "haiku" or spec.created_at < dt.date(2025, 11, 1):
        cut = max((i for i, m in enumerate(messages) if _plain_user_turn(m)), default=-1)
    cpt = spec.chars_per_token
    out = []
    for m, message in enumerate(messages):
        role, content = str(message.get("role")), message.get("content", "")
        path = f"messages.{m}.content"
        raws = [
            _content_raw(block, path if isinstance(content, str) else f"{path}.{j}", cpt)
            for j, block in enumerate(_as_blocks(content))
            if not (m < cut and role == "assistant" and block.get("type") in _THINKING)
        ]
        if raws:
            first = raws[0]
            data, tokens = (
                role.encode() + b"\n" + first.data,
                first.tokens + MESSAGE_OVERHEAD_TOKENS,
            )
            raws[0] = first._replace(data=data, tokens=tokens)
        out.append(raws)
    return out


def _plain_user_turn(message: Mapping[str, Any]) -> bool:
    blocks = _as_blocks(message.get("content", ""))
    return message.get("role") == "user" and any(b.get("type") != "tool_result" for b in blocks)


def _flags(messages: Sequence[Mapping[str, Any]]) -> tuple[bool, bool]:
    """Whether any image appears, and whether any document has citations enabled."""
    image = citations = False
    for message in messages:
        for block in _as_blocks(message.get("content", "")):
            inner = block.get("content") if block.get("type") == "tool_result" else None
            for b in [block, *(inner if isinstance(inner, list) else ())]:
                image = image or b.get("type") == "image"
                cited = b.get("citations") if b.get("type") == "document" else None
                citations = citations or (isinstance(cited, Mapping) and bool(cited.get("enabled")))
    return image, citations


def _place_breakpoints(raws: list[_Raw], auto: Any) -> list[_Raw]:
    """Explicit breakpoints plus the automatic (top-level) one, checked for count and order."""
    explicit = sum(raw.ttl is not None for raw in raws)
    if explicit > MAX_BREAKPOINTS:
        raise invalid_request(
            f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided. "
            f"Found {explicit}."
        )
    auto_ttl = _ttl(auto, "cache_control")
    target = next((i for i in range(len(raws) - 1, -1, -1) if raws[i].markable), None)
    if auto_ttl is not None and target is not None:
        current = raws[target].ttl
        if current is None and explicit == MAX_BREAKPOINTS:
            raise invalid_request(
                f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control may be provided; "
                f"found {explicit} explicit cache_control blocks and no slots left for "
                "automatic caching."
            )
        if current is not None and current != auto_ttl:
            raise invalid_request(
                f"cache_control.ttl: automatic caching ttl='{auto_ttl}' conflicts with "
                f"ttl='{current}' on {raws[target].path}."
            )
        raws[target] = raws[target]._replace(ttl=auto_ttl)
    seen_5m = False
    for raw in raws:
        if raw.ttl == "1h" and seen_5m:
            raise invalid_request(f"{raw.path}.cache_control.ttl: {_TTL_ORDER}")
        seen_5m = seen_5m or raw.ttl == "5m"
    return raws


def build_prompt(body: Mapping[str, Any], spec: ModelSpec) -> Prompt:
    cpt = spec.chars_per_token
    tools: Sequence[Mapping[str, Any]] = body.get("tools") or []
    system = body.get("system") or []
    messages: Sequence[Mapping[str, Any]] = body.get("messages") or []
    raws = [_tool_raw(tool, f"tools.{i}", cpt) for i, tool in enumerate(tools)]
    raws += (
        _content_raw(block, "system" if isinstance(system, str) else f"system.{i}", cpt)
        for i, block in enumerate(_as_blocks(system))
    )
    n_system = len(raws) - len(tools)
    per_message = _message_raws(messages, spec)
    raws = _place_breakpoints(
        [*raws, *(r for rs in per_message for r in rs)], body.get("cache_control")
    )

    out: list[PromptBlock] = []
    chain = _link(b"model", spec.id.encode())
    web_search: list[bytes] = []
    for tool, raw in zip(tools, raws, strict=False):
        digest = _link(chain, raw.data)
        out.append(PromptBlock("tools", raw.tokens, digest, raw.ttl))
        if str(tool.get("type", "")).startswith("web_search"):
            # DOC: toggling web search rewrites the system prompt, not the tool list.
            web_search.append(raw.data)
        else:
            chain = digest
    tools_digest, tools_tokens = chain, sum(b.tokens for b in out)
    has_image, has_citations = _flags(messages)
    speed = str(body.get("speed") or "standard")
    # Speed, web search and citations keep the tools cache but miss from system on.
    chain = _link(chain, b"\0".join([speed.encode(), b"%d" % has_citations, *web_search]))
    chain = _extend(out, "system", raws[len(tools) : len(tools) + n_system], chain)
    system_digest, system_tokens = chain, sum(b.tokens for b in out)
    # tool_choice, images and thinking keep tools and system but miss messages.
    settings = orjson.dumps([body.get("tool_choice"), has_image, body.get("thinking")])
    chain = _link(chain, settings)
    digests, totals, running = [], [], system_tokens
    for message in per_message:
        chain = _extend(out, "messages", raws[len(out) : len(out) + len(message)], chain)
        running += sum(raw.tokens for raw in message)
        digests.append(chain)
        totals.append(running)
    return Prompt(
        model=spec.id,
        blocks=tuple(out),
        overhead_tokens=REQUEST_OVERHEAD_TOKENS,
        tools_digest=tools_digest,
        system_digest=system_digest,
        messages_digests=tuple(digests),
        speed=speed,
        settings_digest=_link(b"settings", settings),
        tools_tokens=tools_tokens,
        system_tokens=system_tokens,
        messages_tokens=tuple(totals),
    )


def _extend(out: list[PromptBlock], section: Section, raws: Sequence[_Raw], chain: bytes) -> bytes:
    for raw in raws:
        chain = _link(chain, raw.data)
        out.append(PromptBlock(section, raw.tokens, chain, raw.ttl))
    return chain
