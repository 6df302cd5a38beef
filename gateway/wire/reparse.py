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

from gateway.wire.splice import dumped as _dumped
from gateway.wire.splice import piece
from gateway.wire.turn import Held, Sent, Turn, item_ends, learn

_COMMA = 44
LAST_ITEMS = 3  # items at the end of the array tried one by one
# How many of the last members after the array may differ (Codex: client_metadata).
LAST_MEMBERS = 3
_NEAR = 1024
# How much longer the members after one tried by name may have grown (Codex's metadata: a
# few bytes a turn); a search from further back through a body of another client, which
# lacks the name, would cost ~0.5 us a KB.
MOVED_BYTES = 16 * 1024


def common_prefix(a: bytes, b: bytes | memoryview, limit: int, at: int = 0) -> int:
    """The length of the longest common prefix of `a[at:]` and `b`, at most `limit`: a
    search by halves, each step one memcmp (`startswith` on a memoryview: ~12 us for 340 KB,
    where comparing two memoryviews goes item by item, ~900 us)."""
    hi = max(min(limit, len(a) - at, len(b)), 0)
    view = memoryview(b)
    if a.startswith(view[:hi], at):
        return hi
    lo = 0  # a[at:at + lo] == b[:lo], a[at:at + hi] != b[:hi]
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a.startswith(view[lo:mid], at + lo):
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


def _members(raw: bytes, turn: Turn) -> tuple[int, int, bytes] | None:
    """Where `raw` repeats `turn`'s members after the array: (where its tail begins in `raw`,
    how many members repeat, the bytes after them: `,` members `}`, b"" if all repeat).
    Members at the end may differ (Codex's `client_metadata` names its turn): the first that
    differs is found by its name, searched from the end (a short needle: a long one's search
    can take milliseconds), and the members before it must then be the turn's bytes. Else a
    member further in may differ in its bytes but not its length (Claude Code's `metadata`,
    its session id, after `system` and `tools`: a new session's first turn): the tail then
    begins where it does in the turn, counted from the end (no search: a body of another
    conversation costs two short memcmps), and the members that repeat are those wholly
    inside the bytes it shares with the tail there."""
    kept_raw, members, close = turn.raw, turn.members, turn.close
    size = len(kept_raw) - close  # the tail's
    view = memoryview(kept_raw)[close:]
    if raw.endswith(view):
        return len(raw) - size, len(members), b""
    for kept in range(len(members) - 1, max(len(members) - 1 - LAST_MEMBERS, -1), -1):
        at = members[kept]
        name = kept_raw[close + at : kept_raw.index(b'":', close + at) + 2]  # `,"name":`
        # Near where it was from the end: a body without the name is not read through.
        found = raw.rfind(name, max(turn.start, len(raw) - size + at - MOVED_BYTES))
        begins = found - at
        near = max(at - _NEAR, 0)  # the bytes just before first: a member further in that
        # differs (a new session's) is told in one short memcmp, not one over the whole tail
        if (
            found >= 0
            and begins >= turn.start
            and raw.startswith(view[near:at], begins + near)
            and raw.startswith(view[:near], begins)
        ):
            return begins, kept, raw[found:]
    if len(members) <= LAST_MEMBERS:
        return None  # each member was tried above
    # A member further in changed, not its length (a session id): the tail ends where it did.
    begins = len(raw) - size
    if begins < turn.start or not raw.startswith(view[: members[0] + 2], begins):
        return None
    # The first member that differs: the last to begin within the bytes shared with the tail.
    kept = bisect_right(members, common_prefix(raw, view, size, begins)) - 1
    return None if kept < 1 else (begins, kept, raw[begins + members[kept] :])


def _match(raw: bytes, turn: Turn) -> _Match | None:
    """Where `raw` repeats `turn`'s head, items and members after the array (`_members`)."""
    found = _members(raw, turn)
    if found is None:
        return None
    close, kept, rest = found
    if close < turn.start:
        return None
    ends, view = turn.ends, memoryview(turn.raw)
    # A conversation's next turn repeats all but the last few items (Claude Code moves its
    # breakpoint off the last message): each of those is compared alone, from the last, and
    # the bytes before the first that repeats in one memcmp, before a search by halves.
    for shared in range(len(ends), max(len(ends) - LAST_ITEMS, 0), -1):
        begin = ends[shared - 2] if shared > 1 else turn.start
        if ends[shared - 1] <= close and raw.startswith(view[begin : ends[shared - 1]], begin):
            if raw.startswith(view[:begin]):
                break
            shared = 0  # a change further in: searched below
            break
    else:
        shared = 0
    if not shared:
        common = common_prefix(raw, turn.raw, close)
        if common < turn.start:
            return None
        shared = bisect_right(ends, common)
    cut = ends[shared - 1] if shared else turn.start
    if 2 * (cut + len(raw) - close - len(rest)) < len(raw):
        return None  # less than half reused: parsing whole costs less than the new items' learning
    return _Match(shared, cut, close, kept, rest)


