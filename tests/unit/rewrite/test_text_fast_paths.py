"""The text stages' fast paths agree with the plain rules they stand for.

`whitespace.canonical_whitespace` trims a one-line text without looking for `" \\n"`, and
`_remembered` edits it without the memo. `shapes.shaped` finds a text's dated lines over
the whole text (digits by a bytes pass, then only the shape alternatives a line could
hold); the plain rule is the shape regexes on each line. Edge cases of the fast paths:
non-ASCII digits and whitespace, CRLF, tabs, a dated line first or last, no digit at all.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.cache.bounded import LearnedState
from gateway.cache.learned import LearnedMemory
from gateway.rewrite import digest
from gateway.rewrite.memo import CallMemo, Derived
from gateway.rewrite.movable import layout
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.shapes import (
    DAY_LEVEL,
    ISO_DATETIME,
    JUDGED_LINES,
    MAX_LINE_CHARS,
    TIME_LEVEL,
    is_volatile,
    shaped,
)
from gateway.rewrite.text import DATES_BLOCK_LINES, AnthropicSystem
from gateway.rewrite.whitespace import _remembered, _remembered_by_text, canonical_whitespace

_DIGIT = re.compile(r"\d")


def plain(line: str) -> bool:
    """The rule as it was judged line by line (a line past the bound is never dated)."""
    if not _DIGIT.search(line) or len(line) > MAX_LINE_CHARS:
        return False
    return bool(ISO_DATETIME.search(line) or TIME_LEVEL.search(line) or DAY_LEVEL.search(line))


def plain_shaped(text: str) -> list[int]:
    """The plain rule on a text's first JUDGED_LINES lines holding a digit."""
    holding = [i for i, line in enumerate(text.split("\n")) if _DIGIT.search(line)]
    lines = text.split("\n")
    return [i for i in holding[:JUDGED_LINES] if plain(lines[i])]


@pytest.mark.parametrize("digit", ["7", "٧"])  # the ASCII path and the line-by-line one
def test_a_hostile_prompt_is_judged_within_bounds(digit: str) -> None:
    """A line past MAX_LINE_CHARS is never dated (a 500 KB one cost ~250 ms to judge), and
    only a text's first JUDGED_LINES lines holding a digit are judged."""
    long_line = "ts " * 200_000 + "1796051200" + " Date: 2026-11-30 10:30"
    assert not is_volatile(long_line)
    assert shaped("head\n" + long_line, ["head", long_line]) == []
    dated = f"1{digit}:30 x"
    text = "\n".join([dated] * (3 * JUDGED_LINES))
    found = shaped(text, text.split("\n"))
    assert found == list(range(JUDGED_LINES))
    assert found == plain_shaped(text)


def test_a_long_user_turn_of_dates_is_not_a_block_of_dates() -> None:
    """The newest turn ending in a block of dates (where a move put them) is judged line by
    line only when it is a few lines long."""

    def body(lines: int) -> dict[str, Any]:
        text = "\n".join(["Date: 2026-11-30"] * lines)
        return {"messages": [{"role": "user", "content": [{"type": "text", "text": text}]}]}

    assert AnthropicSystem().dated_turn(body(DATES_BLOCK_LINES - 1), is_volatile) == (0, 0)
    assert AnthropicSystem().dated_turn(body(DATES_BLOCK_LINES + 1), is_volatile) is None


@pytest.mark.parametrize(
    ("line", "dated"),
    [
        ("Datum: ٢٠٢٦-١١-٣٠", True),  # Arabic-Indic digits are `\d` too
        ("Zeit: ١٠:٣٠ Uhr", True),
        ("full width ２０２６-１１-３０", True),
        ("Monday,\u2003November\u200330", True),  # Unicode whitespace is `\s`
        ("Monday, January\t5", True),
        ("January\t5", False),  # a month and a day alone are no shape
        ("Mon, 5 Jan 2026", True),
        ("ts=1796051200123", True),
        ("ts 179605120", False),  # nine digits
        ("crlf 10:30\r", True),
        ("Épée à 12:30", True),
        ("Épée, 12 tomes", False),
        ("Décembre 5", False),
        ("Decade 5", False),
        ("May5", False),
        ("v1-2", False),  # a hint (digit-dash-digit) the shapes reject
        ("", False),
        ("\u00a0", False),
    ],
)
def test_a_line_is_dated_as_the_plain_rule_says(line: str, dated: bool) -> None:
    assert plain(line) is dated
    assert is_volatile(line) is dated
    assert shaped(line, [line]) == ([0] if dated else [])


