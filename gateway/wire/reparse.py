"""A body parsed by reusing the caller's earlier one, and serialized by splicing known bytes.

An agent resends its conversation every turn: the same bytes up to somewhere in its one
growing array (`messages`, `input`), new items, then the same bytes again after it (Claude
Code sends `system` and `tools`, ~100 KB, after `messages`). A kept `Turn` holds a body's
bytes, its parse and the byte offset of each of that array's items. A new body that shares
the kept one's bytes up to an item's end and from the array's closing `]` on is parsed by
parsing only the items between, and its dict shares the kept parse's objects for the rest.

Why the result is `orjson.loads(body)`: a turn is kept only if its bytes are exactly
`orjson.dumps` of its parse (compact, no duplicate key, one value per member), so its head,
items and tail are where the walk below found them. JSON values are self-delimiting: the same
bytes up to an item's end parse to the same items with the lexer inside the array; the new
items, parsed on their own as `[` middle `]`, are complete values, so the lexer meets the kept
tail's `]` where it met it in the kept body, and the tail parses as it did. Anything else (no
common prefix or suffix, a middle that is not a list of values) takes the full parse.

A turn's `pieces` also serve serializing (splice.py): the id of each top-level value and of
each item of a top-level list, with the object and its `orjson.dumps` bytes.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.wire.splice import Pieces
from gateway.wire.splice import dumped as _dumped

# The arrays a conversation grows: Messages and Chat Completions, Responses.
GROWING = ("messages", "input")
_COMMA, _OPEN_ARRAY, _CLOSE_ARRAY = 44, 91, 93
# How many of the last members after the array may differ (Codex: client_metadata).
LAST_MEMBERS = 3


@dataclass(frozen=True, slots=True)
class Turn:
    """A body whose bytes are `orjson.dumps(parsed)`, and where its parts lie in them."""

    raw: bytes
    parsed: dict[str, Any]
    key: str  # the growing array's
    start: int  # the offset of its first item (just past its `[`)
    ends: tuple[int, ...]  # the offset just past each of its items
    tail: bytes  # from the array's `]` to the end
    members: tuple[int, ...]  # where each member after the array begins in `tail` (its `,`)
    pieces: Pieces

    @property
    def size(self) -> int:
        """Bytes held, estimated: the body, its pieces' bytes, its parse (about as much)."""
        return 3 * len(self.raw)


def learn(raw: bytes, parsed: dict[str, Any], keys: Iterable[str] = GROWING) -> Turn | None:
    """The turn of a body, if its bytes are `orjson.dumps(parsed)` and it has a growing
    array; None otherwise (it is then not kept). Costs about one `orjson.dumps`."""
    key = next((k for k in keys if isinstance(parsed.get(k), list)), None)
    if key is None or not raw.startswith(b"{"):
        return None
    pieces: Pieces = {}
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
                pieces[id(value)] = (value, dumped)
                pos += len(dumped)
                continue
            begin = pos
            at = _items(raw, pos + 1, value, pieces)
            if at is None or raw[at[-1]] != _CLOSE_ARRAY:
                return None
            if name == key:
                start, ends, close = pos + 1, tuple(at[1:]), at[-1]
            pos = at[-1] + 1
            pieces[id(value)] = (value, memoryview(raw)[begin:pos])
    except orjson.JSONEncodeError:
        return None  # nested past orjson's limit: dumped whole, it fails as it should
    if raw[pos:] != b"}":
        return None
    return Turn(raw, parsed, key, start, ends, raw[close:], tuple(members), pieces)


def _items(raw: bytes, pos: int, items: list[Any], pieces: Pieces) -> list[int] | None:
    """[the offset of the first item, then the offset past each], checking each item's bytes
    are its dumps and are followed by `,` or `]`; None if not. Adds the items to `pieces`."""
    at = [pos]
    if raw[pos - 1] != _OPEN_ARRAY:
        return None
    for i, item in enumerate(items):
        if i:
            if raw[pos] != _COMMA:
                return None
            pos += 1
        dumped = _dumped(item, 2)
        if not raw.startswith(dumped, pos):
            return None
        pieces[id(item)] = (item, dumped)
        pos += len(dumped)
        at.append(pos)
    return at if pos < len(raw) else None


def common_prefix(a: bytes, b: bytes, limit: int) -> int:
    """The length of the longest common prefix of `a` and `b`, at most `limit`: a search by
    halves, each step one memcmp (`startswith` on a memoryview: ~12 us for 340 KB, where
    comparing two memoryviews goes item by item, ~900 us)."""
    hi = min(limit, len(a), len(b))
    view = memoryview(b)
    if a.startswith(view[:hi]):
        return hi
    lo = 0  # a[:lo] == b[:lo], a[:hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a.startswith(view[lo:mid], lo):
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(frozen=True, slots=True)
class _Match:
    shared: int  # items shared with the turn
    cut: int  # where they end in the new body
    close: int  # where the turn's tail (its first `kept` members) begins in it
    kept: int  # the turn's members after the array that the new body repeats
    rest: bytes  # the new body's bytes after them (`,` members `}`), b"" if all repeat


