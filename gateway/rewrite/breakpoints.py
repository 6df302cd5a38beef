"""Where Anthropic prompt-cache breakpoints go: a stacked hierarchy of stability.

1. the stable prefix: tools and the stable system prompt, shared by a prompt family;
2. the newest block, so the next turn of the conversation reads everything before it;
3. between them, breakpoints at most 20 blocks apart, because a read looks back at most
   20 blocks from a breakpoint (docs/wire.md#anthropic-prompt-caching).
When dates were moved to the end of the newest turn, "the newest block" is the last one
before them (an entry holding the time would never be read again; none if that is the
first block). When the newest turn has several blocks, the one before its last gets one
too: parallel calls that share a document and differ in their question read it there.

Breakpoints cost nothing in themselves: a write is billed for the tokens between the
longest hit and the last breakpoint, however many breakpoints lie between, so the four
slots are spent where they widen what a later request can read. None goes where its
prefix is under the model's minimum (nothing would be cached), and 1h ones precede 5m.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Callable, Container, Iterable
from typing import TYPE_CHECKING, Any, Literal

from gateway.catalog.tokens import count_tokens
from gateway.rewrite.fingerprint import short
from gateway.rewrite.marks import marked_body, unmarked_body
from gateway.rewrite.memo import derived
from gateway.rewrite.request import Finding, LLMRequest, Rewrite, evolve
from gateway.rewrite.slots import Marks, Slot, Ttl, slot_table

if TYPE_CHECKING:
    from gateway.rewrite.memo import CallMemo
    from gateway.rewrite.snapshot import Observation

RULE = "cache_breakpoints"
MAX_BREAKPOINTS = 4
LOOKBACK_BLOCKS = 20
BreakpointPolicy = Literal["augment", "replace", "respect"]


def plan_breakpoints(
    request: LLMRequest,
    *,
    policy: BreakpointPolicy,
    stable_ttl: Ttl = "5m",
    tail_ttl: Ttl = "5m",
    min_tokens: int,
    chars_per_token: float,
    tail: bool = True,
    reread_messages: int | None = None,
    ttls: Callable[[], tuple[Ttl, Ttl]] | None = None,
    reread: Callable[[], int | None] | None = None,
    observed: tuple[Observation, ...] = (),
    memo: CallMemo | None = None,
) -> LLMRequest:
    """`tail=False`: the registry's word that this step's conversation tails are rarely
    read again, so writing them costs more than it saves. Then only the stable prefix is
    marked, and the end of the conversation's previous prompt (its first
    `reread_messages` messages) when that is cached on this model: read, never written.
    `ttls` and `reread`, where given, say the TTLs and `reread_messages` when a plan needs
    them (a prompt below the model's minimum never does: ~6 us of digests a call saved).
    `observed`: observations to return with the plan; `memo`: where a block, message or
    list marked the same way on an earlier accepted call is found (memo.py's `get_same`),
    so the same input object comes back as the same output object."""
    body = unmarked_body(request.body) if policy == "replace" else request.body
    table = slot_table(body, chars_per_token, min_tokens, memo)
    slots, client = table.slots, table.client
    if policy == "respect" and (body.get("cache_control") or client):
        return _done(request, observed, memo, findings=_lookback(_positions(slots, dict(client))))
    if not slots:
        return _done(request, observed, memo)
    taken = len(client)
    automatic = body.get("cache_control")
    if automatic:  # the top-level field marks the last block and takes a slot
        taken += 1
    if request.dates_at is not None:  # nothing from the block holding moved dates on
        end = _before(slots, table.head, request.dates_at)
        slots, client = slots[:end], tuple(mark for mark in client if mark[0] < end)
        if not slots:  # the dates are in the first block: no prefix before them to cache
            return _done(request, observed, memo, findings=_below(0, min_tokens))
    stable_end = _stable_end(table.tools, table.head, request.stable_system_blocks)
    ttl_of = dict(client)  # the client's own TTL by slot index
    # More than four of the client's own (the API refuses them) get none added, not a slice.
    room = max(MAX_BREAKPOINTS - taken, 0)
    enough = room if tail else 0
    wanted = _wanted(slots, stable_end, min_tokens, automatic is not None, enough, ttl_of)
    if not tail:
        wanted = [i for i in wanted if stable_end is not None and i <= stable_end]
        if reread is not None:
            reread_messages = reread()
        previous = _previous(slots, reread_messages, min_tokens)
        if previous is not None and previous < len(slots) - 1:
            wanted.append(previous)
    chosen = [i for i in wanted if i not in ttl_of][:room]
    if not chosen:
        if slots[-1].tokens_through < min_tokens:
            below = _below(slots[-1].tokens_through, min_tokens)
            return _done(request, observed, memo, findings=below)
        if body is request.body:
            return _done(request, observed, memo)
        removed = Rewrite(RULE, "client breakpoints removed")
        return _done(request, observed, memo, body=body, rewrite=removed)
    if ttls is not None:
        stable_ttl, tail_ttl = ttls()
    # 1h entries must precede 5m ones: a 1h tail makes the stable prefix 1h too.
    stable_ttl = "1h" if tail_ttl == "1h" else stable_ttl
    marks = {
        i: _ttl_at(
            i, client, stable_ttl if stable_end is not None and i <= stable_end else tail_ttl
        )
        for i in sorted(chosen)
    }
    where = ", ".join(f"{slots[i].section}[{slots[i].item}] {t}" for i, t in marks.items())
    findings = _lookback(_positions(slots, sorted([*ttl_of, *marks])))
    new = marked_body(body, slots, marks, memo)
    return _done(request, observed, memo, body=new, rewrite=Rewrite(RULE, where), findings=findings)


def plan_short(
    request: LLMRequest,
    *,
    min_tokens: int,
    chars_per_token: float,
    observed: tuple[Observation, ...] = (),
) -> LLMRequest | None:
    """`plan_breakpoints`' request where the body provably gets no breakpoint and leaves the
    memo nothing to keep (a 1 KB body's question: ~9 -> ~2 us), else None. Such a body has
    no tools, no breakpoint of the client's, a system prompt that is a string if any, one
    or two short string messages (slots.py walks them without the memo) and no moved dates,
    and its whole estimate is below the model's minimum: every slot is, so the plan chooses
    none and notes the prompt below the minimum (or nothing, without a slot)."""
    body = request.body
    system = body.get("system")
    messages = body.get("messages") or []
    if (
        request.dates_at is not None
        or body.get("tools")
        or body.get("cache_control") is not None
        or not (system is None or isinstance(system, str))
        or not isinstance(messages, list)
        or not short(messages)
    ):
        return None
    total = 0 if system is None else count_tokens(system, chars_per_token)
    markable = system is not None
    for message in messages:
        content = message["content"]  # a short string (`short`)
        total += count_tokens(content, chars_per_token)
        markable = markable or bool(content)
    if total >= min_tokens:
        return None
    observations = request.observations + observed
    if not markable:  # `_done`'s request, made directly
        return evolve(request, observations=observations) if observed else request
    findings = request.findings + _below(total, min_tokens)
    return evolve(request, findings=findings, observations=observations)


def _done(
    request: LLMRequest,
    observed: tuple[Observation, ...],
    memo: CallMemo | None,
    *,
    body: dict[str, Any] | None = None,
    rewrite: Rewrite | None = None,
    findings: tuple[Finding, ...] = (),
) -> LLMRequest:
    """The plan's request in one new request, with what the memo kept after what the plan
    observed (memo.py's `observed`, folded in)."""
    observed += derived(memo)
    if body is not None or findings or observed:
        request = _evolved(request, observed, body, rewrite, findings)
    return request


def _evolved(
    request: LLMRequest,
    observed: tuple[Observation, ...],
    body: dict[str, Any] | None,
    rewrite: Rewrite | None,
    findings: tuple[Finding, ...],
) -> LLMRequest:
    changes: dict[str, Any] = {} if body is None else {"body": body, "changed": True}
    if rewrite is not None:
        changes["rewrites"] = (*request.rewrites, rewrite)
    if findings:
        changes["findings"] = request.findings + findings
    if observed:
        changes["observations"] = request.observations + observed
    return evolve(request, **changes)


def _below(tokens: int, min_tokens: int) -> tuple[Finding, ...]:
    return (Finding("prefix_below_minimum", f"~{tokens} tokens < {min_tokens}"),)


def _lookback(positions: list[int]) -> tuple[Finding, ...]:
    """A finding where two breakpoints lie further apart than a read looks back."""
    widest = max(map(operator.sub, positions[1:], positions), default=0)
    if widest <= LOOKBACK_BLOCKS - 1:
        return ()
    return (Finding("lookback_exceeded", f"{widest} blocks between breakpoints"),)


def _wanted(
    slots: list[Slot],
    stable_end: int | None,
    min_tokens: int,
    automatic: bool,
    enough: int | None = None,
    skip: Container[int] = (),
) -> list[int]:
    """Slot indexes in order of value: stable end, newest block, then ones between.
    `enough`: no more of those between once that many not in `skip` (the client's own)
    are wanted, which is all the plan takes: a long conversation's grid is not searched to
    its start each turn."""
    last = len(slots) - 1
    candidates = [] if stable_end is None else [stable_end]
    if not automatic:
        candidates.append(last)
    shared = last - 1  # the block before the newest one, when both are in the same message
    if shared > (stable_end if stable_end is not None else -1) and (
        slots[shared].section == slots[last].section == "messages"
        and slots[shared].item == slots[last].item
    ):
        candidates.append(shared)
    wanted: list[int] = []
    for i in candidates:
        if i not in wanted and slots[i].tokens_through >= min_tokens:
            wanted.append(i)
    found = sum(i not in skip for i in wanted)
    floor = -1 if stable_end is None else stable_end
    # Every 19 blocks back from the newest, so a read from each finds the one before it.
    reach = slots[last].position - (LOOKBACK_BLOCKS - 1)
    below = last
    while (enough is None or found < enough) and (
        i := bisect.bisect_right(slots, reach, floor + 1, below, key=_POSITION) - 1
    ) > floor:
        if slots[i].tokens_through < min_tokens:
            break  # the estimate rises with the slots: none before this one reaches it
        if i not in wanted:
            wanted.append(i)
            found += i not in skip
        reach = slots[i].position - (LOOKBACK_BLOCKS - 1)
        below = i
    return wanted


def _stable_end(tools: int, head: int, stable_blocks: int | None) -> int | None:
    """The last tool or stable system block: the end of what a prompt family shares (the
    `tools` slots come first, then a slot a system block up to `head`, then messages)."""
    system = head - tools
    kept = system if stable_blocks is None else max(0, min(system, stable_blocks))
    end = tools + kept - 1
    return None if end < 0 else end


def _before(slots: list[Slot], head: int, dates_at: tuple[int, int]) -> int:
    """How many slots come before the block holding the moved dates (at the newest turn's
    end): the messages' slots are in (message, block) order, so searched from the last."""
    end = len(slots)
    while end > head and (slots[end - 1].item, slots[end - 1].block) >= dates_at:
        end -= 1
    return end


def _ttl_at(i: int, client: Marks, default: Ttl) -> Ttl:
    # The API requires 1h breakpoints before 5m ones; the client's own marks are fixed.
    for at, ttl in client:  # a few: loops, not generators
        if at > i and ttl == "1h":
            return "1h"
    for at, ttl in client:
        if at < i and ttl == "5m":
            return "5m"
    return default


def _positions(slots: list[Slot], marked: Iterable[int]) -> list[int]:
    """The positions of the marks at slot indexes `marked`."""
    return [slots[i].position for i in marked]


_POSITION: Callable[[Slot], int] = operator.itemgetter(3)  # Slot.position


def _previous(slots: list[Slot], reread_messages: int | None, min_tokens: int) -> int | None:
    """The last slot of the conversation's previous prompt (its first `reread_messages`
    messages) that reaches the model's minimum, searched from the newest."""
    if reread_messages is None:
        return None
    for i in range(len(slots) - 1, -1, -1):
        slot = slots[i]
        if (
            slot.section == "messages"
            and slot.item < reread_messages
            and slot.tokens_through >= min_tokens
        ):
            return i
    return None