@pytest.mark.parametrize(
    "text",
    [
        "",
        "\n",
        "no digit at all\nnor here",
        "2026-11-30 first line\nmiddle\nlast line 10:30",
        "a\r\nb 10:30\r\nc",
        "\ttabbed 11/30/2026\t\n\n",
        "٢٠٢٦-١١-٣٠\nascii 3 only\nüber 4 Tage\nnon-ASCII ١٢ alone",
        "x" * 2000 + " 2026-11-30\n" + "y" * 2000,
        "November\n30",  # a shape across a line end is no line's shape
    ],
)
def test_a_texts_dated_lines_are_those_of_the_plain_rule(text: str) -> None:
    assert shaped(text, text.split("\n")) == plain_shaped(text)


TOKENS = [
    "2026-11-30", "10:30", "11/30/26", "November 30", "Mon, 30 Nov 2026", "Monday, November",
    " 1796051200", "12:3", "٢٠٢٦-١١-٣٠", "١٠:٣٠", "2026", "-", "11", ":", "/", " ", "\t",
    "\u2003", "\u00a0", "T", "Z", "January", "Jan", "Mon", ",", "5th", "AM", "p.m.", "timestamp",
    "now", "1796051200", "1/2/26", "9:05", "Sun, 1 Jan 2026", "May 1, 2026", "Friday, May 1",
    "٢", "２０", "word", "é", "\r", "\n", "12", "Decade", "May", "_", "a1",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=16).map("".join))
def test_any_texts_dated_lines_are_those_of_the_plain_rule(text: str) -> None:
    lines = text.split("\n")
    assert shaped(text, lines) == plain_shaped(text)
    assert [is_volatile(line) for line in lines] == [plain(line) for line in lines]


def plain_whitespace(text: str) -> str:
    """canonical_whitespace as it was, without the one-line path."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "\n".join(line.rstrip(" \t") for line in text.split("\n")).rstrip(" \t\n")
    lead = len(text) - len(text.lstrip(" \t\n"))
    return text[text.rfind("\n", 0, lead) + 1 :] if lead else text


@pytest.mark.parametrize(
    "text",
    [
        "one line",
        "one line \t ",
        "  leading kept",
        "\t",
        "",
        "x" * 5000 + "  ",  # long enough to be looked up, one line: edited instead
        "crlf\r\n",
        "cr only\r",
        "tab before end\t\nnext",
        "nbsp stays\u00a0",  # only spaces and tabs are trimmed
        "em space stays\u2003\nnext\u2003 ",
        "\n\n  first text  \n  second\t\n\n",
    ],
)
def test_canonical_whitespace_is_the_plain_rule(text: str) -> None:
    assert canonical_whitespace(text) == plain_whitespace(text)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=" \t\r\n\u00a0\u2003ab", max_size=20))
def test_any_texts_whitespace_is_the_plain_rule(text: str) -> None:
    assert canonical_whitespace(text) == plain_whitespace(text)


@pytest.mark.parametrize(
    ("remembered", "key"),
    [
        (_remembered, lambda text: digest.content(text.encode())),
        (_remembered_by_text, lambda text: text),  # where the digest is blake2b's
    ],
)
def test_a_long_one_line_text_is_edited_without_the_memo(remembered: Any, key: Any) -> None:
    view = LearnedMemory.within(LearnedState.default()).memo
    assert view is not None
    memo = CallMemo(view, b"tenant")
    edit = remembered(memo)
    assert edit("y" * 5000 + " \t") == "y" * 5000
    assert edit("z" * 5000 + "\n ") == "z" * 5000  # two lines: looked up, then kept
    kept = [o for o in memo.observed(LLMRequest("anthropic", {})).observations]
    assert [key for seen in kept if isinstance(seen, Derived) for key, _, _ in seen.entries] == [
        ("whitespace", key("z" * 5000 + "\n "))
    ]


def test_a_digest_found_with_another_text_is_not_taken() -> None:
    """The digest keys the lookup; the text kept with it decides (a collision is edited)."""
    view = LearnedMemory.within(LearnedState.default()).memo
    assert view is not None
    text = "a \n" * 2000
    found = ("whitespace", digest.content(text.encode()))
    view.learn(Derived(b"tenant", ((found, ("another text", "its form"), 9),)))
    edit = _remembered(CallMemo(view, b"tenant"))
    assert edit(text) == canonical_whitespace(text)


@pytest.mark.parametrize(
    ("lines", "enclosed", "ends_enclosed", "last_heading"),
    [
        (["a", "<env>", "x", "</env>", "b"], [False, True, True, True, False], False, -1),
        (["\u2003<env>\u2003", "x", "# in"], [True, True, True], True, 2),
        (["<a b>", "<c>", "y", "</a b>", "z"], [True, True, True, True, False], False, -1),
        (["x < y", "#no", "   ### h", "    # code"], [False] * 4, False, 2),
    ],
)
def test_a_layout_reads_tags_and_headings_only_where_they_can_be(
    lines: list[str], enclosed: list[bool], ends_enclosed: bool, last_heading: int
) -> None:
    found = layout(lines)
    assert (found.enclosed, found.ends_enclosed, found.last_heading) == (
        enclosed,
        ends_enclosed,
        last_heading,
    )
