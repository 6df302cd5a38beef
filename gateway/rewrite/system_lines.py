"""A system part's lines as the volatile rule judges them (volatile.py): each text's lines,
which hold a date shape, the first line holding none, and each line's key for the learned
counts (cache/lines.py) — derived once per distinct system part.

The same system prompt comes on every call of a prompt family, so what is derived from it is
looked up: by the identity of its texts where a body shares an earlier accepted call's parsed
objects (rewrite/memo.py's `get_same`: a dict lookup, whatever the prompt's size), else by
their value (their content digests, the texts compared), else derived, a long text's own analysis
looked up by value first (one block of several changed). The value found is the same object
every call, so its `distinct` key set is too: the learned counts recognize a set they counted
last by identity (lines.py), and a repeated prompt costs no per-line work at all.
"""

from __future__ import annotations

import operator
from itertools import chain, repeat
from typing import NamedTuple

from gateway.rewrite import digest
from gateway.rewrite.memo import MIN_CHARS, CallMemo, chars
from gateway.rewrite.movable import could_be_now, first_undated
from gateway.rewrite.places import Places
from gateway.rewrite.shapes import shaped

KIND = "volatile.system"  # the memo's kind (and value key) for a system part's lines

# A text's lines, the indexes of those holding a date shape (is_volatile), each line's key.
Analysis = tuple[tuple[str, ...], tuple[int, ...], tuple[int, ...]]


def line_key(line: str) -> int:
    """A line as the learned line counts know it: the built-in hash, which the counts can use
    because they never leave the process (a blake2b digest per line was 97 us of Claude
    Code's 239 lines, this is 5)."""
    return hash(line)


class SystemLines(NamedTuple):
    """A pure function of `texts` (the system part's texts, in order). A named tuple: made
    on every call of a short system part, where a frozen dataclass's init cost ~2 us."""

    texts: tuple[str, ...]
    split: tuple[tuple[str, ...], ...]  # each text's lines
    flat: tuple[str, ...]  # all texts' lines, in order: the indexes below are into these
    shapes: tuple[int, ...]  # the lines holding a date shape
    stamps: tuple[int, ...]  # those that could be a "now" stamp (movable.could_be_now)
    first: bytes  # the first line that is not blank and holds no date shape (its UTF-8)
    keys: tuple[int, ...]  # each line's key (line_key)
    distinct: frozenset[int]  # the keys as a set: what the family's counts count
    places: Places  # where the lines sit, for the plans (movable.py), filled in on first use

    @classmethod
    def of(cls, texts: tuple[str, ...], analysed: list[Analysis]) -> SystemLines:
        if len(analysed) == 1:  # most system parts: one text
            lines, shapes_of, keys_of = analysed[0]
            first = first_undated((lines,), shapes_of).encode()
            stamps = tuple(i for i in shapes_of if could_be_now(lines[i]))
            return cls(
                texts,
                (lines,),
                lines,
                shapes_of,
                stamps,
                first,
                keys_of,
                frozenset(keys_of),
                Places((lines,), lines),
            )
        split = tuple(lines for lines, _, _ in analysed)
        shapes: list[int] = []
        at = 0
        for lines, text_shaped, _ in analysed:
            shapes += [at + j for j in text_shaped] if at else text_shaped
            at += len(lines)
        keys = tuple(chain.from_iterable(text_keys for _, _, text_keys in analysed))
        flat = tuple(chain.from_iterable(split))
        return cls(
            texts,
            split,
            flat,
            tuple(shapes),
            tuple(i for i in shapes if could_be_now(flat[i])),
            first_undated(split, shapes).encode(),
            keys,
            frozenset(keys),
            Places(split, flat),
        )

    @property
    def size(self) -> int:
        """The bytes it holds beside its texts, estimated: the lines (a second copy), and per
        line a slot in split, flat and keys, a key and a slot of the set, and what its
        places may come to hold (a slot among the filled lines and one in its text's layout;
        a layout per text)."""
        return sum(map(chars, self.texts)) + 136 * len(self.keys) + 200 * len(self.texts)


def analysed(text: str, memo: CallMemo | None, content: object = None) -> Analysis:
    """A text's lines, which hold a date shape and their keys: looked up by value for a long
    text an earlier call sent too (`content`: its value key, `_content`, if made already)."""
    if memo is None or len(text) < MIN_CHARS:
        lines = tuple(text.split("\n"))
        # map(hash): line_key without a Python call per line.
        return lines, tuple(shaped(text, lines)), tuple(map(hash, lines))
    key = ("lines", _content(text) if content is None else content)
    found: tuple[str, Analysis] | None = memo.get(key)
    if found is not None and found[0] == text:
        return found[1]
    analysis = analysed(text, None)
    memo.keep(key, (text, analysis), 2 * chars(text) + 100 * len(analysis[0]))
    return analysis


def _content(text: str) -> object:
    """A long text as a value key: the content digest of an ASCII text's bytes (a copy and
    xxh3: ~5 us over 115 KB, where the built-in hash of a fresh parse's text, never cached,
    is ~40), the text itself where it is wider or the digest is blake2b's. A digest keys
    the lookup, never the answer: the entry holds the text, compared before it is taken."""
    if digest.ALGORITHM == "xxh3" and text.isascii():
        return digest.content(text.encode("ascii"))
    return text


def system_lines(texts: tuple[str, ...], memo: CallMemo | None) -> SystemLines:
    """`texts`' lines: by identity, by value, or derived (the module's docstring). A short
    system part (below MIN_CHARS in all) is derived: that costs about what a lookup does."""
    if memo is None or sum(map(len, texts)) < MIN_CHARS:
        return SystemLines.of(texts, [analysed(text, None) for text in texts])
    same: tuple[tuple[str, ...], SystemLines] | None = memo.get_same(KIND, texts[0])
    if same is not None and _same_texts(same[0], texts):
        return same[1]
    contents = tuple(map(_content, texts))
    found: SystemLines | None = memo.get((KIND, *contents))
    if found is None or found.texts != texts:
        found = SystemLines.of(texts, list(map(analysed, texts, repeat(memo), contents)))
        memo.keep((KIND, *contents), found, found.size)
    # Kept by these very texts too (those `found` holds may be another call's, equal to
    # them): a call that shares them finds it by their identity.
    memo.keep_same(KIND, texts[0], (texts, found), sum(map(chars, texts)) + 100)
    return found


def _same_texts(held: tuple[str, ...], texts: tuple[str, ...]) -> bool:
    """Whether these are the very texts held with the entry (the first is, by its lookup)."""
    return len(held) == len(texts) and all(map(operator.is_, held, texts))
