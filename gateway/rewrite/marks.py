"""Breakpoints on a body and off it: the copies the plan (breakpoints.py) sends.

The plan marks the same blocks of a conversation turn after turn (the tools' end, the
stable system prompt's): a part marked as an earlier accepted call marked it (the same
input object, the same marks) comes back as that call's output object (memo.py's
`get_same`), and a part left as it was is the input's own object, so the stages after
(the fingerprint) and the serializer find what they know of it by its identity.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from gateway.rewrite.memo import CallMemo
    from gateway.rewrite.slots import Slot, Ttl

# memo.py's kinds: a block, a message and a list as a plan marked them (by identity).
BLOCK = "breakpoints.block"
MESSAGE = "breakpoints.message"
LIST = "breakpoints.list"
# What a marked part's entry holds beyond the part (the copy shares the part's values).
SAME_BYTES = 256


def unmarked_body(body: dict[str, Any]) -> dict[str, Any]:
    """The body without the client's breakpoints; a block or list without one is kept as
    the same object."""

    def strip(blocks: list[Any]) -> list[Any]:
        if not any(isinstance(b, dict) and "cache_control" in b for b in blocks):
            return blocks
        return [
            {k: v for k, v in b.items() if k != "cache_control"}
            if isinstance(b, dict) and "cache_control" in b
            else b
            for b in blocks
        ]

    new = dict(body)
    if isinstance(body.get("tools"), list):
        new["tools"] = strip(body["tools"])
    if isinstance(body.get("system"), list):
        new["system"] = strip(body["system"])
    messages = body.get("messages") or []
    stripped = [
        m if not isinstance(m.get("content"), list) or (c := strip(m["content"])) is m["content"]
        else {**m, "content": c}
        for m in messages
    ]  # fmt: skip
    new["messages"] = (
        stripped if any(a is not b for a, b in zip(stripped, messages, strict=True)) else messages
    )
    return new


def _mark(ttl: Ttl) -> dict[str, str]:
    return {"type": "ephemeral"} if ttl == "5m" else {"type": "ephemeral", "ttl": "1h"}


def _same(
    memo: CallMemo | None,
    kind: str,
    part: object,
    how: Hashable,
    make: Callable[[], Any],
    size: int = SAME_BYTES,
) -> Any:
    """`make()`, a pure function of `part`'s value and `how`: the object made for the same
    `part` (by identity) and `how` on an earlier accepted call where the memo has it, so an
    unchanged part marked the same way comes back as the same object."""
    if memo is not None:
        held: tuple[Hashable, Any] | None = memo.get_same(kind, part)
        if held is not None and held[0] == how:
            return held[1]
    made = make()
    if memo is not None:
        memo.keep_same(kind, part, (how, made), size)
    return made


def _marked_blocks(blocks: list[Any], marks: dict[int, Ttl], memo: CallMemo | None) -> list[Any]:
    """`blocks` with a breakpoint on each of `marks` (index -> TTL): each marked block, and
    the list, the same objects as on an earlier call that marked them so."""

    def make() -> list[Any]:
        new = list(blocks)
        for index, ttl in marks.items():
            new[index] = _marked_block(blocks[index], ttl, memo)
        return new

    return cast("list[Any]", _same(memo, LIST, blocks, tuple(marks.items()), make))


def _marked_block(block: Any, ttl: Ttl, memo: CallMemo | None) -> Any:
    return _same(memo, BLOCK, block, ttl, lambda: {**block, "cache_control": _mark(ttl)})


def marked_body(
    body: dict[str, Any], slots: list[Slot], marks: dict[int, Ttl], memo: CallMemo | None = None
) -> dict[str, Any]:
    """The body with a breakpoint at each of `marks` (slot index -> TTL). A part left as
    it was is the input's own object; a part marked as on an earlier accepted call (the same
    input object, the same marks) is that call's output object (`_same`)."""
    by_section: dict[str, dict[int, Ttl]] = {}
    by_message: dict[int, dict[int, Ttl]] = {}
    for i, ttl in marks.items():
        slot = slots[i]
        if slot.section == "messages":
            by_message.setdefault(slot.item, {})[slot.block] = ttl
        else:
            by_section.setdefault(slot.section, {})[slot.item] = ttl
    new = dict(body)
    for section, at in by_section.items():
        blocks = new[section]
        if isinstance(blocks, str):  # a system string becomes its one text block
            make = functools.partial(_marked_blocks, [{"type": "text", "text": blocks}], at, None)
            new[section] = _same(memo, LIST, blocks, tuple(at.items()), make, 2 * len(blocks))
        else:
            new[section] = _marked_blocks(blocks, at, memo)
    if by_message:
        new["messages"] = _marked_messages(new["messages"], by_message, memo)
    return new


def _marked_messages(
    messages: list[Any], marks: dict[int, dict[int, Ttl]], memo: CallMemo | None
) -> list[Any]:
    """A conversation's list is new every turn: only its marked messages are kept."""
    new = list(messages)
    for item, at in marks.items():
        message = messages[item]
        make = functools.partial(_marked_message, message, at)
        new[item] = _same(memo, MESSAGE, message, tuple(at.items()), make)
    return new


def _marked_message(message: dict[str, Any], at: dict[int, Ttl]) -> dict[str, Any]:
    """A new message, with its content list and marked blocks new objects too: the message's
    own entry (`_same`) brings all of them back, and where the message is new its content
    is too (prefix reuse shares whole messages), so entries of their own for the list and
    the blocks (two lookups and two entries more a mark, and the lookback mark moves each
    turn) would not be found."""
    content = message["content"]
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    for index, ttl in at.items():
        blocks[index] = {**blocks[index], "cache_control": _mark(ttl)}
    return {**message, "content": blocks}
