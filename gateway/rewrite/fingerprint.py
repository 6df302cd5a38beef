"""A request's prompt, reduced to what decides its cache hits: one digest per layer.

The prefix registry compares a request with the previous one of its conversation layer
by layer, to say why the cache missed. Digests are of the bytes as sent (after the
rewrites), because the provider's cache key is the bytes: each block serialized and
digested (digest.py's `content`: xxh3, ~0.03 us a KB), the digests chained. One full pass
costs less than looking each block up in the memo did (a walk of each block into a key,
and the key's hash: ~280 -> ~90 us on a 340 KB Claude Code turn), and keeps nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from gateway.rewrite import digest


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
    return digest.owned(tenant, digest.content(tools) + digest.content(system))


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


def family_of(
    body: dict[str, Any],
    stable_system_blocks: int | None,
    tenant: bytes,
    tools: bytes | None = None,
) -> bytes:
    """The family, as the fingerprint has it."""
    return prompt_family(tenant, *_parts(body, stable_system_blocks, tools))


def conversation_of(body: dict[str, Any], tenant: bytes) -> bytes:
    """Who calls and the conversation's first block: the same every turn of it."""
    for message in body.get("messages") or ():
        for block in _blocks(message):
            return _conversation(tenant, digest.content(orjson.dumps(_without_mark(block))))
    return _conversation(tenant, b"")


def _conversation(tenant: bytes, first: bytes) -> bytes:
    return digest.owned(tenant, first)


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
) -> Fingerprint:
    """`tools`: the tools' bytes without their breakpoints, where a stage has them already."""
    tools, stable = _parts(body, stable_system_blocks, tools)
    content = digest.content
    tools_digest, stable_digest = content(tools), content(stable)
    family = digest.owned(tenant, tools_digest + stable_digest)
    size = len(tools) + len(stable)
    chain = family
    first: bytes | None = None
    messages: list[bytes] = []
    marks = [family]
    for message in body.get("messages") or ():
        role = str(message.get("role")) if isinstance(message, dict) else ""
        chain = content(chain + role.encode())
        for block in _blocks(message):
            # Without its breakpoint: the newest block carries one this turn and not the next.
            marked = isinstance(block, dict) and "cache_control" in block
            raw = orjson.dumps(_without_mark(block) if marked else block)
            own = content(raw)
            chain = content(chain + own)
            if marked:
                marks.append(chain)
            if first is None:
                first = own
            size += len(raw)
        messages.append(chain)
    return Fingerprint(
        family=family,
        conversation=_conversation(tenant, first or b""),
        model=str(body.get("model")),
        tools=tools_digest,
        system=stable_digest,
        messages=tuple(messages),
        shared=marks[-2] if len(marks) > 1 else marks[-1],
        prompt_tokens=int(size / chars_per_token),
        tenant=tenant,
    )
