"""The text stages' fast paths agree with the plain rules they stand for.

`shapes.shaped` finds a text's dated lines over the whole text (digits by a bytes pass, then
a necessary-condition regex, then the shape regexes); the plain rule is the shape regexes
on each line. Edge cases of the fast path: non-ASCII digits and whitespace, CRLF, tabs, a
dated line first or last, texts with no digit at all.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.rewrite.shapes import DAY_LEVEL, ISO_DATETIME, TIME_LEVEL, is_volatile, shaped

_DIGIT = re.compile(r"\d")


def plain(line: str) -> bool:
    """The rule as it was judged line by line."""
    if not _DIGIT.search(line):
        return False
    return bool(ISO_DATETIME.search(line) or TIME_LEVEL.search(line) or DAY_LEVEL.search(line))


def plain_shaped(text: str) -> list[int]:
    return [i for i, line in enumerate(text.split("\n")) if plain(line)]


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
