"""The learned memory: what the rewrite stages read (rewrite/snapshot.py's `Learned`), and
where what they observed is kept once the provider has accepted the call."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.cache.bounded import LearnedState
from gateway.cache.lines import LineStats
from gateway.cache.memo import Memo
from gateway.cache.registry import PrefixRegistry
from gateway.cache.tool_forms import ToolForms
from gateway.rewrite.memo import Derived
from gateway.rewrite.snapshot import LinesSeen, Observation, TailJudged, ToolsSeen


@dataclass(frozen=True, slots=True)
class LearnedMemory:
    lines: LineStats
    tools: ToolForms
    prefixes: PrefixRegistry
    memo: Memo | None

    @classmethod
    def within(
        cls,
        state: LearnedState,
        learn_volatile_after: int = 5,
        memo: bool | LearnedState = True,
    ) -> LearnedMemory:
        """Every table in one bounded state (bounded.py), the memo in its own if given one
        (so a memo of large texts never pushes out what decides a rewrite: lines, tool
        forms, the registry); `memo=False`: every call derives everything anew (the
        reference the memo is tested and measured against)."""
        memo_state = memo if isinstance(memo, LearnedState) else state
        return cls(
            LineStats(learn_volatile_after, state=state),
            ToolForms(state),
            PrefixRegistry(state),
            Memo(memo_state) if memo is not False else None,
        )

    def learn(self, observations: Iterable[Observation]) -> None:
        # The most frequent first (a call's stages observe ~3 Derived, one LinesSeen, one
        # TailJudged): a class pattern's match cost more bytecodes than isinstance's call.
        for seen in observations:
            if isinstance(seen, Derived):
                if self.memo is not None:
                    self.memo.learn(seen)
            elif isinstance(seen, LinesSeen):
                self.lines.learn(seen)
            elif isinstance(seen, TailJudged):
                self.prefixes.tail_judged(seen.tenant, seen.step, seen.model)
            elif isinstance(seen, ToolsSeen):
                self.tools.learn(seen)
