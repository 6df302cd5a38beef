"""The blocks of a prompt that can carry a breakpoint, in prompt order, with the prompt's
estimated size up to each: what the breakpoint plan (breakpoints.py) chooses among.

A turn of a conversation resends the previous turn's messages: where the parse shares them
(the very objects an earlier accepted call sent, as prefix reuse makes them), their slots
are taken from that call's (`SlotRun`, kept by the identity of the first message) and only
the messages after them are walked.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import orjson

from gateway.catalog.tokens import count_json_tokens, count_tokens
from gateway.rewrite.fingerprint import short

if TYPE_CHECKING:
    from gateway.rewrite.memo import CallMemo

Ttl = Literal["5m", "1h"]
MARKABLE = frozenset({"text", "image", "document", "tool_use", "tool_result", "search_result"})
# memo.py's kinds: the slots of an accepted call's messages (by the first one's identity)
RUN = "breakpoints.slots"
HEAD = "breakpoints.head"  # and of its tools and system prompt (by the tools list's)
SLOT_BYTES = 64  # what a kept slot or message reference holds, about


class Slot(NamedTuple):
    """A block that can carry a breakpoint, and the prompt's estimated size up to it. A
    tuple: a frozen dataclass's __init__ cost ~1 us a slot, 66 in a Claude Code turn."""

    section: str  # "tools", "system" or "messages"
    item: int  # into tools or system; into messages for "messages"
    block: int  # the content block within its message (0 for a string content)
    position: int  # among all blocks of the prompt, unmarkable ones (thinking) included
    tokens_through: int
    client_ttl: Ttl | None  # the client's own breakpoint here, if any


_SLOT: Callable[[tuple[Any, ...]], Slot] = functools.partial(tuple.__new__, Slot)


class SlotRun(NamedTuple):
    """The slots of an accepted call's messages, a pure function of the messages' values and
    where they start (`start`: the position and estimate before the first message, the
    count's bound and ratio); `ends`: the slots, position and estimate after each message."""

    start: tuple[int, int, int, float]
    messages: tuple[Any, ...]
    ends: tuple[tuple[int, int, int], ...]
    slots: tuple[Slot, ...]


def slots_of(
    body: dict[str, Any], chars_per_token: float, enough: int, memo: CallMemo | None = None
) -> list[Slot]:
    """Every block that can carry a breakpoint, in prompt order. `tokens_through` is exact
    below `enough` and only judged against it, so counting stops once the prompt reaches it
    (Claude Code's tools pass any model's minimum by their third): the rest of a 340 KB body
    is never serialized to be measured (~300 us a call). `memo`: where the slots of messages
    an earlier accepted call sent as these very objects are found (`SlotRun`)."""
    slots, total = _head(body, chars_per_token, enough, memo)
    position = len(slots)
    messages = body.get("messages") or []
    if memo is None or not isinstance(messages, list) or short(messages):
        _walk(slots, messages, 0, position, total, chars_per_token, enough, None)
        return slots
    start = (position, total, enough, chars_per_token)
    run: SlotRun | None = memo.get_same(RUN, messages[0])  # type: ignore[assignment]
    same = 0
    if run is not None and run.start == start:
        for kept, message in zip(run.messages, messages, strict=False):
            if kept is not message:
                break
            same += 1
    first = len(slots)
    ends: list[tuple[int, int, int]] = []
    if same:
        assert run is not None
        ends = list(run.ends[:same])
        count, position, total = ends[-1]
        slots.extend(run.slots[:count])
    _walk(slots, messages[same:], same, position, total, chars_per_token, enough, ends, first)
    if run is None or same < len(messages) or len(run.messages) != len(messages):
        kept = SlotRun(start, tuple(messages), tuple(ends), tuple(slots[first:]))
        size = SLOT_BYTES * (len(messages) + len(kept.slots))
        memo.keep_same(RUN, messages[0], kept, size)
    return slots


class Head(NamedTuple):
    """The slots of a tools list and the system prompt after it, and the estimate after
    each, for `start` (the count's bound and ratio): kept by the tools list's identity (the
    same list each call: tool_json.py), the system prompt held to be compared by identity.
    The parts are those tool_json's and family.py's entries hold and count."""

    start: tuple[int, float]
    tools_total: int
    system: Any
    slots: tuple[Slot, ...]
    total: int


def _head(
    body: dict[str, Any], chars_per_token: float, enough: int, memo: CallMemo | None
) -> tuple[list[Slot], int]:
    """The slots of the tools and the system prompt, and the estimate after them: taken
    from `Head` where the tools list (and the system prompt) are an earlier call's objects."""
    tools = body.get("tools") or ()
    system = body.get("system")
    start = (enough, chars_per_token)
    shared = memo if memo is not None and isinstance(tools, list) and tools else None
    held: Head | None = None
    if shared is not None:
        held = shared.get_same(HEAD, tools)  # type: ignore[assignment]
        if held is not None and held.start != start:
            held = None
        if held is not None and held.system is system:
            return list(held.slots), held.total
    slot = _SLOT  # a tuple made in C: the NamedTuple's own __new__ is a Python call
    if held is not None:
        slots, total = list(held.slots[: len(tools)]), held.tools_total
    else:
        slots, total = [], 0
        for index, tool in enumerate(tools):
            if total < enough:
                total += count_json_tokens(orjson.dumps(tool), chars_per_token)
            slots.append(slot(("tools", index, 0, index, total, _client_ttl(tool))))
    tools_total = total
    position = len(slots)
    for index, block in enumerate(
        [{"type": "text", "text": system}] if isinstance(system, str) else system or ()
    ):
        if total < enough:
            total += count_tokens(block.get("text", ""), chars_per_token)
        slots.append(slot(("system", index, 0, position, total, _client_ttl(block))))
        position += 1
    if shared is not None:
        kept = Head(start, tools_total, system, tuple(slots), total)
        shared.keep_same(HEAD, tools, kept, SLOT_BYTES * (len(slots) + 1))
    return slots, total


def _walk(
    slots: list[Slot],
    messages: Any,
    index: int,
    position: int,
    total: int,
    chars_per_token: float,
    enough: int,
    ends: list[tuple[int, int, int]] | None,
    first: int = 0,
) -> None:
    """Appends the slots of `messages` (the first at `index`) to `slots`, and to `ends` the
    slots (counted from `first`), position and estimate after each message."""
    slot = _SLOT
    for message in messages:
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content or ()
        for block_index, block in enumerate(blocks):
            kind = block.get("type")
            text = block.get("text") if kind == "text" else None
            if total < enough:
                total += (
                    count_tokens(text, chars_per_token)
                    if isinstance(text, str)
                    else count_json_tokens(orjson.dumps(block), chars_per_token)
                )
            if kind in MARKABLE and (text is None or text):
                ttl = None if block.get("cache_control") is None else _client_ttl(block)
                slots.append(slot(("messages", index, block_index, position, total, ttl)))
            position += 1
        if ends is not None:
            ends.append((len(slots) - first, position, total))
        index += 1


def _client_ttl(block: Any) -> Ttl | None:
    mark = block.get("cache_control") if isinstance(block, dict) else None
    if not isinstance(mark, dict):
        return None
    return "1h" if mark.get("ttl") == "1h" else "5m"
