"""Where a system prompt's lines sit, as the volatile rule's plan (movable.py) asks it: which
lines are inside a tag-delimited section, where a text's last markdown heading is, which
lines are not blank and which text holds a line. Derived once per system prompt and kept
with its lines (system_lines.py), so a plan looks only at the lines that vary.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from itertools import accumulate, compress, count

SECTION_OPEN = re.compile(r"^\s*<([A-Za-z][\w:-]*(?: [A-Za-z][\w-]*)*)>\s*$")
SECTION_CLOSE = re.compile(r"^\s*</([A-Za-z][\w:-]*(?: [A-Za-z][\w-]*)*)>\s*$")
HEADING = re.compile(r"^\s{0,3}#{1,6}\s")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a text's lines sit: inside a tag-delimited section or not; and where its last
    markdown heading is."""

    enclosed: list[bool]
    ends_enclosed: bool
    last_heading: int  # the index of the text's last heading line, -1 if none


def layout(lines: Sequence[str]) -> Layout:
    open_tags: list[str] = []
    at: dict[str, list[int]] = {}  # each open tag's places in open_tags: closing is O(1) amortized
    enclosed: list[bool] = []
    last_heading = -1
    for j, line in enumerate(lines):
        # A tag line holds a "<", a heading a "#": one memchr each spares most lines three
        # regex calls (a 239-line prompt's layout: ~3x faster).
        if "<" not in line:
            enclosed.append(bool(open_tags))
        elif match := SECTION_OPEN.match(line):
            at.setdefault(match[1], []).append(len(open_tags))
            open_tags.append(match[1])
            enclosed.append(True)  # the tag lines are the section's own
        elif (match := SECTION_CLOSE.match(line)) and at.get(match[1]):
            cut = at[match[1]][-1]  # closes its section and any left open inside it
            for tag in open_tags[cut:]:
                at[tag].pop()
            del open_tags[cut:]
            enclosed.append(True)
        else:
            enclosed.append(bool(open_tags))
        if "#" in line and HEADING.match(line):
            last_heading = j
    return Layout(enclosed, bool(open_tags), last_heading)


class Places:
    """Where a system part's lines sit, for its plans: derived once per system part (kept
    with its lines, system_lines.py), so a plan walks the lines that vary, not every line.
    Each text's first index, the lines that are not blank (found once asked for) and each
    text's layout (made once asked for): pure functions of the texts, filled in on first use."""

    __slots__ = ("_filled", "_layouts", "flat", "starts", "texts")

    def __init__(self, texts: Sequence[Sequence[str]], flat: Sequence[str]) -> None:
        self.texts = texts
        self.flat = flat
        self.starts = tuple(accumulate(map(len, texts), initial=0))
        self._filled: tuple[int, ...] | None = None
        self._layouts: dict[int, Layout] = {}

    def filled(self) -> tuple[int, ...]:
        """The indexes of the lines that are not blank, in order (one pass in C)."""
        if self._filled is None:
            self._filled = tuple(compress(count(), map(str.strip, self.flat)))
        return self._filled

    def text_of(self, i: int) -> int:
        return bisect_right(self.starts, i) - 1

    def layout(self, t: int) -> Layout:
        found = self._layouts.get(t)
        if found is None:
            found = self._layouts[t] = layout(self.texts[t])
        return found

    def filled_of(self, t: int | None) -> tuple[int, int]:
        """The range of `filled()` in text `t` (all of it for None)."""
        filled = self.filled()
        if t is None:
            return 0, len(filled)
        return bisect_left(filled, self.starts[t]), bisect_left(filled, self.starts[t + 1])

    def last_stable(self, varying: AbstractSet[int], t: int | None = None) -> int:
        """The last line that is not blank and not in `varying`, in text `t` (in all for
        None), -1 if none: a walk back over the lines that vary, not every line."""
        filled = self.filled()
        lo, hi = self.filled_of(t)
        for k in range(hi - 1, lo - 1, -1):
            if filled[k] not in varying:
                return filled[k]
        return -1
