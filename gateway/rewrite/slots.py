"""The blocks of a prompt that can carry a breakpoint, in prompt order, with the prompt's
estimated size up to each: what the breakpoint plan (breakpoints.py) chooses among.

A turn of a conversation resends the previous turn's messages: where the parse shares them
(the very objects an earlier accepted call sent, as prefix reuse makes them), their slots
are taken from that call's (`SlotRun`, kept by the identity of the first message) and only
the messages after them are walked.
"""

from __future__ import annotations

import functools
import operator
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
Marks = tuple[tuple[int, Ttl], ...]  # the client's own breakpoints: (slot index, TTL)


class Table(NamedTuple):
    """The slots and, beside them, the client's breakpoints among them (few: kept with the
    parts and joined, so a turn looks only at the slots of the messages it added), and how
    many slots are the tools' and the tools' and system prompt's (`head`: the slots before
    the messages')."""

    slots: list[Slot]
    client: Marks
    tools: int
    head: int


class SlotRun(NamedTuple):
    """The slots of an accepted call's messages, a pure function of the messages' values and
    where they start (`start`: the position and estimate before the first message, the
    count's bound and ratio); `ends`: the slots, position and estimate after each message;
    `client`: the client's breakpoints among them, by index among all the prompt's slots
    (`Table`); `head`: found with the run where the tools list and the system prompt are
    the very objects it holds (one lookup less)."""

    start: tuple[int, int, int, float]
    messages: tuple[Any, ...]
    ends: tuple[tuple[int, int, int], ...]
    slots: tuple[Slot, ...]
    client: Marks
    head: Head  # the tools' and system prompt's, that the messages' start from


def slots_of(
    body: dict[str, Any], chars_per_token: float, enough: int, memo: CallMemo | None = None
) -> list[Slot]:
    """Every block that can carry a breakpoint, in prompt order (`slot_table`'s)."""
    return slot_table(body, chars_per_token, enough, memo).slots


def slot_table(
    body: dict[str, Any], chars_per_token: float, enough: int, memo: CallMemo | None = None
) -> Table:
    """Every block that can carry a breakpoint, in prompt order. `tokens_through` is exact
    below `enough` and only judged against it, so counting stops once the prompt reaches it
    (Claude Code's tools pass any model's minimum by their third): the rest of a 340 KB body
    is never serialized to be measured (~300 us a call). `memo`: where the slots of messages
    an earlier accepted call sent as these very objects are found (`SlotRun`)."""
    messages = body.get("messages") or []
    if memo is None or not isinstance(messages, list) or short(messages):
        head = _head(body, chars_per_token, enough, memo)
        slots = list(head.slots)
        _walk(slots, messages, 0, len(slots), head.total, chars_per_token, enough, None)
        client = head.client + _marks(slots, len(head.slots))
        return Table(slots, client, *head.counts)
    run: SlotRun | None = memo.get_same(RUN, messages[0])
    held = run.head if run is not None else None
    if (
        held is not None
        and held.tools is body.get("tools")
        and held.system is body.get("system")
        and held.start == (enough, chars_per_token)
    ):  # the run's own head, for the very tools and system prompt it was found with
        head = held
    else:
        head = _head(body, chars_per_token, enough, memo)
    first = len(head.slots)
    slots = list(head.slots)
    start = (first, head.total, enough, chars_per_token)
    same = 0
    if run is not None and run.start == start:
        same = _same_start(run.messages, messages, head.total >= enough)
    ends: tuple[tuple[int, int, int], ...] = ()
    kept_slots: tuple[Slot, ...] = ()
    kept_client: Marks = ()
    position, total = first, head.total
    if same:
        assert run is not None
        ends = run.ends[:same]
        count, position, total = ends[-1]
        # a tuple's whole slice is the tuple itself: no copy where the run is all there
        kept_slots = run.slots[:count]
        kept_client = run.client
        if kept_client and kept_client[-1][0] >= first + count:
            kept_client = tuple(mark for mark in kept_client if mark[0] < first + count)
        slots.extend(kept_slots)
    added: list[tuple[int, int, int]] = []
    walked_from = len(slots)
    _walk(slots, messages[same:], same, position, total, chars_per_token, enough, added, first)
    new_client = _marks(slots, walked_from)
    if run is None or same < len(messages) or len(run.messages) != len(messages):
        kept = SlotRun(
            start,
            tuple(messages),
            ends + tuple(added),
            kept_slots + tuple(slots[walked_from:]),
            kept_client + new_client,
            head,
        )
        # The head too: its own entry (HEAD) may be forgotten before this one.
        size = SLOT_BYTES * (len(messages) + len(kept.slots) + first + len(kept.client))
        memo.keep_same(RUN, messages[0], kept, size)
    return Table(slots, head.client + kept_client + new_client, *head.counts)


