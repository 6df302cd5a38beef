"""What the rewrite stages read of what the gateway learned, and what they hand back as seen.

The stages are pure: they read the learned memory through the read-only views below (the
cache implements them, cache/learned.py) and return what they observed as data. The caller
applies the observations once the provider has accepted the call (a caller whose calls are
refused teaches nothing), so the same body over the same learned state rewrites the same way.
A read may refresh an entry's recency in the cache's LRU order, never its content.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from gateway.rewrite.fingerprint import Fingerprint
from gateway.rewrite.memo import Derived

Ttl = Literal["5m", "1h"]


@dataclass(frozen=True, slots=True)
class LinesSeen:
    """A request's system lines (their keys, volatile.line_key), to count in its prompt
    family's statistics."""

    tenant: bytes
    family: bytes
    lines: frozenset[int]


@dataclass(frozen=True, slots=True)
class ToolsSeen:
    """Tools whose form the learned memory did not hold, as sent: (identity, JSON bytes); and
    the set's order, when the set (more than one tool) was not known."""

    tenant: bytes
    forms: tuple[tuple[bytes, bytes], ...]
    order: tuple[bytes, ...] | None


class TailJudged(NamedTuple):
    """A step's conversation tail was judged (prefix registry's `tail_pays`): a step judged not
    to pay counts its calls, so one in TAIL_PROBE_EVERY still writes its tail. A tuple, made
    at once (made every call; a frozen dataclass sets each field apart)."""

    tenant: bytes
    step: str | None
    model: str


Observation = LinesSeen | ToolsSeen | TailJudged | Derived


class LinesView(Protocol):
    def varying(
        self, tenant: bytes, family: bytes, lines: Sequence[int], distinct: frozenset[int]
    ) -> set[int]:
        """Indexes of the line keys learned to vary within the family, judged as if this
        request were counted too; `distinct`: the keys as a set (as LinesSeen has them)."""
        ...


class ToolsView(Protocol):
    def form(self, tenant: bytes, identity: bytes) -> bytes | None:
        """The first accepted form of a tool (its JSON bytes), by identity."""
        ...

    def order(self, tenant: bytes, identities: frozenset[bytes]) -> tuple[bytes, ...] | None:
        """The first accepted order of a set of tools."""
        ...


class PrefixView(Protocol):
    def tail_pays(self, tenant: bytes, step: str | None, model: str) -> bool: ...

    def previous_prompt(self, tenant: bytes, conversation: bytes, model: str) -> int | None: ...

    def ttls(self, tenant: bytes, family: bytes) -> tuple[Ttl, Ttl]: ...

    def previous_message_id(self, fp: Fingerprint) -> str | None: ...


class MemoView(Protocol):
    def derived(self, tenant: bytes, key: Hashable) -> object | None:
        """A value a stage derived from `key` on an accepted call (`Derived`), if kept."""
        ...


class Learned(Protocol):
    """The learned memory as the stages read it."""

    @property
    def lines(self) -> LinesView: ...

    @property
    def tools(self) -> ToolsView: ...

    @property
    def prefixes(self) -> PrefixView: ...

    @property
    def memo(self) -> MemoView | None:
        """None: every call derives everything anew."""
        ...
