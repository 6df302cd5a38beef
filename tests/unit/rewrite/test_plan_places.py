"""The volatile rule's plan (movable.py) looks only at the lines that vary, through the
system part's Places (places.py, kept with its lines and reused by every call that sends
them): it plans what a walk of every line planned, on random prompts, whether the Places are
new or have served other plans of the same prompt before."""

from __future__ import annotations

import datetime as dt
import random
from itertools import chain

import pytest

from gateway.rewrite.movable import (
    NOTHING,
    could_be_now,
    plan,
)
from gateway.rewrite.places import Places
from gateway.rewrite.shapes import is_volatile
from tests.support.reference_plan import reference_plan as walked_plan

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
