"""The shapes of a date or a time, and which lines of a text hold one (is_volatile).

The volatile rule (volatile.py, movable.py) judges every line of a system prompt. Judged one
line at a time by the three shape regexes this cost ~1.5 ms on Claude Code's 239-line
prompt: each opens with `\\b` and alternations of names, which leaves sre no character to
scan for, so it tries a match at every position; and the `\\d` prefilter checks each
character's Unicode category. `shaped` finds the same lines (exactly: a test compares it
with the per-line rule on generated texts) in steps that each rule lines out cheaply or
pass them on:
1. the lines holding a digit, from one bytes pass over the whole text (all but ASCII digits
   and line ends deleted; a text holding a digit beyond ASCII is judged line by line);
2. on each, only the alternatives whose every match the line could hold: a colon and 3
   digits for a time of day, a dash and 8 for an ISO date, ten digits for an epoch stamp,
   a month's name for a written date...;
3. those opening with `\\b\\d` as one regex led by `\\d`, which sre scans for, and with
   `[0-9]` where the text's digits are all ASCII (a range check, not a Unicode category).

Bounded for a hostile prompt: judging costs ~10 us a KB of a line holding digits, so a line
longer than MAX_LINE_CHARS (a paragraph or data, not a date line a client moves every call)
is never volatile, and only a text's first JUDGED_LINES lines holding a digit are judged
(a 500 KB line of digits cost ~250 ms of the event loop, 62,500 short dated lines ~400 ms).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

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
# Each alternative of DAY_LEVEL and TIME_LEVEL alone too (`_has_shape` runs one only where
# a line holds what its every match holds).
_ISO_DAY = r"\b\d{4}-\d{2}-\d{2}\b"
_WEEKDAY_MONTH = rf"\b(?:{_DAYS}),?\s+(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?\b"
_MONTH_DAY_YEAR = rf"\b(?:{_MONTHS})\s+\d{{1,2}}(?:st|nd|rd|th)?,\s+\d{{4}}\b"
_RFC_DAY = rf"\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun),\s+\d{{1,2}}\s+(?:{_MONS})\s+\d{{4}}\b"
_SLASHED_DAY = r"\b\d{1,2}/\d{1,2}/\d{2,4}\b"
_CLOCK = r"\b\d{1,2}:\d{2}(?::\d{2})?\s?(?:[AaPp]\.?[Mm]\.?)?\b"
_STAMP = r"(?i:\b(?:timestamp|time|epoch|now|ts|unix)\b\W{0,3}\d{10}(?:\d{3})?\b)"
DAY_LEVEL = re.compile(
    "|".join((_ISO_DAY, _WEEKDAY_MONTH, _MONTH_DAY_YEAR, _RFC_DAY, _SLASHED_DAY))
)
TIME_LEVEL = re.compile("|".join((_CLOCK, _STAMP)))
_BOUNDED = r"\d(?<!\w\d)"  # `\b\d` (a digit, no word character before it), led by `\d`


def _after_first_digit(pattern: str) -> str:
    for lead, rest in ((r"\b\d{4}", r"\d{3}"), (r"\b\d{1,2}", r"\d?")):
        if pattern.startswith(lead):
            return rest + pattern.removeprefix(lead)
    raise ValueError(pattern)


class _Tests:
    r"""The tests `_has_shape` runs, with a digit spelt `digit` (`\d`, or `[0-9]`: the same
    on a line whose digits are all ASCII, a range check per character where `\d` checks a
    Unicode category, ~2x faster). `numeric` is the alternatives that open with `\b\d`
    (ISO_DATETIME without its optional tail, a time of day, an ISO or slashed date) in one
    regex led by `_BOUNDED`, which sre scans for: one scan for four, each ~5x faster."""

    def __init__(self, digit: str) -> None:
        def search(pattern: str) -> Callable[[str], re.Match[str] | None]:
            return re.compile(pattern.replace(r"\d", digit)).search

        bounded = [
            r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}",  # ISO_DATETIME
            _CLOCK,
            _ISO_DAY,
            _SLASHED_DAY,
        ]
        # After `_BOUNDED`'s digit: `\b\d{4}` goes on with `\d{3}`, `\b\d{1,2}` with `\d?`.
        tails = [_after_first_digit(alt) for alt in bounded]
        self.numeric = search(_BOUNDED + "(?:" + "|".join(tails) + ")")
        self.ten_digits = search(r"\d{10}")
        self.stamp = search(_STAMP)
        self.weekday_month = search(_WEEKDAY_MONTH)
        self.month_day_year = search(_MONTH_DAY_YEAR)
        self.rfc_day = search(_RFC_DAY)


_UNICODE = _Tests(r"\d")
_ASCII = _Tests("[0-9]")
_MONTH_NAME = re.compile(_MONTHS).search  # led by a month's first letter: scanned for
_WEEKDAY_COMMAS = [f"{day}," for day in ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")]
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


def _has_shape(line: str, tests: _Tests, digits: int) -> bool:
    """Whether a line holds a date or time shape: whether ISO_DATETIME, TIME_LEVEL or
    DAY_LEVEL matches it. `digits`: how many digits it holds, at most. Their alternatives
    run only on a line holding the characters and the digits their every match holds
    (each of the three took ~10 us on a long line: they open with `\\b` and names, which
    leaves sre nothing to scan for)."""
    colon, dash, slash, comma = ":" in line, "-" in line, "/" in line, "," in line
    if (
        (colon and digits >= 3) or (dash and digits >= 8) or (slash and digits >= 4)
    ) and tests.numeric(line):
        return True
    if digits >= 10 and tests.ten_digits(line) and tests.stamp(line):
        return True
    day, dated = "day" in line, comma and digits >= 5
    if dated and any(weekday in line for weekday in _WEEKDAY_COMMAS) and tests.rfc_day(line):
        return True
    if not (day or dated) or _MONTH_NAME(line) is None:
        return False
    return bool((day and tests.weekday_month(line)) or (dated and tests.month_day_year(line)))


MAX_LINE_CHARS = 2048
JUDGED_LINES = 256  # Claude Code's 239-line prompt has 22 lines holding a digit


def is_volatile(line: str) -> bool:
    """Whether a line holds something shaped like a date or a time."""
    if len(line) > MAX_LINE_CHARS:
        return False
    # Every shape above has a digit: most lines are dismissed by one scan.
    if line.isascii():
        return has_digit(line) and _has_shape(line, _ASCII, len(line))
    return _DIGIT.search(line) is not None and _has_shape(line, _UNICODE, len(line))


_DIGIT_LINE = re.compile(r"^[^\n\d]*\d", re.MULTILINE)  # a line's start to its first digit


def _holding_digits(text: str) -> list[int]:
    """The indexes of a text's first JUDGED_LINES lines holding a digit (`\\d`), by one
    regex over the text, not a call per line."""
    found: list[int] = []
    line = at = 0
    for match in _DIGIT_LINE.finditer(text):
        line += text.count("\n", at, match.start())
        at = match.start()
        found.append(line)
        if len(found) == JUDGED_LINES:
            break
    return found


_ASCII_BYTES = bytes(range(128))
_NOT_DIGITS = bytes(b for b in range(256) if b not in b"0123456789\n")


def shaped(text: str, lines: Sequence[str]) -> list[int]:
    """The indexes of the lines (`lines` is `text.split("\\n")`) that hold a date or time
    shape: those is_volatile holds, found without a Python call per line that holds no
    digit. A text whose only digits are ASCII (nearly all) is kept to its digits and line
    ends by one bytes pass, which says which lines hold one."""
    raw = text.encode("utf-8", "surrogatepass")
    if not text.isascii():
        beyond = raw.translate(None, _ASCII_BYTES).decode("utf-8", "surrogatepass")
        if _DIGIT.search(beyond):  # a digit beyond ASCII: each line judged alone
            return [i for i in _holding_digits(text) if is_volatile(lines[i])]
    digits = raw.translate(None, _NOT_DIGITS)
    if len(digits) < len(lines):  # only the line ends: no digit anywhere
        return []
    parts = [(i, part) for i, part in enumerate(digits.split(b"\n")) if part]
    return [
        i
        for i, part in parts[:JUDGED_LINES]
        if len(lines[i]) <= MAX_LINE_CHARS and _has_shape(lines[i], _ASCII, len(part))
    ]