def reparse(raw: bytes, held: Iterable[Held]) -> tuple[dict[str, Any], Held, Turn | None] | None:
    """`orjson.loads(raw)` from the held body it shares most items with: (the parse, that
    body, the new body's own turn if its new parts are canonical too); None: parse it whole.
    A `Sent` body is learned here if `raw` resembles it."""
    best: tuple[Held, Turn, _Match] | None = None
    for entry in held:
        if best is not None and isinstance(entry, Turn) and not _may_beat(raw, entry, best[2]):
            continue  # it cannot share more items than the best: not compared
        turn = entry if isinstance(entry, Turn) else _learned(entry, raw)
        found = None if turn is None else _match(raw, turn)
        if (
            turn is not None
            and found is not None
            and (best is None or found.shared > best[2].shared)
        ):
            best = entry, turn, found
            if found.shared == len(turn.ends):
                break  # all its items: the conversation's previous turn (held first)
    if best is None:
        return None
    entry, base, match = best
    begin = match.cut  # where the new items begin: past the `,` after the shared ones
    if match.shared and match.close > begin:
        if raw[begin] != _COMMA or match.close == begin + 1:
            return None
        begin += 1
    try:
        # The new items as one array: their bytes copied once (a Claude Code turn: ~25 KB).
        middle = b"".join((b"[", memoryview(raw)[begin : match.close], b"]"))
        new = orjson.loads(middle) if match.close > begin else []
        if match.shared and match.close > match.cut and not new:
            return None  # `,` then only whitespace before the `]`: a trailing comma
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
    # The kept parse's values by name, then the array's: made in C (a comprehension's test
    # and lookup a name cost ~11 bytecodes: Codex sends 13), `key` keeping its place.
    parsed = dict(zip(names, map(base.parsed.__getitem__, names), strict=True))
    parsed[key] = items
    parsed.update(after)
    if entry is base and _repeats(raw, base, match):
        # Its bytes are the base's (a retry, one body from several connections): the base is
        # its turn, so turns.py keeps it in its place, found by identity, not compared whole.
        return parsed, entry, base
    return parsed, entry, _extended(raw, parsed, base, match, begin, new, after)


def _may_beat(raw: bytes, turn: Turn, best: _Match) -> bool:
    """Whether `turn` may share more items with `raw` than `best` does: it must have more, and
    the first of them past `best`'s must be `raw`'s item there, where `best`'s shared ones
    end in both (the same bytes from the same offset end at the same place; the head
    before the array is `raw`'s in both). One item compared, not the tail and the head: a
    tenant's turns of one conversation each share the same items with the next body."""
    shared, ends = best.shared, turn.ends
    if len(ends) <= shared:
        return False
    begin = ends[shared - 1] if shared else turn.start
    if begin != best.cut:
        return False
    return raw.startswith(memoryview(turn.raw)[begin : ends[shared]], begin)


def _repeats(raw: bytes, base: Turn, match: _Match) -> bool:
    """Whether `raw` is `base.raw`, from what the match compared: each item (the bytes up to
    the last one's end), nothing before the array's `]`, and the whole tail, at one length."""
    return (
        len(raw) == len(base.raw)
        and not match.rest
        and match.shared == len(base.ends)
        and match.cut == match.close == base.close
    )


def _learned(sent: Sent, raw: bytes) -> Turn | None:
    return learn(sent.raw, sent.parsed) if sent.resembles(raw) else None


def _extended(
    raw: bytes,
    parsed: dict[str, Any],
    base: Turn,
    match: _Match,
    begin: int,
    new: list[Any],
    after: dict[str, Any],
) -> Turn | None:
    """The new body's turn: the base's, its items past `shared` replaced by `new` (their
    bytes from `begin` to the array's `]`) and its last members by `after` (dumped: their
    bytes must be the body's, else it is not kept)."""
    kept_items = base.parsed[base.key]
    shared = match.shared
    pieces = base.pieces
    ends = base.ends
    if new or shared < len(kept_items) or begin < match.close:  # (the last: whitespace)
        pieces = pieces.copy()
        for item in kept_items[shared:]:
            pieces.pop(id(item), None)
        try:
            found = item_ends(raw, begin, new, pieces)
        except orjson.JSONEncodeError:
            return None
        if found is None or (found[-1] if found else begin) != match.close:
            return None
        ends = base.ends[:shared] + tuple(found)
    members = base.members
    if match.rest:
        if pieces is base.pieces:
            pieces = pieces.copy()
        for name in list(base.parsed)[len(base.parsed) - len(base.members) + match.kept :]:
            pieces.pop(id(base.parsed[name]), None)
        at = match.close + members[match.kept]  # where the first of `after` begins in `raw`
        members = members[: match.kept]
        try:
            for name, value in after.items():
                dumped = _dumped(value, 1)
                head = b"," + orjson.dumps(name) + b":"
                if not (raw.startswith(head, at) and raw.startswith(dumped, at + len(head))):
                    return None
                members += (at - match.close,)
                pieces[id(value)] = piece(value, dumped, 1)
                at += len(head) + len(dumped)
        except orjson.JSONEncodeError:
            return None
        if at != len(raw) - 1 or not raw.endswith(b"}"):
            return None
    return Turn(raw, parsed, base.key, base.start, ends, match.close, members, pieces)
