"""A prompt's family: who calls, its tools and the stable start of its system prompt, the
part of a prompt that requests share before their conversations part (fingerprint.py's
first layers, the breakpoint plan's TTLs, the prompt_cache_key)."""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from gateway.rewrite import digest
from gateway.rewrite.memo import MIN_CHARS

if TYPE_CHECKING:
    from gateway.rewrite.memo import CallMemo

# memo.py's kind: what a system prompt was found to be (by its identity).
SYSTEM = "fingerprint.system"


# The tenant's digests of a family and of a conversation (fingerprint.py), kept for the
# calls that repeat them (every turn of a conversation, every call of a family): a keyed
# blake2b's ~0.6 us against a lookup's ~0.1. Keys of a credential's 8-byte digest and
# digests of 16 or 32 bytes: a few hundred bytes an entry, least recently used out.
owned_kept = functools.lru_cache(maxsize=1024)(digest.owned)


def prompt_family(tenant: bytes, tools: bytes, system: bytes) -> bytes:
    """A prompt family: who calls (a provider's cache is per workspace, and one tenant's
    requests never teach the gateway about another's), the tools as sent without their
    breakpoints (`unmarked`), and the stable start of the system prompt — what requests
    share before their conversations part. The prefix registry and the prompt_cache_key
    know the stable system blocks; the volatile rule, before it has judged the lines,
    knows the first line holding no date."""
    return owned_kept(tenant, digest.content(tools) + digest.content(system))


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


def prefix(
    body: dict[str, Any],
    stable_system_blocks: int | None,
    tools: bytes | None,
    memo: CallMemo | None,
    texts: tuple[object, ...] | None = None,
) -> tuple[bytes, bytes, int]:
    """(tools digest, stable system blocks digest, their bytes' length), without their
    breakpoints: the same before and after breakpoints are placed. `tools`: the tools' bytes
    where a stage has them already. A system prompt this call shares with an earlier one
    (the same list or string: memo.py's `get_same`) is found by identity, not serialized,
    and with it the digest of the tools' bytes it came with where they are the same object
    again (tool_json hands on the same bytes for the same tools). `texts`: the system list
    is made anew each call, of text blocks alone (`{"type": "text", "text": t}`, as
    openai_text.layers makes them), and these are its texts: it is found by them instead
    (Codex's 20 KB of instructions, the same string each turn), its bytes a function of
    them."""
    given = tools
    tools = unmarked(body.get("tools") or []) if given is None else given
    system = body.get("system") or []
    key: _Key | None = None
    if memo is not None and texts is not None:
        key = (TEXTS, texts[0], texts) if texts else None
    elif memo is not None and _long(system):
        key = (SYSTEM, system, None)
    if memo is not None and key is not None:
        held = _held(memo, key)
        if held is not None and held.stable_blocks == stable_system_blocks:
            if given is not None and held.tools is given:
                return held.tools_digest, held.digest, len(tools) + held.size
            tools_digest = digest.content(tools)
            if given is not None and len(given) >= MIN_CHARS:  # held with these from now on
                _keep(memo, key, held._replace(tools=given, tools_digest=tools_digest))
            return tools_digest, held.digest, len(tools) + held.size
    tools_digest = digest.content(tools)
    blocks = [{"type": "text", "text": system}] if isinstance(system, str) else system
    stable = unmarked(blocks[:stable_system_blocks] if stable_system_blocks is not None else blocks)
    stable_digest = digest.content(stable)
    if memo is not None and key is not None and len(stable) >= MIN_CHARS:
        held = _System(stable_system_blocks, stable_digest, len(stable), given, tools_digest)
        _keep(memo, key, held)
    return tools_digest, stable_digest, len(tools) + len(stable)


# The memo's kind for a system prompt made anew each call, by its texts (`prefix`'s `texts`).
TEXTS = "fingerprint.system_texts"
# (the memo's kind, the object kept by identity, the texts the value must have come with)
_Key = tuple[str, object, tuple[object, ...] | None]


def _held(memo: CallMemo, key: _Key) -> _System | None:
    kind, part, texts = key
    found: Any = memo.get_same(kind, part)
    if texts is None:
        system: _System | None = found
        return system
    if found is None:
        return None
    held_texts: tuple[object, ...]
    held: _System
    held_texts, held = found
    same = len(held_texts) == len(texts) and all(map(operator.is_, held_texts, texts))
    return held if same else None


class _System(NamedTuple):
    """What `prefix` derived from a system prompt (by its identity), and the digest of the
    tools' bytes it came with (held, and counted in the entry's size, where a stage handed
    them: bytes made here are new each call)."""

    stable_blocks: int | None
    digest: bytes  # of the stable blocks, unmarked
    size: int  # their bytes
    tools: bytes | None  # the tools' bytes as a stage handed them, if it did
    tools_digest: bytes


def _keep(memo: CallMemo, key: _Key, held: _System) -> None:
    kind, part, texts = key
    tools = 0 if held.tools is None else len(held.tools)
    memo.keep_same(kind, part, held if texts is None else (texts, held), 2 * held.size + tools)


def _long(system: Any) -> bool:
    """A system prompt worth looking up by identity: a list of blocks, or a long string (a
    shorter one is serialized for less than a lookup costs, and never kept)."""
    if isinstance(system, str):
        return len(system) >= MIN_CHARS
    return isinstance(system, list) and bool(system)


def family_of(
    body: dict[str, Any],
    stable_system_blocks: int | None,
    tenant: bytes,
    tools: bytes | None = None,
    memo: CallMemo | None = None,
) -> bytes:
    """The family, as the fingerprint has it."""
    tools_digest, stable_digest, _ = prefix(body, stable_system_blocks, tools, memo)
    return owned_kept(tenant, tools_digest + stable_digest)
