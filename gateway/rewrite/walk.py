"""A message's place in the fingerprint's digest chain (fingerprint.py): walked, found by
the message's identity, or taken again from the place of the previous turn's copy of it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import orjson

from gateway.rewrite import digest
from gateway.rewrite.memo import MIN_CHARS

if TYPE_CHECKING:
    from gateway.rewrite.memo import CallMemo

# memo.py's kind: what a message was found to be (by identity).
MESSAGE = "fingerprint.message"


def _blocks(message: Any) -> list[Any]:
    content = message.get("content") if isinstance(message, dict) else None
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    return blocks if isinstance(blocks, list) else [message]


def _without_mark(block: Any) -> Any:
    if isinstance(block, dict) and "cache_control" in block:
        return {k: v for k, v in block.items() if k != "cache_control"}
    return block


class Walked(NamedTuple):
    """A message in the digest chain: a pure function of the chain before it and the
    message's value, kept by the message's identity (memo.py's `keep_same`), so a message
    a body shares with an earlier accepted call's costs a lookup, not a serialization."""

    before: bytes  # the chain before the message
    after: bytes  # the chain after it
    first: bytes  # its first block's digest (the conversation's, for the first message)
    size: int  # its blocks' bytes
    marks: tuple[bytes, ...]  # the chain after each block with a breakpoint


def _small(message: Any) -> bool:
    """A message of one short string: a 1 KB body's question."""
    content = message.get("content") if isinstance(message, dict) else None
    return isinstance(content, str) and len(content) < MIN_CHARS


def walked(message: Any, chain: bytes, memo: CallMemo | None) -> Walked:
    """The message's place in the chain that starts at `chain`; `first` and `size` do not
    depend on `chain` (conversation_of takes `first` from any chain)."""
    if memo is not None and _small(message):
        memo = None  # serialized for less than a lookup and an entry cost (~2 us)
    if memo is not None:
        held: Walked | None = memo.get_same(MESSAGE, message)  # type: ignore[assignment]
        if held is not None and (held.before == chain or not chain):
            return held
    content = digest.content
    before = chain
    role = str(message.get("role")) if isinstance(message, dict) else ""
    chain = content(chain + role.encode())
    first = b""
    size = 0
    marks: list[bytes] = []
    for block in _blocks(message):
        # Without its breakpoint: the newest block carries one this turn and not the next.
        marked = isinstance(block, dict) and "cache_control" in block
        raw = orjson.dumps(_without_mark(block) if marked else block)
        own = content(raw)
        chain = content(chain + own)
        if marked:
            marks.append(chain)
        if not first:
            first = own
        size += len(raw)
    walked = Walked(before, chain, first, size, tuple(marks))
    if memo is not None and before and size >= MIN_CHARS:  # a shorter one: derived again
        memo.keep_same(MESSAGE, message, walked, 2 * size + 64 * (2 + len(marks)))
    return walked


def _same_but_mark(new: Any, old: Any) -> bool:
    """Blocks of the same key and value objects in order but for `cache_control`."""
    if type(new) is not dict or type(old) is not dict:
        return False
    keys = [k for k in new if k != "cache_control"]
    olds = [k for k in old if k != "cache_control"]
    if len(keys) != len(olds):
        return False
    return all(k is o and new[k] is old[k] for k, o in zip(keys, olds, strict=True))


def again(kept: Any, walked: Walked, message: Any) -> Walked | None:
    """`walked`, `kept`'s place in the chain, as `message`'s where its blocks are the same
    objects or copies but for a breakpoint (a turn's copy with the breakpoint the next one
    moves), with `kept`'s marks where its own are the same or it has none. None: walk it."""
    if kept is message:
        return walked
    if type(kept) is not dict or type(message) is not dict:
        return None
    role = message.get("role")
    if kept.get("role") is not role and str(kept.get("role")) != str(role):
        return None
    blocks, kept_blocks = _blocks(message), _blocks(kept)
    if len(blocks) != len(kept_blocks):
        return None
    marked = moved = False
    for new, old in zip(blocks, kept_blocks, strict=True):
        mark = type(new) is dict and "cache_control" in new
        if new is not old:
            if not _same_but_mark(new, old):
                return None
            moved = moved or mark != ("cache_control" in old)
        marked = marked or mark
    return walked if not moved else None if marked else walked._replace(marks=())
