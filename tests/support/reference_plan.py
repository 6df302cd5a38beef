"""The volatile rule's plan as it was made before Places (movable.py, places.py): every line
walked. The reference the plan over Places is compared against, in tests."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from itertools import chain

from gateway.rewrite.movable import NOTHING, Moves, is_now_stamp, is_todays_date
from gateway.rewrite.places import Layout, layout


def reference_plan(
    texts: Sequence[Sequence[str]],
    learned: set[int],
    now: dt.datetime,
    shaped: Sequence[int],
    *,
    turn_takes_dates: bool,
    ends_pay: bool,
) -> Moves:
    """The plan as it was made before Places: every line walked."""
    if not shaped and not learned:
        return NOTHING
    flat = list(chain.from_iterable(texts))
    now_stamps = {i for i in shaped if is_now_stamp(flat[i], now)}
    dated = {
        i for i in shaped if i in now_stamps or (i in learned and not is_todays_date(flat[i], now))
    }
    personal = learned.difference(shaped)
    if not dated and not personal:
        return NOTHING
    varying = dated | personal
    where = [(t, j) for t, text in enumerate(texts) for j in range(len(text))]
    layouts: dict[int, Layout] = {}

    def layout_of(t: int) -> Layout:
        if t not in layouts:
            layouts[t] = layout(texts[t])
        return layouts[t]

    kept: list[str] = []
    last_stable = -1
    last_stable_in: dict[int, int] = {}
    for i, line in enumerate(flat):
        if i not in varying and line.strip():
            last_stable = last_stable_in[where[i][0]] = i

    def stable_after(i: int, same_text: bool) -> bool:
        return (last_stable_in.get(where[i][0], -1) if same_text else last_stable) > i

    to_turn: set[int] = set()
    for i in sorted(dated):
        t, j = where[i]
        if i not in now_stamps and not stable_after(i, same_text=False):
            continue
        if layout_of(t).enclosed[j]:
            kept.append("inside a <section>")
        elif not turn_takes_dates:
            kept.append("with no user turn to take a date")
        else:
            to_turn.add(i)
    starts = [0]
    for text in texts:
        starts.append(starts[-1] + len(text))
    for t in sorted({where[i][0] for i in to_turn}):
        ours = range(starts[t], starts[t + 1])
        if all(i in to_turn for i in ours if flat[i].strip()):
            emptied = to_turn.intersection(ours)
            kept += ["would empty its block"] * len(emptied)
            to_turn -= emptied
    to_end: set[int] = set()
    for i in sorted(personal):
        t, j = where[i]
        if not stable_after(i, same_text=ends_pay):
            continue
        if not ends_pay:
            kept.append("would need a system block of its own")
        elif layout_of(t).enclosed[j] or layout_of(t).ends_enclosed:
            kept.append("inside a <section>")
        elif layout_of(t).last_heading > j:
            kept.append("would cross a heading")
        else:
            to_end.add(i)
    return Moves(
        frozenset(dated), frozenset(personal), frozenset(to_turn), frozenset(to_end), tuple(kept)
    )