def _marks(slots: list[Slot], start: int) -> Marks:
    """The client's breakpoints among the slots from `start` on."""
    marks: list[tuple[int, Ttl]] = []
    for i in range(start, len(slots)):
        ttl = slots[i].client_ttl
        if ttl is not None:
            marks.append((i, ttl))
    return tuple(marks)


class Head(NamedTuple):
    """The slots of a tools list and the system prompt after it, and the estimate after
    each, for `start` (the count's bound and ratio): kept by the tools list's identity (the
    same list each call: tool_json.py), the system prompt held to be compared by identity.
    The parts are those tool_json's and family.py's entries hold and count. `client`,
    `counts`: the client's breakpoints among the slots, and their number (`Table`)."""

    start: tuple[int, float]
    tools_total: int
    tools: Any  # the body's own value, to be compared by identity (`SlotRun.head`)
    system: Any
    slots: tuple[Slot, ...]
    total: int
    client: Marks
    counts: tuple[int, int]


def _head(body: dict[str, Any], chars_per_token: float, enough: int, memo: CallMemo | None) -> Head:
    """The slots of the tools and the system prompt, and the estimate after them: taken
    from `Head` where the tools list (and the system prompt) are an earlier call's objects."""
    sent = body.get("tools")
    tools = sent or ()
    system = body.get("system")
    start = (enough, chars_per_token)
    shared = memo if memo is not None and isinstance(tools, list) and tools else None
    held: Head | None = None
    if shared is not None:
        held = shared.get_same(HEAD, tools)
        if held is not None and held.start != start:
            held = None
        if held is not None and held.system is system:
            return held
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
    made = Head(
        start,
        tools_total,
        sent,
        system,
        tuple(slots),
        total,
        _marks(slots, 0),
        (len(tools), len(slots)),
    )
    if shared is not None:
        shared.keep_same(HEAD, tools, made, SLOT_BYTES * (len(slots) + len(made.client) + 1))
    return made


def _same_start(kept: tuple[Any, ...], messages: list[Any], by_value: bool) -> int:
    """How many leading messages are the run's, compared in C. `by_value`: the run counted
    none of its messages (the estimate reached its bound before them), so their slots are
    a pure function of their values as Python compares them, and a tuple equality (identity
    first) compares all of the run at once, or all but its last (Claude Code resends its
    newest message without its breakpoint: a new object). Else each must be the very object
    (`1` and `1.0` are equal values, not the same bytes counted)."""
    n = len(kept)
    if by_value and n <= len(messages):
        if kept[-1] is messages[n - 1] and kept == tuple(messages[:n]):
            return n
        if n > 1 and kept[-2] is messages[n - 2] and kept[:-1] == tuple(messages[: n - 1]):
            return n - 1
    flags = list(map(operator.is_, kept, messages))
    return flags.index(False) if False in flags else len(flags)


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
    slot, append = _SLOT, slots.append
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):  # one text block, not made to be walked
            if total < enough:
                total += count_tokens(content, chars_per_token)
            if content:
                append(slot(("messages", index, 0, position, total, None)))
            position += 1
        else:
            for block_index, block in enumerate(content or ()):
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
                    append(slot(("messages", index, block_index, position, total, ttl)))
                position += 1
        if ends is not None:
            ends.append((len(slots) - first, position, total))
        index += 1


def _client_ttl(block: Any) -> Ttl | None:
    mark = block.get("cache_control") if isinstance(block, dict) else None
    if not isinstance(mark, dict):
        return None
    return "1h" if mark.get("ttl") == "1h" else "5m"
