"""A request's prompt, reduced to what decides its cache hits: one digest per layer.

The prefix registry compares a request with the previous one of its conversation layer
by layer, to say why the cache missed. Digests are of the bytes as sent (after the
rewrites), because the provider's cache key is the bytes: each block serialized and
digested (digest.py's `content`: xxh3, ~0.03 us a KB), the digests chained. One full pass
costs less than looking each block up in the memo by its value did (a walk of each block
into a key, and the key's hash: ~280 -> ~90 us on a 340 KB Claude Code turn). A message or
system list the body shares with an earlier accepted call's parse (the same object, as
prefix reuse makes them) is found by its identity instead: one lookup (memo.py's
`get_same`), whatever its size.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from gateway.rewrite import digest, runs, walk
from gateway.rewrite.family import family_of as family_of
from gateway.rewrite.family import owned_kept, prefix
from gateway.rewrite.family import prompt_family as prompt_family
from gateway.rewrite.family import unmarked as unmarked
from gateway.rewrite.memo import MIN_CHARS

if TYPE_CHECKING:
    from gateway.rewrite.memo import CallMemo


class Fingerprint(NamedTuple):
    """A tuple: a frozen dataclass's __init__ cost ~3 us of a 1 KB body's audit."""

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


def conversation_of(body: dict[str, Any], tenant: bytes, memo: CallMemo | None = None) -> bytes:
    """Who calls and the conversation's first block: the same every turn of it."""
    for message in body.get("messages") or ():
        first = walk.walked(message, b"", memo).first
        if first:
            return _conversation(tenant, first)
    return _conversation(tenant, b"")


_owned = owned_kept
# The digest of an empty list's bytes: tools or system blocks that are not there.
_NONE = digest.content(b"[]")


def _conversation(tenant: bytes, first: bytes) -> bytes:
    return _owned(tenant, first)


def short(sent: list[Any]) -> bool:
    """A conversation of one or two short strings (a 1 KB body's): no run kept or looked up."""
    if len(sent) > 2:
        return False
    for message in sent:  # inline: no generator, no call (~0.34 -> ~0.15 us)
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, str) or len(content) >= MIN_CHARS:
            return False
    return True


def _chained(sent: Any, family: bytes) -> tuple[list[bytes], tuple[bytes, ...], bytes, int]:
    """(the chain after each message, the last two breakpoints' chains, the first block's
    digest, the messages' bytes), every message serialized."""
    chains: list[bytes] = []
    tail: tuple[bytes, ...] = (family,)
    first, total, chain = b"", 0, family
    for message in sent:
        walked = walk.walked(message, chain, None)
        chain = walked.after
        chains.append(chain)
        tail = (*tail, *walked.marks)[-2:] if walked.marks else tail
        first = first or walked.first
        total += walked.size
    return chains, tail, first, total


def _chained_short(
    sent: list[Any], family: bytes
) -> tuple[list[bytes], tuple[bytes, ...], bytes, int]:
    """`_chained` of messages of one short string each (`short`), as `walk.walked` has them:
    the string a text block without a breakpoint (~1.5 -> ~0.7 us for a question)."""
    content = digest.content
    chains: list[bytes] = []
    first, total, chain = b"", 0, family
    for message in sent:
        raw = orjson.dumps({"type": "text", "text": message["content"]})
        own = content(raw)
        chain = content(content(chain + str(message.get("role")).encode()) + own)
        chains.append(chain)
        first = first or own
        total += len(raw)
    return chains, (family,), first, total


def fingerprint(
    body: dict[str, Any],
    stable_system_blocks: int | None,
    chars_per_token: float,
    tenant: bytes = b"",
    tools: bytes | None = None,
    memo: CallMemo | None = None,
    texts: tuple[object, ...] | None = None,
) -> Fingerprint:
    """`tools`: the tools' bytes without their breakpoints, where a stage has them already.
    `memo`: where the parts this body shares with an earlier accepted call's are found;
    `texts`: as family.py's `prefix` has them."""
    if not body.get("system") and (tools is not None or not body.get("tools")):
        # `prefix` of no system prompt (and no tools but those given): "[]" for each one
        # missing, and nothing the memo could hold (~0.9 -> ~0.1 us)
        tools_digest = _NONE if tools is None else digest.content(tools)
        stable_digest, size = _NONE, (2 if tools is None else len(tools)) + 2
    else:
        tools_digest, stable_digest, size = prefix(body, stable_system_blocks, tools, memo, texts)
    family = _owned(tenant, tools_digest + stable_digest)
    sent = body.get("messages") or []
    chains: Sequence[bytes]
    if isinstance(sent, list) and short(sent):
        chains, tail, first, total = _chained_short(sent, family)
    elif memo is None or not isinstance(sent, list):
        chains, tail, first, total = _chained(sent, family)
    else:
        run = runs.chained(sent, family, memo)
        chains, tail, first, total = run.chains, run.tail, run.first, run.total
    return Fingerprint(
        family=family,
        conversation=_conversation(tenant, first),
        model=str(body.get("model")),
        tools=tools_digest,
        system=stable_digest,
        messages=tuple(chains),
        shared=tail[0],
        prompt_tokens=int((size + total) / chars_per_token),
        tenant=tenant,
    )
