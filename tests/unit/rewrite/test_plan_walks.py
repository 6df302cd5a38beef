"""The plan's searches over its slots (breakpoints.py: the 19-block grid by bisection, the
client's TTLs from one list, the previous prompt's end from the newest, the stable end from
the head's counts, the slots before moved dates from the newest) choose what a walk of every
slot chose, on random slot lists."""

from __future__ import annotations

import random

from gateway.rewrite.breakpoints import (
    LOOKBACK_BLOCKS,
    _before,
    _previous,
    _stable_end,
    _ttl_at,
    _wanted,
)
from gateway.rewrite.slots import Slot, Ttl


def _walked_wanted(
    slots: list[Slot], stable_end: int | None, min_tokens: int, automatic: bool
) -> list[int]:
    """`_wanted` as it walked every slot back from the newest."""
    last = len(slots) - 1
    candidates = [] if stable_end is None else [stable_end]
    if not automatic:
        candidates.append(last)
    shared = last - 1
    if shared > (stable_end if stable_end is not None else -1) and (
        slots[shared].section == slots[last].section == "messages"
        and slots[shared].item == slots[last].item
    ):
        candidates.append(shared)
    floor = -1 if stable_end is None else stable_end
    reach = slots[last].position - (LOOKBACK_BLOCKS - 1)
    for i in range(last - 1, floor, -1):
        if slots[i].position <= reach:
            candidates.append(i)
            reach = slots[i].position - (LOOKBACK_BLOCKS - 1)
    wanted: list[int] = []
    for i in candidates:
        if i not in wanted and slots[i].tokens_through >= min_tokens:
            wanted.append(i)
    return wanted


def _slots(rng: random.Random) -> list[Slot]:
    slots: list[Slot] = []
    position = total = 0
    tools, system, messages = rng.randint(0, 4), rng.randint(0, 3), rng.randint(1, 120)
    ttls: list[Ttl | None] = [None, None, None, None, None, None, None, None, "5m", "1h"]
    for section, count in (("tools", tools), ("system", system), ("messages", messages)):
        for item in range(count):
            for block in range(rng.randint(1, 3) if section == "messages" else 1):
                position += rng.choice((1, 1, 1, 2, 5, 30))  # unmarkable blocks between
                total += rng.randint(0, 400)
                slots.append(Slot(section, item, block, position, total, rng.choice(ttls)))
    return slots


def test_the_searches_choose_what_the_walks_chose() -> None:
    rng = random.Random(20261201)
    for _ in range(3000):
        slots = _slots(rng)
        stable_end = rng.choice([None, *range(min(len(slots), 8))])
        min_tokens = rng.choice((0, 1024, 4096))
        automatic = rng.random() < 0.2
        walked = _walked_wanted(slots, stable_end, min_tokens, automatic)
        assert _wanted(slots, stable_end, min_tokens, automatic) == walked
        # Stopped once `enough` not the client's are wanted: the plan's choice is the same.
        skip = {i for i, slot in enumerate(slots) if slot.client_ttl}
        for enough in range(5):
            found = _wanted(slots, stable_end, min_tokens, automatic, enough, skip)
            chosen = [i for i in found if i not in skip][:enough]
            assert chosen == [i for i in walked if i not in skip][:enough]
        client = tuple((i, s.client_ttl) for i, s in enumerate(slots) if s.client_ttl)
        for i in range(len(slots)):
            walked: Ttl = "5m"
            if any(s.client_ttl == "1h" for s in slots[i + 1 :]):
                walked = "1h"
            elif not any(s.client_ttl == "5m" for s in slots[:i]):
                walked = "1h" if i % 2 else "5m"
            assert _ttl_at(i, client, "1h" if i % 2 else "5m") == walked
        reread = rng.choice([None, *range(0, 130, 7)])
        listed = [
            i
            for i, slot in enumerate(slots)
            if slot.section == "messages" and reread is not None
            and slot.item < reread and slot.tokens_through >= min_tokens
        ]  # fmt: skip
        assert _previous(slots, reread, min_tokens) == (listed[-1] if listed else None)


def _walked_stable_end(slots: list[Slot], stable_blocks: int | None) -> int | None:
    end = None
    for i, slot in enumerate(slots):
        if slot.section == "messages":
            break
        if slot.section == "tools" or stable_blocks is None or slot.item < stable_blocks:
            end = i
    return end


def test_the_counts_find_what_the_walks_found() -> None:
    """The stable end from the number of tool and head slots, the slots before moved dates
    searched from the newest: what a walk of every slot found."""
    rng = random.Random(20261202)
    for _ in range(3000):
        slots = _slots(rng)
        tools = sum(slot.section == "tools" for slot in slots)
        head = sum(slot.section != "messages" for slot in slots)
        for stable_blocks in (None, -1, 0, 1, 2, 5):
            found = _stable_end(tools, head, stable_blocks)
            assert found == _walked_stable_end(slots, stable_blocks)
        last = slots[-1]
        for dates_at in ((0, 0), (last.item, 0), (last.item, last.block), (last.item + 1, 0)):
            kept = [s for s in slots if s.section != "messages" or (s.item, s.block) < dates_at]
            assert slots[: _before(slots, head, dates_at)] == kept
