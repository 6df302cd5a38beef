"""The last call of a prompt family or conversation, as the prefix registry (registry.py)
remembers it and replicas share it (shared_prefixes.py)."""

from __future__ import annotations

from dataclasses import dataclass

from gateway.rewrite.fingerprint import Fingerprint
from gateway.wire.usage import Usage

# What a Seen with its compacted Fingerprint holds beyond the strings it counts (tracemalloc,
# rounded up).
SEEN_BYTES = 700


@dataclass(slots=True)
class Seen:
    """The last call of a family or conversation."""

    fingerprint: Fingerprint
    started: float
    answered: float  # when its response began: its cache writes are readable from then
    cached_tokens: int  # the prefix it read or wrote
    message_id: str | None = None  # the provider's id of its response, for diagnostics
    # How many messages it sent, where `fingerprint.messages` keeps only the last digest.
    message_count: int | None = None

    @property
    def messages(self) -> int:
        count = self.message_count
        return len(self.fingerprint.messages) if count is None else count

    def compact(self) -> Seen:
        """The same call in a constant size (`compacted`)."""
        fp = self.fingerprint
        if len(fp.messages) <= 1:
            return self
        count = self.messages
        return compacted(
            fp, self.started, self.answered, self.cached_tokens, self.message_id, count
        )

    def take(self, other: Seen) -> None:
        """Holds `other`'s call in place of its own (one object in two tables)."""
        self.fingerprint, self.started = other.fingerprint, other.started
        self.answered, self.cached_tokens = other.answered, other.cached_tokens
        self.message_id, self.message_count = other.message_id, other.message_count

    @property
    def size(self) -> int:
        fp = self.fingerprint
        return SEEN_BYTES + len(fp.model) + len(self.message_id or "") + 48 * len(fp.messages)

    def extended_by(self, fp: Fingerprint) -> bool:
        """Whether `fp` sends this call's messages first (and maybe more after them)."""
        count = self.messages
        if count > len(fp.messages):
            return False
        return count == 0 or fp.messages[count - 1] == self.fingerprint.messages[-1]

    @classmethod
    def of(
        cls,
        fp: Fingerprint,
        usage: Usage,
        started: float,
        answered: float,
        message_id: str | None = None,
    ) -> Seen:
        """The call as the registry remembers it (and as replicas share it)."""
        written = usage.cache_write_5m + usage.cache_write_1h
        return cls(fp, started, answered, usage.cache_read + written, message_id)


def compacted(
    fp: Fingerprint,
    started: float,
    answered: float,
    cached: int,
    message_id: str | None,
    count: int | None = None,
) -> Seen:
    """The call in a constant size: the last cumulative message digest stands for those
    before it (each covers all the messages up to it); `Seen.of(...).compact()` made
    directly, as the registry keeps every call. `count`: the messages sent, if not all
    of `fp.messages`' digests."""
    messages = fp.messages
    if len(messages) <= 1:
        return Seen(fp, started, answered, cached, message_id, count)
    last = fp._replace(messages=messages[-1:])
    return Seen(
        last, started, answered, cached, message_id, len(messages) if count is None else count
    )
