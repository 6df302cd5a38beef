"""A body kept for the caller's next one (reparse.py): as it came (`Sent`), or learned
(`Turn`): its bytes are exactly `orjson.dumps` of its parse, and where each part lies in them
is known: the growing array's items, the members after it, and each top-level value's and
list item's bytes (splice.py's pieces)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.wire.splice import Pieces, piece
from gateway.wire.splice import dumped as _dumped

# The arrays a conversation grows: Messages and Chat Completions, Responses.
GROWING = ("messages", "input")
_COMMA, _OPEN_ARRAY, _CLOSE_ARRAY = 44, 91, 93


@dataclass(frozen=True, slots=True)
class Turn:
    """A body whose bytes are `orjson.dumps(parsed)`, and where its parts lie in them."""

    raw: bytes
    parsed: dict[str, Any]
    key: str  # the growing array's
    start: int  # the offset of its first item (just past its `[`)
    ends: tuple[int, ...]  # the offset just past each of its items
    close: int  # the offset of the array's `]`: the tail, from it to the end
    members: tuple[int, ...]  # where each member after the array begins in the tail (its `,`)
    pieces: Pieces

    @property
    def tail(self) -> memoryview:
        """The bytes from the array's `]` on (a view: a copy held them, ~100 KB of Claude
        Code's system prompt and tools)."""
        return memoryview(self.raw)[self.close :]

    @property
    def size(self) -> int:
        """Bytes held, estimated: the body, its pieces' bytes (~1.9x) and its parse
        (~1.5x: tracemalloc on Claude Code's 340 KB turn), and the parts of the last body
        spliced from it beyond its own (splice.py: at most that body's bytes; the rewritten
        objects they hold are the stages' memo's, counted there)."""
        return 6 * len(self.raw)


@dataclass(frozen=True, slots=True)
class Sent:
    """A body kept as it came, learned (made a Turn: ~1.5 orjson.dumps) only once a later
    body looks like its continuation, so a caller whose bodies never repeat pays nothing."""

    raw: bytes
    parsed: dict[str, Any]

    @property
    def size(self) -> int:
        return 2 * len(self.raw)

    def resembles(self, raw: bytes) -> bool:
        """Shares a quarter of its bytes with `raw` at the start or the end (two memcmps)."""
        quarter = len(self.raw) // 4
        view = memoryview(self.raw)
        return raw.startswith(view[:quarter]) or raw.endswith(view[len(self.raw) - quarter :])


Held = Turn | Sent


def learn(raw: bytes, parsed: dict[str, Any], keys: Iterable[str] = GROWING) -> Turn | None:
    """The turn of a body, if its bytes are `orjson.dumps(parsed)` and it has a growing
    array; None otherwise (it is then not kept). Costs about one `orjson.dumps`."""
    key = next((k for k in keys if isinstance(parsed.get(k), list)), None)
    if key is None or not raw.startswith(b"{"):
        return None
    pieces = Pieces()
    pos, start, close = 1, 0, -1
    ends: tuple[int, ...] = ()
    members: list[int] = []
    try:
        for i, (name, value) in enumerate(parsed.items()):
            if close >= 0:
                members.append(pos - close)
            head = (b"," if i else b"") + orjson.dumps(name) + b":"
            if not raw.startswith(head, pos):
                return None
            pos += len(head)
            if not isinstance(value, list):
                dumped = _dumped(value, 1)
                if not raw.startswith(dumped, pos):
                    return None
                pieces[id(value)] = piece(value, dumped, 1)
                pos += len(dumped)
                continue
            begin = pos
            at = _items(raw, pos + 1, value, pieces)
            if at is None or raw[at[-1]] != _CLOSE_ARRAY:
                return None
            if name == key:
                start, ends, close = pos + 1, tuple(at[1:]), at[-1]
            pos = at[-1] + 1
            if name != key:  # the growing array changes every turn: its items are pieces
                pieces[id(value)] = piece(value, raw[begin:pos], 1)
    except orjson.JSONEncodeError:
        return None  # nested past orjson's limit: dumped whole, it fails as it should
    if raw[pos:] != b"}":
        return None
    return Turn(raw, parsed, key, start, ends, close, tuple(members), pieces)


def item_ends(raw: bytes, pos: int, items: list[Any], pieces: Pieces) -> list[int] | None:
    """The offset past each of `items` in `raw` from `pos`, if their bytes there are their
    dumps joined by commas; None if not. Adds the items to `pieces`. Raises
    orjson.JSONEncodeError for an item nested past orjson's limit."""
    ends: list[int] = []
    for item in items:
        if ends:
            if raw[pos : pos + 1] != b",":
                return None
            pos += 1
        dumped = _dumped(item, 2)
        if not raw.startswith(dumped, pos):
            return None
        pieces[id(item)] = (item, dumped, 2)
        pos += len(dumped)
        ends.append(pos)
    return ends


def _items(raw: bytes, pos: int, items: list[Any], pieces: Pieces) -> list[int] | None:
    """[the offset of the first item, then the offset past each], checking the items follow
    a `[` and are followed by more bytes (`,` or `]`); None if not."""
    if raw[pos - 1] != _OPEN_ARRAY:
        return None
    ends = item_ends(raw, pos, items, pieces)
    if ends is None or (ends[-1] if ends else pos) >= len(raw):
        return None
    return [pos, *ends]
