"""A plan's work grows with the lines it looks at, not with their square (movable.py over
places.py): counted in steps (line events of the plan's own code), not timed."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Callable
from types import FrameType
from typing import Any

from gateway.rewrite import movable, places
from gateway.rewrite.movable import plan
from gateway.rewrite.places import Places

NOW = dt.datetime(2026, 11, 24, 10, 40, tzinfo=dt.UTC)
OURS = frozenset({movable.__file__, places.__file__})


def _steps(run: Callable[[], object]) -> int:
    """The lines the plan's modules execute while `run` runs (a loop's every pass)."""
    steps = 0

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal steps
        steps += event == "line"
        return local

    def calls(frame: FrameType, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename in OURS else None

    sys.settrace(calls)
    try:
        run()
    finally:
        sys.settrace(None)
    return steps


def _learned_at_the_end(n: int) -> int:
    """An OpenAI system message (ends pay) whose last `n` lines were learned to vary (passages
    retrieved for each call, a listing that changes): each is a candidate for the end."""
    texts = (("Answer from the passages below.", *[f"passage {k}" for k in range(n)]),)
    flat = texts[0]
    learned = set(range(1, n + 1))
    return _steps(
        lambda: plan(
            texts,
            learned,
            NOW,
            (),
            turn_takes_dates=True,
            ends_pay=True,
            flat=flat,
            stamps=(),
            places=Places(texts, flat),
        )
    )


def _stamps_in_many_blocks(n: int) -> int:
    """`n` system blocks, each a "now" stamp before a stable line: each stamp goes to the
    turn, none empties its block."""
    texts = tuple((f"Current time: 2026-11-24 10:{k % 60:02d}", "Stable.") for k in range(n))
    flat = tuple(line for text in texts for line in text)
    shaped = tuple(range(0, 2 * n, 2))
    return _steps(
        lambda: plan(
            texts,
            set(),
            NOW,
            shaped,
            turn_takes_dates=True,
            ends_pay=False,
            flat=flat,
            stamps=shaped,
            places=Places(texts, flat),
        )
    )


def test_learned_lines_at_a_texts_end_cost_steps_in_proportion() -> None:
    assert _learned_at_the_end(400) <= 2.5 * _learned_at_the_end(200)


def test_stamps_in_many_blocks_cost_steps_in_proportion() -> None:
    assert _stamps_in_many_blocks(400) <= 2.5 * _stamps_in_many_blocks(200)
