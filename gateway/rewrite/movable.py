"""Which system-prompt lines the volatile rule may move, and where: the rules that keep meaning.

The rule moves text only where it actually varies, and never changes the structure around it:
- A line holding a date or time moves to the newest user turn (the one documented role
  change) only when it varies: a "now" stamp — a time of day or an epoch stamp within a
  day of the request's time — or a line learned to vary across the calls of its prompt
  family (cache/lines.py) that is not just today's date. An example date in static
  instructions never moves (nor is it reported), and today's date alone stays: every call
  of the day shares it, so moving it would only cost its tokens uncached on every call.
- A learned line (a user's name, a project's folder) stays in the text that holds it (a
  system block, a message, a part): it moves only to that text's end, where the provider
  caches by token prefix (OpenAI), and only if stable text followed it. On Anthropic a
  cache entry ends at a block's end, so a move inside a block saves nothing, and a block
  of its own would change the system's structure: there it stays.
- No line leaves a tag-delimited section (`<env>` … `</env>`, a tag alone on its line), a
  learned line crosses no markdown heading, and no text is emptied (its block or message
  would go). A line that varies but cannot move is left in place and reported.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

from gateway.rewrite.places import Places
from gateway.rewrite.places import layout as layout  # where callers have found it

_MON = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = r"(Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|Sep(?:tember)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)"  # noqa: E501
ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})")
MONTH_DAY = re.compile(rf"\b{_MONTH}\s+(\d{{1,2}})(?:st|nd|rd|th)?\b(?:,?\s+(\d{{4}})\b)?")
DAY_MONTH = re.compile(rf"\b(\d{{1,2}})\s+{_MONTH}\s+(\d{{4}})\b")
SLASHED = re.compile(r"\b(\d{1,2})/(\d{1,2})/(\d{2,4})\b")
TIME_OF_DAY = re.compile(r"(?<!\d)\d{1,2}:\d{2}(?!\d)")
EPOCH = re.compile(r"(?i:\b(?:timestamp|time|epoch|now|ts|unix)\b\W{0,3}(\d{10}(?:\d{3})?)\b)")
_TEN_DIGITS = re.compile(r"\d{10}")  # what every EPOCH match holds
NEAR = dt.timedelta(days=1)  # a stamp this close to the request's time is "now"


def _day(year: int, month: int, day: int) -> dt.date | None:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def dates_in(line: str, today: dt.date) -> list[dt.date]:
    """The calendar dates a line names (a date without a year: the one nearest today)."""
    found: list[dt.date | None] = [
        _day(int(y), int(m), int(d)) for y, m, d in ISO_DATE.findall(line)
    ]
    for month, day, year in MONTH_DAY.findall(line):
        number = _MON.index(month[:3]) + 1
        years = [int(year)] if year else [today.year - 1, today.year, today.year + 1]
        candidates = [d for y in years if (d := _day(y, number, int(day))) is not None]
        found.append(min(candidates, key=lambda d: abs(d - today), default=None))
    for day, month, year in DAY_MONTH.findall(line):
        found.append(_day(int(year), _MON.index(month[:3]) + 1, int(day)))
    for a, b, year in SLASHED.findall(line):
        full = int(year) + 2000 if len(year) == 2 else int(year)
        found += [_day(full, int(a), int(b)), _day(full, int(b), int(a))]  # m/d or d/m
    return [d for d in found if d is not None]


def is_now_stamp(line: str, now: dt.datetime) -> bool:
    """A time of day on a date within a day of `now`, or an epoch stamp within a day of it."""
    # Each regex only where its every match could be: they open with `\b` or a lookbehind,
    # which leaves sre nothing to scan for (~15 us on a 300-character line).
    for match in EPOCH.finditer(line) if _TEN_DIGITS.search(line) else ():
        seconds = int(match[1]) / (1000 if len(match[1]) == 13 else 1)
        if abs(seconds - now.timestamp()) <= NEAR.total_seconds():
            return True
    if ":" not in line or not TIME_OF_DAY.search(line):
        return False
    today = now.date()
    return any(abs(d - today) <= NEAR for d in dates_in(line, today))


def could_be_now(line: str) -> bool:
    """Whether a line holds what a "now" stamp holds, whatever the time (is_now_stamp is
    false for a line this is false for): judged once per system prompt, not per call."""
    if _TEN_DIGITS.search(line) and EPOCH.search(line):
        return True
    return ":" in line and TIME_OF_DAY.search(line) is not None


def is_todays_date(line: str, now: dt.datetime) -> bool:
    """Only a date, no time, and every date it names within a day of `now`."""
    today = now.date()
    dates = dates_in(line, today)
    return (
        bool(dates) and not TIME_OF_DAY.search(line) and all(abs(d - today) <= NEAR for d in dates)
    )


@dataclass(frozen=True, slots=True)
class Moves:
    """What the volatile rule does with a system prompt's lines (indexes into its lines,
    all texts in order)."""

    varying_dates: frozenset[int]  # lines with a date that varies (reported)
    personal: frozenset[int]  # lines learned to vary, without a date (reported)
    to_turn: frozenset[int]  # dated lines for the end of the newest user turn
    to_end: frozenset[int]  # learned lines for the end of the text holding them
    kept: tuple[str, ...] = ()  # why each line that varies and would gain stays

    def detail(self) -> str:
        reasons: dict[str, int] = {}  # a Counter's init was ~2 us of a call that keeps one
        for why in self.kept:
            reasons[why] = reasons.get(why, 0) + 1
        return f"{len(self.kept)} line(s) left in place: " + ", ".join(
            f"{n} {why}" for why, n in reasons.items()
        )


NOTHING = Moves(frozenset(), frozenset(), frozenset(), frozenset())


def plan(
    texts: Sequence[Sequence[str]],
    learned: set[int],
    now: dt.datetime,
    shaped: Sequence[int],
    *,
    turn_takes_dates: bool,
    ends_pay: bool,
    flat: Sequence[str] | None = None,
    stamps: Sequence[int] | None = None,
    places: Places | None = None,
) -> Moves:
    """`texts`: the system prompt's texts, as lines; `learned`: the indexes cache/lines.py
    learned to vary; `turn_takes_dates`: whether a user turn can take moved dates;
    `shaped`: the indexes of the lines holding a date shape (is_volatile), in order;
    `ends_pay`: whether moving a line to its text's end can save anything (token-prefix
    caching) — if not, learned lines stay; `flat`: the texts' lines in one sequence, where
    the caller has it; `stamps`: those of `shaped` that could_be_now, where it has them;
    `places`: the texts' Places, where the caller keeps them (a plan then looks only at the
    lines that vary and the stable lines just before them, whatever the prompt's size)."""
    if not shaped and not learned:
        return NOTHING  # most prompts of prose: no line to look at
    if flat is None:
        flat = list(chain.from_iterable(texts))
    now_stamps = {i for i in (shaped if stamps is None else stamps) if is_now_stamp(flat[i], now)}
    dated = {
        i for i in shaped if i in now_stamps or (i in learned and not is_todays_date(flat[i], now))
    }
    personal = learned.difference(shaped)
    if not dated and not personal:
        return NOTHING  # most prompts: no line varies, no line is looked at again
    varying = dated | personal
    at = Places(texts, flat) if places is None else places
    kept: list[str] = []

    # The last stable line, in all and in each text: what a move would put it after.
    last_stable = at.last_stable(varying)

    per_text: dict[int, int] = {}  # each text's, walked once: lines at a text's end vary

    def stable_after(i: int, same_text: bool) -> bool:
        if not same_text:
            return last_stable > i
        t = at.text_of(i)
        if t not in per_text:
            per_text[t] = at.last_stable(varying, t)
        return per_text[t] > i

    to_turn: set[int] = set()
    for i in sorted(dated):
        if i not in now_stamps and not stable_after(i, same_text=False):
            continue  # nothing stable follows: moving it saves nothing
        t = at.text_of(i)
        if at.layout(t).enclosed[i - at.starts[t]]:
            kept.append("inside a <section>")
        elif not turn_takes_dates:
            kept.append("with no user turn to take a date")
        else:
            to_turn.add(i)
    by_text: dict[int, set[int]] = {}  # grouped once: many blocks may each hold a stamp
    for i in to_turn:
        by_text.setdefault(at.text_of(i), set()).add(i)
    for t, ours in sorted(by_text.items()):  # an emptied text would lose its block
        lo, hi = at.filled_of(t)
        if sum(1 for i in ours if flat[i].strip()) == hi - lo:  # its every filled line
            kept += ["would empty its block"] * len(ours)
            to_turn -= ours
    to_end: set[int] = set()
    for i in sorted(personal):
        if not stable_after(i, same_text=ends_pay):
            continue  # already after everything stable: nothing to gain
        t = at.text_of(i)
        j = i - at.starts[t]
        if not ends_pay:
            kept.append("would need a system block of its own")
        elif at.layout(t).enclosed[j] or at.layout(t).ends_enclosed:
            kept.append("inside a <section>")
        elif at.layout(t).last_heading > j:
            kept.append("would cross a heading")
        else:
            to_end.add(i)
    return Moves(
        frozenset(dated), frozenset(personal), frozenset(to_turn), frozenset(to_end), tuple(kept)
    )


def first_undated(texts: Sequence[Sequence[str]], shapes: Sequence[int]) -> str:
    """The first line that is not blank and holds no date shape ("" if none)."""
    skip = set(shapes)
    at = 0
    for text_lines in texts:
        for j, line in enumerate(text_lines):
            if at + j not in skip and line.strip():
                return line
        at += len(text_lines)
    return ""


def rebuilt(lines: Sequence[str], first: int, moves: Moves) -> str:
    """A text (its lines, the first at index `first`) without the lines moved to the turn,
    with its learned lines at its end (before any trailing blank lines)."""
    moved = moves.to_turn | moves.to_end
    keep = [line for j, line in enumerate(lines) if first + j not in moved]
    end = [line for j, line in enumerate(lines) if first + j in moves.to_end]
    blank = len(keep)
    while blank and not keep[blank - 1].strip():
        blank -= 1
    return "\n".join([*keep[:blank], *end, *keep[blank:]])
