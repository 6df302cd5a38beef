"""A request's prompt, reduced to what decides its cache hits: one digest per layer.

The prefix registry compares a request with the previous one of its conversation layer
by layer, to say why the cache missed. Digests are of the bytes as sent (after the
rewrites), because the provider's cache key is the bytes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, cast

import orjson

from gateway.rewrite.memo import MIN_CHARS, CallMemo, frozen


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=12).digest()


@dataclass(frozen=True, slots=True)
class Fingerprint:
    family: bytes  # prompt_family: tenant, tools and the stable system blocks
    # The conversation's first message: it survives a change of model, tools or system, so
    # the next turn is still compared with this one and the changed layer can be named.
    conversation: bytes
    model: str
    tools: bytes
    system: bytes  # the stable system blocks only
    messages: tuple[bytes, ...]  # cumulative: messages[i] covers messages 0..i
    # The prefix through the breakpoint before the last one: what parallel calls that
    # differ only in their newest block (a fan-out's question) have in common.
    shared: bytes
    prompt_tokens: int  # estimated, for the minimum-length check
    tenant: bytes = b""  # who called (a credential's digest): whose learned state it is


def prompt_family(tenant: bytes, tools: bytes, system: bytes) -> bytes:
    """A prompt family: who calls (a provider's cache is per workspace, and one tenant's
    requests never teach the gateway about another's), the tools as sent without their
    breakpoints (`unmarked`), and the stable start of the system prompt — what requests
    share before their conversations part. The prefix registry and the prompt_cache_key
    know the stable system blocks; the volatile rule, before it has judged the lines,
    knows the first line holding no date."""
    return _digest(tenant + b"\0" + tools + b"\0" + system)


def unmarked(blocks: Any) -> bytes:
    """Blocks as bytes without their breakpoints: moving one does not change the prefix."""
    if not isinstance(blocks, list):
        return orjson.dumps(blocks)
    return orjson.dumps(
        [
            {k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) else b
            for b in blocks
        ]
    )


def _parts(
    body: dict[str, Any], stable_system_blocks: int | None, tools: bytes | None
) -> tuple[bytes, bytes]:
    """(tools, stable system blocks) as bytes without their breakpoints: the same before and
    after breakpoints are placed. `tools`: the tools' bytes where a stage has them already."""
    tools = unmarked(body.get("tools") or []) if tools is None else tools
    system = body.get("system") or []
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system
    stable = unmarked(blocks[:stable_system_blocks] if stable_system_blocks is not None else blocks)
    return tools, stable


Layers = tuple[bytes, bytes, bytes, int]  # digests of the tools, the stable system, the family


def _layers(tenant: bytes, tools: bytes, stable: bytes, memo: CallMemo | None) -> Layers:
    """The digests of the tools, the stable system blocks and the family, and the bytes of
    the two: looked up where an earlier call had the same (Claude Code's 81 KB of tools were
    hashed three times a call, ~180 us)."""
    key = ("layers", tools, stable)
    found = None if memo is None else memo.get(key)
    if found is None:
        family = prompt_family(tenant, tools, stable)
        found = (_digest(tools), _digest(stable), family, len(tools) + len(stable))
        if memo is not None and len(tools) + len(stable) >= MIN_CHARS:
            # Copies of their exact size: orjson's output keeps the buffer it grew.
            exact = ("layers", bytes(memoryview(tools)), bytes(memoryview(stable)))
            memo.keep(exact, found, len(tools) + len(stable))
    return cast(Layers, found)


def family_of(
    body: dict[str, Any],
    stable_system_blocks: int | None,
    tenant: bytes,
    tools: bytes | None = None,
    memo: CallMemo | None = None,
) -> bytes:
    """The family, looked up as the fingerprint keeps it, else only it digested."""
    tools, stable = _parts(body, stable_system_blocks, tools)
    found = None if memo is None else memo.get(("layers", tools, stable))
    return cast(Layers, found)[2] if found is not None else prompt_family(tenant, tools, stable)


def conversation_of(body: dict[str, Any], tenant: bytes, memo: CallMemo | None = None) -> bytes:
    """Who calls and the conversation's first block: the same every turn of it."""
    for message in body.get("messages") or ():
        for block in _blocks(message):
            return _remembered("conversation", tenant + b"\0", _without_mark(block), memo)[0]
    return _digest(tenant + b"\0")


def _remembered(kind: str, before: bytes, block: Any, memo: CallMemo | None) -> tuple[bytes, int]:
    """(the digest of `before` and the block's bytes, their length): looked up for a long
    block an earlier call sent too (blake2b takes ~0.7 us a KB: 238 us over 340 KB)."""
    key = frozen(block) if memo is not None else None
    if key is None or key[1] < MIN_CHARS or memo is None:
        raw = orjson.dumps(block)
        return _digest(before + raw), len(raw)
    lookup = (kind, before, key[0])
    found = memo.get(lookup)
    if found is None:
        raw = orjson.dumps(block)
        found = _digest(before + raw), len(raw)
        memo.keep(lookup, found, key[1] + len(before))
    return cast(tuple[bytes, int], found)


def _blocks(message: Any) -> list[Any]:
    content = message.get("content") if isinstance(message, dict) else None
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    return blocks if isinstance(blocks, list) else [message]


def _without_mark(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


def fingerprint(
    body: dict[str, Any],
    stable_system_blocks: int | None,
    chars_per_token: float,
    tenant: bytes = b"",
    tools: bytes | None = None,
    memo: CallMemo | None = None,
) -> Fingerprint:
    """`memo`: where each long block's digest after the chain before it is looked up."""
    tools, stable = _parts(body, stable_system_blocks, tools)
    tools_digest, stable_digest, family, size = _layers(tenant, tools, stable, memo)
    chain = family
    messages: list[bytes] = []
    marks = [family]
    for message in body.get("messages") or ():
        role = str(message.get("role")) if isinstance(message, dict) else ""
        chain = _digest(chain + role.encode())
        for block in _blocks(message):
            # Without its breakpoint: the newest block carries one this turn and not the next.
            marked = isinstance(block, dict) and "cache_control" in block
            chain, length = _remembered("block", chain, _without_mark(block), memo)
            size += length
            if marked:
                marks.append(chain)
        messages.append(chain)
    return Fingerprint(
        family=family,
        conversation=conversation_of(body, tenant, memo),
        model=str(body.get("model")),
        tools=tools_digest,
        system=stable_digest,
        messages=tuple(messages),
        shared=marks[-2] if len(marks) > 1 else marks[-1],
        prompt_tokens=int(size / chars_per_token),
        tenant=tenant,
    )
