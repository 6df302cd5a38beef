"""bench/stages.py's tables: steps down, bodies across, in µs per call, per KB, or as the
change from an earlier run's `--json`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

KB = 1024


@dataclass(frozen=True)
class Row:
    step: str
    part_of: bool  # a part of a step above, already in its time
    median_us: float
    runs: int


Results = dict[str, tuple[list[Row], dict[str, Any]]]
Value = Callable[[str, Row], float | None]  # (body, row) -> the cell, None: none


def table(results: Results, value: Value, digits: int, sign: str = "") -> str:
    """Steps down, bodies across; the total sums the steps that are not parts of another."""
    names = list(results)
    order: list[str] = []
    for steps_of, _ in results.values():
        at = 0  # a step only some bodies have goes after the step before it in theirs
        for step in steps_of:
            key = _key(step.step)
            if key in order:
                at = order.index(key) + 1
            else:
                order.insert(at, key)
                at += 1
    width = max(len(_short(n)) for n in names) + 2
    head = f"{'step':<30}" + "".join(f"{_short(n):>{width}}" for n in names)
    lines = [head, "-" * len(head)]
    totals = dict.fromkeys(names, 0.0)
    rows = {n: {_key(r.step): r for r in results[n][0]} for n in names}
    for key in order:
        cells = []
        for n in names:
            row = rows[n].get(key)
            cell = None if row is None else value(n, row)
            if row is None or cell is None:
                cells.append(f"{'-':>{width}}")
                continue
            if not row.part_of:
                totals[n] += cell
            cells.append(f"{cell:>{sign}{width}.{digits}f}")
        lines.append(f"{key:<30}" + "".join(cells))
    lines.append("-" * len(head))
    lines.append(f"{'total':<30}" + "".join(f"{totals[n]:>{sign}{width}.{digits}f}" for n in names))
    kb = "".join(f"{results[n][1]['bytes'] / KB:>{width}.0f}" for n in names)
    lines.append(f"{'body KB':<30}" + kb)
    return "\n".join(lines)


def per_call(_: str, row: Row) -> float:
    return row.median_us


def per_kb(results: Results) -> Value:
    return lambda name, row: row.median_us / (results[name][1]["bytes"] / KB)


def change_from(before: dict[str, Any]) -> Value:
    """µs more (+) or less (-) than a `--json` file of an earlier run says."""

    def change(name: str, row: Row) -> float | None:
        steps = {_key(step): us for step, us in before.get(name, {}).get("steps", {}).items()}
        was = steps.get(_key(row.step))
        return None if was is None else row.median_us - was

    return change


def _short(name: str) -> str:
    return name.replace("claude-code-", "cc-").replace("-turn", "")


def _key(step: str) -> str:
    """A step's row: the event count and skip note differ per body."""
    return step.split(" (")[0] if step.startswith(("tap.stream", "serialize (")) else step
