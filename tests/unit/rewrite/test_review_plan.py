"""The volatile rule's plan over a system part's Places (movable.py, places.py) is the plan
that walked every line: the same moves and reasons, whatever the texts, the lines learned
to vary and the Places kept from earlier plans of the same texts."""

from __future__ import annotations

import datetime as dt
import random
from collections.abc import Sequence
from itertools import chain

from gateway.rewrite.movable import (
    could_be_now,
    plan,
)
from gateway.rewrite.places import Places
from tests.support.reference_plan import reference_plan

NOW = dt.datetime(2026, 11, 24, 10, 40, tzinfo=dt.UTC)


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
