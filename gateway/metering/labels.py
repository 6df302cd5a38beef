"""Bounded label values: a client's headers and model names never grow metric cardinality."""

from __future__ import annotations

from collections.abc import Iterable

NO_STEP = "none"
OTHER = "other"


class LabelBounds:
    def __init__(self, steps: Iterable[str], models: Iterable[str]) -> None:
        self._steps = frozenset(steps)
        self._models = frozenset(models)

    def step(self, label: str | None) -> str:
        if label is None:
            return NO_STEP
        return label if label in self._steps else OTHER

    def model(self, name: str | None) -> str:
        return name if name in self._models else OTHER
