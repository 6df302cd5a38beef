"""The volatile rule's plan (movable.py) looks only at the lines that vary, through the
system part's Places (places.py, kept with its lines and reused by every call that sends
them): it plans what a walk of every line planned, on random prompts, whether the Places are
new or have served other plans of the same prompt before."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from itertools import chain

import pytest

from gateway.rewrite.movable import (
    NOTHING,
    Moves,
    could_be_now,
    is_now_stamp,
    is_todays_date,
    layout,
    plan,
)
from gateway.rewrite.places import Layout, Places
from gateway.rewrite.shapes import is_volatile

NOW = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
POOL = [
    "",
    "  ",
    "You are a coding agent.",
    "Ask before deleting files.",
    "<env>",
    "</env>",
    "<context>",
    "</context>",
    "# Rules",
    "## Notes",
    "Current time: 2026-12-01 09:58",
    "Today's date: 2026-12-01",
    "For example 2019-03-04 was a Monday.",
    f"ts {int(NOW.timestamp()) - 60}",
    "Name: Alice",
    "Folder: /home/alice/project",
]


def walked_plan(
    texts: Sequence[Sequence[str]],
    learned: set[int],
    now: dt.datetime,
    shaped: Sequence[int],
    *,
    turn_takes_dates: bool,
    ends_pay: bool,
) -> Moves:
    """The plan as it was: every line of every text walked on each call that plans."""
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


def _texts(rng: random.Random) -> list[list[str]]:
    weights = [4, 1, 6, 3, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1, 2, 2]
    return [
        rng.choices(POOL, weights, k=rng.randint(1, 12)) for _ in range(rng.choice((1, 1, 2, 3, 5)))
    ]


@pytest.mark.parametrize("seed", range(200))
def test_a_plan_by_places_is_the_plan_of_every_line(seed: int) -> None:
    rng = random.Random(seed)
    texts = _texts(rng)
    flat = list(chain.from_iterable(texts))
    shaped = [i for i, line in enumerate(flat) if is_volatile(line)]
    stamps = [i for i in shaped if could_be_now(flat[i])]
    kept = Places(texts, flat)  # one prompt's Places, serving each of its plans in turn
    for _ in range(8):
        learned = {i for i in range(len(flat)) if rng.random() < 0.25}
        now = NOW + dt.timedelta(days=rng.choice((0, 0, 0, 3)))
        flags = {"turn_takes_dates": rng.random() < 0.8, "ends_pay": rng.random() < 0.5}
        walked = walked_plan(texts, learned, now, shaped, **flags)
        assert plan(texts, learned, now, shaped, **flags) == walked
        found = plan(texts, learned, now, shaped, flat=flat, stamps=stamps, places=kept, **flags)
        assert found == walked
    # What the rule skips planning for (volatile.py): no line could be a "now" stamp, none
    # is learned. Nothing then moves or is reported, whatever the date.
    if not stamps:
        for days in (0, 1, 400):
            now = NOW + dt.timedelta(days=days)
            assert walked_plan(texts, set(), now, shaped, turn_takes_dates=True, ends_pay=True) == (
                NOTHING
            )


def test_a_line_after_the_varying_ones_is_the_stable_one_they_would_move_after() -> None:
    texts = [["a", "Name: Bob", "", "b", "Name: Ann", " "], ["Name: Cy", "c"]]
    places = Places(texts, list(chain.from_iterable(texts)))
    assert places.filled() == (0, 1, 3, 4, 6, 7)
    assert places.last_stable({1, 4, 7}) == 6
    assert places.last_stable({1, 4}, 0) == 3
    assert places.last_stable({6, 7}, 1) == -1
    assert [places.text_of(i) for i in range(8)] == [0] * 6 + [1] * 2
