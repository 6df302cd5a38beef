"""The shapes of a date or a time, and which lines of a text hold one (is_volatile).

The volatile rule (volatile.py, movable.py) judges every line of a system prompt. Judged one
line at a time with the three shape regexes this cost ~1.5 ms on Claude Code's 239-line
prompt: each regex opens with `\\b` and an alternation of names, which leaves sre no
character to scan for, so it tries a match at every position; and the `\\d` prefilter
checks each character's Unicode category. `shaped` finds the same lines in three cheaper
steps, each exact or a necessary condition that the next step confirms:
1. the lines holding a digit, in one C-level pass over the whole text (its UTF-8 bytes with
   everything but digits, line ends and non-ASCII bytes deleted); a line with non-ASCII
   bytes and no ASCII digit is checked for a non-ASCII digit (`\\d` matches those too);
2. of those, the lines with what every shape needs (`_HINT`: a digit beside `-`, `:` or
   `/`, ten digits in a row, or a month's name beside a number);
3. those judged by the shape regexes themselves, as before.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_MONTHS = "January|February|March|April|May|June|July|August|September|October|November|December"
_MONS = "Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec"
_DAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"
# The shapes of a date or time (volatile.py reports and moves the lines holding one).
ISO_DATETIME = re.compile(
    r"\b(\d{4}-\d{2}-\d{2})[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
RFC_2822 = re.compile(
    rf"\b((?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s+\d{{1,2}}\s+(?:{_MONS})\s+\d{{4}})"
    r"\s+\d{2}:\d{2}(?::\d{2})?(?:\s+(?:[+-]\d{4}|GMT|UTC))?"
)
DAY_LEVEL = re.compile(
    rf"\b\d{{4}}-\d{{2}}-\d{{2}}\b"
    rf"|\b(?:{_DAYS}),?\s+(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
    rf"|\b(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?,\s+\d{{4}}\b"
    rf"|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s+\d{{1,2}}\s+(?:{_MONS})\s+\d{{4}}\b"
    r"|\b\d{1,2}/\d{1,2}/\d{2,4}\b"
)
TIME_LEVEL = re.compile(
    r"\b\d{1,2}:\d{2}(?::\d{2})?\s?(?:[AaPp]\.?[Mm]\.?)?\b"
    r"|(?i:\b(?:timestamp|time|epoch|now|ts|unix)\b\W{0,3}\d{10}(?:\d{3})?\b)"
)
# What a line matching any shape above holds (never enough by itself): a digit beside `-`,
# `:` or `/` (ISO dates and times, times of day, slashed dates), ten digits (an epoch
# stamp), a day number before an abbreviated month (RFC 2822) or a month's name before one.
# It opens with one character class (a digit or a month's first letter), which sre scans
# for; a lookbehind then says which it was.
_TAILS: dict[str, list[str]] = {}  # each month by its first letter: {"J": ["anuary", ...]}
for _month in _MONTHS.split("|"):
    _TAILS.setdefault(_month[0], []).append(_month[1:])
_MONTH_TAIL = "|".join(f"(?<={first})(?:{'|'.join(rest)})" for first, rest in _TAILS.items())
_HINT = re.compile(
    rf"[\d{''.join(_TAILS)}]"
    rf"(?:(?<=\d)(?:[-:/]\d|\d{{9}}|\s+(?:{_MONS})\s+\d)|(?:{_MONTH_TAIL})\s+\d)"
)
_DIGIT = re.compile(r"\d")


def has_digit(line: str) -> bool:
    """Whether a line holds a decimal digit (`\\d`): an ASCII line by ten memchr scans (0.2 us
    for 430 characters, where the regex's per-character category check takes 3 us)."""
    if line.isascii():
        return (
            "0" in line or "1" in line or "2" in line or "3" in line or "4" in line
            or "5" in line or "6" in line or "7" in line or "8" in line or "9" in line
        )  # fmt: skip
    return _DIGIT.search(line) is not None


def _has_shape(line: str) -> bool:
    """Whether a line that holds a digit holds a date or time shape."""
    return _HINT.search(line) is not None and (
        ISO_DATETIME.search(line) is not None
        or TIME_LEVEL.search(line) is not None
        or DAY_LEVEL.search(line) is not None
    )


def is_volatile(line: str) -> bool:
    """Whether a line holds something shaped like a date or a time."""
    # Every shape above has a digit: most lines are dismissed by one scan.
    return has_digit(line) and _has_shape(line)


# ASCII bytes but the digits and the line end: deleted, they leave each line's digits (and
# its non-ASCII characters' bytes, which never include an ASCII byte in UTF-8).
_NOT_DIGITS = bytes(b for b in range(128) if b not in b"0123456789\n")
_NON_ASCII = bytes(range(128, 256))


def _may_hold_digit(part: bytes) -> bool:
    """A line's kept bytes (digits and non-ASCII bytes): whether the line holds a digit."""
    if part.isascii() or part.translate(None, _NON_ASCII):
        return bool(part)  # an ASCII digit
    return _DIGIT.search(part.decode("utf-8", "surrogatepass")) is not None


def shaped(text: str, lines: Sequence[str]) -> list[int]:
    """The indexes of the lines (`lines` is `text.split("\\n")`) that hold a date or time
    shape: those is_volatile holds, found without a Python call per line."""
    kept = text.encode("utf-8", "surrogatepass").translate(None, _NOT_DIGITS)
    if len(kept) < len(lines):  # only the line ends: no digit anywhere
        return []
    return [
        i
        for i, part in enumerate(kept.split(b"\n"))
        if part and _may_hold_digit(part) and _has_shape(lines[i])
    ]
