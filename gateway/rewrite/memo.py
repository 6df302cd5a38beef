"""Work proportional to what changed: a stage looks up what it derived from a part of an
earlier call's body instead of deriving it again.

A conversation's turn resends the previous turn's bytes and adds a few blocks: the texts'
canonical forms, the system prompt's lines and the tools' identities are the same as last
turn's. Each is a pure function of its key (the text itself, or the bytes sent), looked up
in the learned memory's memo (snapshot.py's `MemoView`); what a call derived anew goes back
as a `Derived` observation, kept once the provider accepts the call. The memo is invisible
in the output: the same body rewrites the same way with or without it.

Only parts of at least MIN_CHARS are memoized: below that, deriving costs less than a lookup
(a shorter text's canonical form takes ~0.5 us, a lookup ~0.7).
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:  # the request and the view import this module: its values come first
    from gateway.rewrite.request import LLMRequest
    from gateway.rewrite.snapshot import MemoView

MIN_CHARS = 1024
# An entry's key tuple and value beside the texts they hold: with it the learned state counts
# 1.5 MB for the 1.1 MB the recorded Claude Code session's memo holds (tracemalloc).
ENTRY_BYTES = 200


class Derived(NamedTuple):
    """What the stages derived from parts of a body that a later call may repeat (a text's
    canonical form, a system text's lines, a tool's identity): each a pure function of its
    key, kept once the provider has accepted the call, so the next turn of a conversation,
    which resends this one's bytes, looks them up (below). (key, value, bytes held). A
    tuple, made at once (a frozen dataclass sets each field apart; up to five a call)."""

    tenant: bytes
    entries: tuple[tuple[Hashable, object, int], ...]


def chars(text: str) -> int:
    """The bytes a text holds, at most (CPython keeps an ASCII text in one byte a character)."""
    return len(text) if text.isascii() else 4 * len(text)


def call_memo(view: MemoView | None, tenant: bytes) -> CallMemo | None:
    return None if view is None else CallMemo(view, tenant)


def observed(memo: CallMemo | None, request: LLMRequest) -> LLMRequest:
    return request if memo is None else memo.observed(request)


def derived(memo: CallMemo | None) -> tuple[Derived, ...]:
    """`CallMemo.derived`, none without a memo."""
    return () if memo is None else memo.derived()


class CallMemo:
    """One call's view of the memo: its lookups, and what it derived anew."""

    __slots__ = ("_derived", "_new", "_tenant")

    def __init__(self, view: MemoView, tenant: bytes) -> None:
        self._derived = view.derived  # bound once: a stage looks up ~10 parts a call
        self._tenant = tenant
        self._new: list[tuple[Hashable, object, int]] = []

    # `get` and `get_same` answer Any: each kind's value is what its `keep` stored, which
    # the caller names by annotating the variable it takes it in (a `typing.cast` is a
    # Python call: ~10 a call).
    def get(self, key: Hashable) -> Any:
        return self._derived(self._tenant, key)

    def keep(self, key: Hashable, value: object, size: int) -> None:
        self._new.append((key, value, size + ENTRY_BYTES))

    def get_same(self, kind: str, part: object) -> Any:
        """What `kind` derived from this very object (`keep_same`), if kept: a body whose
        bytes repeat an earlier call's shares that call's parsed objects (prefix reuse),
        so a part seen before is found by identity, without reading its bytes."""
        # (part, value): the entry holds `part` itself, so no other object has its id meanwhile.
        found: Any = self._derived(self._tenant, (kind, id(part)))
        if found is None or found[0] is not part:
            return None
        return found[1]

    def keep_same(self, kind: str, part: object, value: object, size: int) -> None:
        """Keeps `value`, a pure function of `part`'s value, for lookups by its identity;
        `size`: the bytes `part` and `value` hold."""
        self.keep((kind, id(part)), (part, value), size)

    def derived(self) -> tuple[Derived, ...]:
        """What was derived anew, as observations to keep once the call is accepted: none,
        or one `Derived`. A stage adds them to the one request it makes last (where
        `observed` made a second request for them, ~16 K instructions each), so it takes
        them when it is done with the memo: what it keeps after would not be kept
        (tests/unit/rewrite/test_memo_derived.py holds every stage to that)."""
        return (Derived(self._tenant, tuple(self._new)),) if self._new else ()

    def observed(self, request: LLMRequest) -> LLMRequest:
        """`request` with what was derived anew, to keep once the call is accepted."""
        if not self._new:
            return request
        return request.observing(*self.derived())
