"""A body serialized from the bytes of the parts it shares with a parsed body.

`Pieces` maps the id of a parsed body's parts (each top-level value, each item of a
top-level list) to the object, its `orjson.dumps` bytes and its depth in that body; the entry
holds the object, so its id stays unique while it is held. Nothing mutates a parsed body
(rewrite/request.py: copy on write), so a body holding those very objects is written with
their bytes in their place and the rest dumped where it is: `splice(body, pieces) ==
orjson.dumps(body)`, raising where it raises (a piece is used no deeper than it was dumped
at).

A rewritten body holds objects the parse does not: a rewrite stage's output, which its memo
hands out again as the same objects for the same input (the system blocks, the tools in their
first-seen forms, the messages a breakpoint moved off). `Pieces.sent` keeps the parts the
last body spliced from these pieces held beyond them (at most that body's bytes, replaced by
each splice), so the next turn, which resends them, writes them from their bytes too.
"""

from __future__ import annotations

from itertools import compress, count, repeat
from operator import le
from typing import Any

import orjson

# A part's JSON: bytes, or a long one as a view of its dump (its bytes not copied again).
Json = bytes | memoryview
Piece = tuple[object, Json, int]
# A spliced body with a part at least this long goes upstream as its parts (`Parts`): that part
# written as it is, the shorter ones between such parts joined.
ALONE_FROM_BYTES = 16 * 1024
# A part of a body spliced before: the object, its bytes (a list's: the parts they join to),
# its depth.
SentPart = tuple[object, tuple[Json, ...], int]
# A dump this long is handed out as a view of it, without its brackets: slicing them off copied
# it (a new item of a Claude Code turn: ~25 KB).
VIEW_FROM_BYTES = 2048


class Pieces(dict[int, Piece]):
    """A parse's pieces by id, and (`sent`) the parts beyond them of the last body spliced."""

    __slots__ = ("sent",)

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.sent: dict[int, SentPart] = {}

    def copy(self) -> Pieces:
        copied = Pieces(self)
        copied.sent = self.sent
        return copied


class Parts:
    """A body as the bytes it is written from, in order (its JSON is `b"".join(parts)`), and
    its length: the upstream writes them one after another, without joining them first."""

    __slots__ = ("parts", "size")

    def __init__(self, parts: tuple[Json, ...], size: int) -> None:
        self.parts = parts
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __bytes__(self) -> bytes:
        return b"".join(self.parts)

    def __repr__(self) -> str:
        return f"Parts({len(self.parts)} parts, {self.size} bytes)"


Body = bytes | Parts  # a request body as it goes upstream


def as_bytes(body: Body) -> bytes:
    return body if type(body) is bytes else bytes(body)


def dumped(value: object, depth: int) -> Json:
    """`value`'s JSON as written at `depth` in a body (a value of the top dict is at 1, an
    item of a top-level list at 2): orjson refuses 255 levels of nesting, and a body it would
    refuse whole must not be written from pieces it accepts alone. A long one: a view of the
    dump (VIEW_FROM_BYTES)."""
    if depth == 1:
        out = orjson.dumps((value,))
        return out[1:-1] if len(out) < VIEW_FROM_BYTES else memoryview(out)[1:-1]
    out = orjson.dumps(((value,),))
    return out[2:-2] if len(out) < VIEW_FROM_BYTES else memoryview(out)[2:-2]


def piece(value: object, json: Json, depth: int) -> Piece:
    return value, json, depth


def splice(body: dict[str, Any], pieces: dict[int, Piece]) -> bytes:
    """`orjson.dumps(body)` (`spliced`'s bytes joined)."""
    return as_bytes(spliced(body, pieces))


def spliced(body: dict[str, Any], pieces: dict[int, Piece]) -> Body:
    """`orjson.dumps(body)`, the parts that are the very objects of `pieces` (a top-level
    value, an item of a top-level list) or of the parts the last body spliced from them held
    beyond them (`Pieces.sent`) written from their bytes, the others dumped where they are:
    every part's bytes joined once, at the body's size (orjson's output of fragments grew
    its buffer by copies: ~2 copies of the body more for 340 KB); a long body's parts
    (`joined`) are left for the upstream to write, unjoined."""
    get = pieces.get
    before = pieces.sent if isinstance(pieces, Pieces) else {}
    sent: dict[int, SentPart] = {}
    out: list[Json] = []
    add, extend = out.append, out.extend
    alone: list[int] = []  # where in `out` the parts of ALONE_FROM_BYTES or more are
    mark, least = alone.append, ALONE_FROM_BYTES
    head = b"{"
    for name, value in body.items():
        if type(name) is not str:
            return orjson.dumps(body)  # raises as it does
        key = id(value)
        found = get(key)
        if found is not None and found[0] is value:
            add(head + orjson.dumps(name) + b":")
            if len(found[1]) >= least:
                mark(len(out))
            add(found[1])
        elif (again := before.get(key)) is not None and again[0] is value and again[2] == 1:
            add(head + orjson.dumps(name) + b":")
            alone.extend(compress(count(len(out)), map(le, repeat(least), map(len, again[1]))))
            extend(again[1])
            sent[key] = again
        elif type(value) is list:
            add(head + orjson.dumps(name) + b":")
            start = len(out)
            add(b"[")
            for item in value:
                if len(out) > start + 1:
                    add(b",")
                key = id(item)
                found = get(key)
                if found is not None and found[0] is item and found[2] == 2:
                    part = found[1]
                elif (again := before.get(key)) is not None and again[0] is item and again[2] == 2:
                    part = again[1][0]  # an item's parts: its bytes alone
                    sent[key] = again
                else:
                    part = dumped(item, 2)
                    sent[key] = (item, (part,), 2)
                if len(part) >= least:
                    mark(len(out))
                add(part)
            add(b"]")
            sent[id(value)] = (value, tuple(out[start:]), 1)
        else:
            add(head + orjson.dumps(name) + b":")
            part = dumped(value, 1)
            if len(part) >= least:
                mark(len(out))
            add(part)
            sent[key] = (value, (part,), 1)
        head = b","
    add(b"}" if out else b"{}")
    if isinstance(pieces, Pieces):
        pieces.sent = sent
    return joined(out, alone)


def joined(out: list[Json], alone: list[int]) -> Body:
    """`out` joined, or where it has parts of ALONE_FROM_BYTES or more (at `alone`, in
    order) its parts: each of those as it is, the runs of shorter ones between them joined
    (a write upstream costs more than copying a few KB)."""
    if not alone:
        return b"".join(out)
    parts: list[Json] = []
    start = 0
    for at in alone:
        if at > start:
            parts.append(b"".join(out[start:at]))
        parts.append(out[at])
        start = at + 1
    if start < len(out):
        parts.append(b"".join(out[start:]))
    return Parts(tuple(parts), sum(map(len, parts)))
