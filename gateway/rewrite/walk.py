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


# A message's marks (`Walked.marks`), or None where they are not known without a walk.
Marks = tuple[bytes, ...] | None


class Walked(NamedTuple):
    """A message in the digest chain: a pure function of the chain before it and the
    message's value, kept by the message's identity (memo.py's `keep_same`), so a message
    a body shares with an earlier accepted call's costs a lookup, not a serialization."""

    before: bytes  # the chain before the message
    after: bytes  # the chain after it
    first: bytes  # its first block's digest (the conversation's, for the first message)
    size: int  # its blocks' bytes
    marks: tuple[bytes, ...]  # the chain after each block with a breakpoint


def walked(message: Any, chain: bytes, memo: CallMemo | None, new: bool = False) -> Walked:
    """The message's place in the chain that starts at `chain`; `first` and `size` do not
    depend on `chain` (conversation_of takes `first` from any chain). A message of one short
    string (a 1 KB body's question) is serialized for less than a lookup and an entry cost
    (~2 us): never looked up or kept. `new`: one that no accepted call can have walked (what
    a turn adds past the run it extends, runs.py), kept but not looked up (~0.35 us)."""
    is_dict = isinstance(message, dict)
    text = message.get("content") if is_dict else None
    if memo is not None and (not isinstance(text, str) or len(text) >= MIN_CHARS):
        held: Walked | None = None
        if not new:
            held = memo.get_same(MESSAGE, message)
        if held is not None and (held.before == chain or not chain):
            return held
    else:
        memo = None
    content, dumps = digest.content, orjson.dumps
    before = chain
    chain = content(chain + str(message.get("role")).encode()) if is_dict else content(chain)
    if isinstance(text, str):  # `_blocks`: one text block, never marked
        raw = dumps({"type": "text", "text": text})
        own = content(raw)
        return _kept(Walked(before, content(chain + own), own, len(raw), ()), message, memo)
    first = b""
    size = 0
    marks: list[bytes] = []
    for block in text if isinstance(text, list) else (message,):
        # Without its breakpoint: the newest block carries one this turn and not the next.
        if isinstance(block, dict) and "cache_control" in block:
            raw = dumps({k: v for k, v in block.items() if k != "cache_control"})
            own = content(raw)
            chain = content(chain + own)
            marks.append(chain)
        else:
            raw = dumps(block)
            own = content(raw)
            chain = content(chain + own)
        first = first or own
        size += len(raw)
    return _kept(Walked(before, chain, first, size, tuple(marks)), message, memo)


def _kept(walked: Walked, message: Any, memo: CallMemo | None) -> Walked:
    size = walked.size
    if memo is not None and walked.before and size >= MIN_CHARS:  # a shorter one: derived again
        memo.keep_same(MESSAGE, message, walked, 2 * size + 64 * (2 + len(walked.marks)))
    return walked


def _same_but_mark(new: Any, old: Any) -> bool:
    """Blocks of the same keys in order and the same values but for `cache_control`: each
    the same object, or equal strings. A string's bytes are its value's, so the copy a new
    parse made of a block the client sent last turn with a breakpoint (the bytes that
    parted it from last turn's parse) serializes as the kept one; other equal values may
    not (1, 1.0 and True are equal; equal dicts may hold their keys in other orders)."""
    if type(new) is not dict or type(old) is not dict:
        return False
    keys, olds = list(new), list(old)
    if "cache_control" in new:
        keys.remove("cache_control")
    if "cache_control" in old:
        olds.remove("cache_control")
    if keys != olds:  # strings, as the kept block's were: it was serialized
        return False
    for key in keys:
        value, was = new[key], old[key]
        if value is not was and not (type(value) is str and type(was) is str and value == was):
            return False
    return True


def again(kept: Any, message: Any, marks: tuple[bytes, ...], after: bytes) -> Marks:
    """`message`'s marks at `kept`'s place in the chain, where `kept` had `marks` and `after`
    after it, if its role and blocks are the same (`_same_but_mark`) but for breakpoints (a
    turn's copy with the breakpoint the next one moves): `kept`'s marks where its own are on
    the same blocks, none where it has none, the chain after the message where its one is
    on its last block. None: walk it."""
    if kept is message:
        return marks
    if type(kept) is not dict or type(message) is not dict:
        return None
    role, was = message.get("role"), kept.get("role")
    if role is not was and not (type(role) is str and type(was) is str and role == was):
        return None
    content, was = message.get("content"), kept.get("content")
    if type(content) is str and type(was) is str:  # one text block, never marked
        return marks if content == was else None
    blocks, kept_blocks = _blocks(message), _blocks(kept)
    if len(blocks) != len(kept_blocks):
        return None
    marked = moved = False
    for new, old in zip(blocks, kept_blocks, strict=True):
        if new is old:
            marked = marked or (type(new) is dict and "cache_control" in new)
        elif _same_but_mark(new, old):
            mark = "cache_control" in new
            moved = moved or mark != ("cache_control" in old)
            marked = marked or mark
        else:
            return None
    if not moved:
        return marks
    if not marked:
        return ()
    last = blocks[-1]  # where a breakpoint stage places one: the chain after the message
    if _marked(last) and not any(map(_marked, blocks[:-1])):
        return (after,)
    return None


def _marked(block: Any) -> bool:
    return type(block) is dict and "cache_control" in block
