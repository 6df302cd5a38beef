"""The volatile rule's plan over a system part's Places (movable.py, places.py) is the plan
that walked every line: the same moves and reasons, whatever the texts, the lines learned
to vary and the Places kept from earlier plans of the same texts."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from itertools import chain

from gateway.rewrite.movable import (
    NOTHING,
    Moves,
    could_be_now,
    is_now_stamp,
    is_todays_date,
    plan,
)
from gateway.rewrite.places import Layout, Places, layout

NOW = dt.datetime(2026, 11, 24, 10, 40, tzinfo=dt.UTC)


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


# Lines of every kind a plan tells apart: blank, stable prose, a heading, a section's tags,
# a "now" stamp, a date of another day, today's date, an epoch stamp, non-ASCII text.
POOL = (
    "",
    "   ",
    "Plain instructions.",
    "Ünïcödé instructions ✓",
    "# Heading",
    "   ## Sub heading",
    "<env>",
    "</env>",
    "<context>",
    "</context>",
    "Current time: 2026-11-24 10:41",
    "Time: Nov 24, 2026 09:15",
    "Date: 2026-03-02",
    "Today is 2026-11-24",
    "ts: 1795516800",
    "User: Alice",
    "Project: /home/alice/repo",
)


def _shaped(flat: Sequence[str]) -> list[int]:
    return [i for i, line in enumerate(flat) if any(ch.isdigit() for ch in line)]


def _texts(rng: random.Random) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(rng.choice(POOL) for _ in range(rng.randint(0, 8))) for _ in range(rng.randint(1, 4))
    )


def test_a_plan_over_kept_places_is_the_plan_that_walked_every_line() -> None:
    """Random texts (empty ones too), random lines learned (blank ones, dated ones, none),
    each wire's turn and end settings; one Places kept across several plans of the same texts
    (as system_lines.py keeps it), its layouts filled by the plans before."""
    moved = kept = 0
    for seed in range(300):
        rng = random.Random(seed)
        texts = _texts(rng)
        flat = list(chain.from_iterable(texts))
        shaped = _shaped(flat)
        stamps = [i for i in shaped if could_be_now(flat[i])]
        kept_places = Places(texts, flat)
        for _ in range(6):
            learned = {i for i in range(len(flat)) if rng.random() < 0.4}
            turn, ends = rng.random() < 0.7, rng.random() < 0.5
            expected = reference_plan(
                texts, learned, NOW, shaped, turn_takes_dates=turn, ends_pay=ends
            )
            for places in (kept_places, None, Places(texts, flat)):
                got = plan(
                    texts,
                    set(learned),
                    NOW,
                    shaped,
                    turn_takes_dates=turn,
                    ends_pay=ends,
                    flat=flat,
                    stamps=stamps,
                    places=places,
                )
                assert got == expected, (seed, texts, learned, turn, ends)
            moved += bool(expected.to_turn or expected.to_end)
            kept += bool(expected.kept)
    assert moved > 100, moved  # the plans compared do move lines
    assert kept > 100, kept  # and keep some, for each reason