def _match(raw: bytes, turn: Turn) -> _Match | None:
    """Where `raw` repeats `turn`'s head, items and members after the array. Members at the
    end may differ (Codex's `client_metadata` names its turn): the repeated ones are found
    by their bytes, which cannot occur inside a string (they hold an unescaped `"`)."""
    tail, members = turn.tail, turn.members
    if raw.endswith(tail):
        close, kept, rest = len(raw) - len(tail), len(members), b""
    else:
        view = memoryview(tail)
        for kept in range(len(members) - 1, max(len(members) - 1 - LAST_MEMBERS, 0), -1):
            close = raw.find(view[: members[kept]], turn.start)
            if close >= 0:
                rest = raw[close + members[kept] :]
                break
        else:
            return None
    if close < turn.start:
        return None
    common = common_prefix(raw, turn.raw, close)
    if common < turn.start:
        return None
    shared = bisect_right(turn.ends, common)
    return _Match(shared, turn.ends[shared - 1] if shared else turn.start, close, kept, rest)


def reparse(raw: bytes, held: Iterable[Turn]) -> tuple[dict[str, Any], Turn, Turn | None] | None:
    """`orjson.loads(raw)` from the held turn it shares most items with: (the parse, that
    turn, the new body's own turn if its new parts are canonical too); None: parse it whole."""
    best: tuple[Turn, _Match] | None = None
    for turn in held:
        found = _match(raw, turn)
        if found is not None and (best is None or found.shared > best[1].shared):
            best = turn, found
    if best is None:
        return None
    base, match = best
    middle = raw[match.cut : match.close]
    if match.shared and middle:
        if middle[0] != _COMMA or len(middle) == 1:
            return None
        middle = middle[1:]
    try:
        new = orjson.loads(b"[" + middle + b"]") if middle else []
        after = orjson.loads(b"{" + match.rest[1:]) if match.rest else {}
    except orjson.JSONDecodeError:
        return None
    if match.rest and (match.rest[0] != _COMMA or not isinstance(after, dict)):
        return None
    kept_items = base.parsed[base.key]
    same = not new and match.shared == len(kept_items)
    items = kept_items if same else [*kept_items[: match.shared], *new]
    key = base.key
    names = list(base.parsed)[: len(base.parsed) - len(base.members) + match.kept]
    if not after.keys().isdisjoint(names):
        return None  # a repeated key: the full parse says which value wins
    parsed = {name: items if name == key else base.parsed[name] for name in names}
    parsed.update(after)
    return parsed, base, _extended(raw, parsed, base, match, middle, new, after)


def _extended(
    raw: bytes,
    parsed: dict[str, Any],
    base: Turn,
    match: _Match,
    middle: bytes,
    new: list[Any],
    after: dict[str, Any],
) -> Turn | None:
    """The new body's turn: the base's, its items past `shared` replaced by `new` and its
    last members by `after` (dumped: their bytes must be the body's, else it is not kept)."""
    kept_items = base.parsed[base.key]
    shared = match.shared
    pieces = base.pieces
    ends = base.ends
    if new or shared < len(kept_items):
        pieces = dict(pieces)
        for item in kept_items[shared:]:
            pieces.pop(id(item), None)
        found = _new_items(middle, new, pieces, match.cut + 1 if shared else match.cut)
        if found is None:
            return None
        ends = base.ends[:shared] + found
    tail, members = base.tail, base.members
    if match.rest:
        if pieces is base.pieces:
            pieces = dict(pieces)
        for name in list(base.parsed)[len(base.parsed) - len(base.members) + match.kept :]:
            pieces.pop(id(base.parsed[name]), None)
        tail = raw[match.close :]
        at = members[match.kept]
        members = members[: match.kept]
        try:
            for name, value in after.items():
                dumped = _dumped(value, 1)
                head = b"," + orjson.dumps(name) + b":"
                if not tail.startswith(head + dumped, at):
                    return None
                members += (at,)
                pieces[id(value)] = (value, dumped)
                at += len(head) + len(dumped)
        except orjson.JSONEncodeError:
            return None
        if tail[at:] != b"}":
            return None
    return Turn(raw, parsed, base.key, base.start, ends, tail, members, pieces)


def _new_items(
    middle: bytes, new: list[Any], pieces: Pieces, offset: int
) -> tuple[int, ...] | None:
    """The offsets past each new item in the body (`middle` begins at `offset`), if `middle`
    is their dumps joined by commas; each added to `pieces`."""
    ends = []
    at = 0
    try:
        for i, item in enumerate(new):
            if i:
                if middle[at] != _COMMA:
                    return None
                at += 1
            dumped = _dumped(item, 2)
            if not middle.startswith(dumped, at):
                return None
            pieces[id(item)] = (item, dumped)
            at += len(dumped)
            ends.append(offset + at)
    except (orjson.JSONEncodeError, IndexError):
        return None
    return tuple(ends) if at == len(middle) else None
