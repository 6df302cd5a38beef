"""bench/stages.py's steps, each made and run once for one body: the script names only what
the gateway still has (a method renamed there breaks `make bench-stages`, not a test)."""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[3] / "bench"
if str(BENCH) not in sys.path:  # the bench scripts' own imports (staging, harness)
    sys.path.insert(0, str(BENCH))

import stages  # noqa: E402

from gateway.settings import Settings  # noqa: E402


def test_every_step_of_the_smallest_body_runs() -> None:
    body = min(stages.all_bodies(), key=lambda b: len(b.raw))
    rows, facts = stages.run_body(Settings(), body, 0.0, 1)
    assert rows
    assert all(row.runs >= 1 for row in rows)
    assert facts["bytes"] == len(body.raw)
