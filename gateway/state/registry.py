"""The prefix registry: what each prompt family and conversation sent last, and when.

It answers, after each call, why the cache missed (the cause and the tokens it cost) and
which cache writes expired without ever being read. In memory and bounded; a dictionary
lookup or two per call (Redis comes with the shared-state issue).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from gateway.rewrite.fingerprint import Fingerprint
from gateway.state.bounded import BoundedDict
from gateway.wire.anthropic_usage import Usage

# The provider's diagnostics.cache_miss_reason types that name a cause (WIRE B.3); the
# others (previous_message_not_found, unavailable) leave the registry's own verdict.
PROVIDER_CAUSES: dict[str, MissCause] = {
    "model_changed": "model_changed",
    "system_changed": "system_changed",
    "tools_changed": "tools_changed",
    "messages_changed": "messages_changed",
}
GAP_SAMPLES = 16
MIN_GAPS = 3  # no TTL decision on fewer observations: 5m, the API's default, until then
HOUR_S = 3600.0
# A conversation-tail write costs 0.25x more than plain input (5m) and each read saves
# 0.9x: it pays when the next call of the conversation reads it at least this often.
TAIL_BREAK_EVEN = 0.25 / 0.9
MIN_TAIL_SAMPLES = 20  # writes of a step before its tails may be judged not to pay
TAIL_WINDOW = 200  # counts halve past this: the judgement follows a step's recent calls
TAIL_PROBE_EVERY = 8  # a step judged not to pay still writes one tail in 8, to keep learning
Ttl = Literal["5m", "1h"]
MissCause = Literal[
    "cold", "ttl_expired", "model_changed", "tools_changed", "system_changed",
    "messages_changed", "below_minimum", "parallel_cold",
]  # fmt: skip


@dataclass(slots=True)
class Seen:
    """The last call of a family or conversation."""

    fingerprint: Fingerprint
    started: float
    answered: float  # when its response began: its cache writes are readable from then
    cached_tokens: int  # the prefix it read or wrote
    message_id: str | None = None  # the provider's id of its response, for diagnostics

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


@dataclass(slots=True)
class ReuseGaps:
    """Recent seconds between uses of a family's prefix, and between turns of its conversations."""

    prefix: deque[float] = field(default_factory=lambda: deque(maxlen=GAP_SAMPLES))
    turns: deque[float] = field(default_factory=lambda: deque(maxlen=GAP_SAMPLES))


@dataclass(slots=True)
class PendingWrite:
    owner: tuple[str, ...]  # the writing call's metric labels: the waste is charged to it
    tokens: int
    expires: float
    read: bool = False
    step: str | None = None
    model: str = ""
    # Read by its own conversation's next call (not just its family's shared prefix).
    tail_read: bool = False


@dataclass(slots=True)
class TailReuse:
    """How often a step's conversation-tail writes were read by the conversation's next call."""

    written: float = 0.0
    read: float = 0.0
    calls: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    cause: MissCause | None
    missed_tokens: int
    # Writes of earlier calls found expired unread at this call: (their owner, tokens).
    wasted_writes: tuple[tuple[tuple[str, ...], int], ...]


class PrefixRegistry:
    def __init__(self, max_entries: int = 100_000, ttl_s: float = 300.0) -> None:
        self.ttl_s = ttl_s
        self._conversations: BoundedDict[bytes, Seen] = BoundedDict(max_entries)
        self._families: BoundedDict[bytes, Seen] = BoundedDict(max_entries)
        self._writes: BoundedDict[bytes, PendingWrite] = BoundedDict(max_entries)
        self._cached: BoundedDict[bytes, float] = BoundedDict(max_entries)  # shared → answered
        self._gaps: BoundedDict[bytes, ReuseGaps] = BoundedDict(max_entries)
        self._tails: BoundedDict[tuple[str | None, str], TailReuse] = BoundedDict(max_entries)
        self._expiries: deque[PendingWrite] = deque()

    def record(
        self,
        fp: Fingerprint,
        usage: Usage,
        started: float,
        answered: float,
        min_tokens: int,
        owner: tuple[str, ...],
        *,
        message_id: str | None = None,
        provider_reason: str | None = None,
        step: str | None = None,
    ) -> Verdict:
        """Attributes this call's misses, then remembers it for the next call."""
        in_conversation = self._conversations.get(fp.conversation)
        in_family = self._families.get(fp.family)
        self._note_gaps(fp, in_conversation, in_family, started)
        previous = in_conversation or in_family
        cause, expected = self._cause(fp, previous, usage, started, min_tokens)
        if cause is not None and provider_reason in PROVIDER_CAUSES:
            cause = PROVIDER_CAUSES[provider_reason]  # the provider saw its own cache
        written = usage.cache_write_5m + usage.cache_write_1h
        seen = Seen.of(fp, usage, started, answered, message_id)
        self._conversations[fp.conversation] = seen
        self._families[fp.family] = seen
        if seen.cached_tokens:
            self._cached[fp.shared] = answered
        self._note_reads(fp, usage, started)
        if written:
            pending = PendingWrite(owner, written, started + self.ttl_s, step=step, model=fp.model)
            self._writes[fp.conversation] = self._writes[fp.family] = pending
            self._expiries.append(pending)
            tails = self._tails.setdefault((step, fp.model), TailReuse())
            tails.written += 1
            if tails.written > TAIL_WINDOW:
                tails.written /= 2
                tails.read /= 2
        return Verdict(cause, max(0, expected - usage.cache_read), self._expired_unread(started))

    def adopt(self, fp: Fingerprint, conversation: Seen | None, family: Seen | None) -> None:
        """Takes another replica's last calls of `fp`'s conversation and family where they
        are newer than this one's, so `record` compares with the real previous call."""
        for store, key, seen in (
            (self._conversations, fp.conversation, conversation),
            (self._families, fp.family, family),
        ):
            if seen is None:
                continue
            mine = store.get(key)
            if mine is None or mine.started < seen.started:
                store[key] = seen
                if seen.cached_tokens:
                    self._cached[seen.fingerprint.shared] = seen.answered

    def previous_message_id(self, fp: Fingerprint) -> str | None:
        """The id of the last response in this call's conversation, to ask the provider why."""
        seen = self._conversations.get(fp.conversation)
        return seen.message_id if seen is not None else None

    def ttls(self, family: bytes) -> tuple[Ttl, Ttl]:
        """(stable prefix, conversation tail) TTLs from observed reuse gaps.

        1h pays where uses come between 5 minutes and an hour apart: a 5m entry would have
        expired, and a 2x write read at 0.1x beats a 1.25x write each time. Closer uses
        keep a 5m entry alive (a hit refreshes it); rarer ones outlive even 1h.
        """
        gaps = self._gaps.get(family)
        if gaps is None:
            return "5m", "5m"
        return _ttl(gaps.prefix, self.ttl_s), _ttl(gaps.turns, self.ttl_s)

    def _note_gaps(
        self, fp: Fingerprint, in_conversation: Seen | None, in_family: Seen | None, now: float
    ) -> None:
        gaps = self._gaps.setdefault(fp.family, ReuseGaps())
        if in_family is not None and in_family.fingerprint.family == fp.family:
            gaps.prefix.append(now - in_family.started)
        if in_conversation is not None and in_conversation.fingerprint.family == fp.family:
            gaps.turns.append(now - in_conversation.started)

    def tail_pays(self, step: str | None, model: str) -> bool:
        """Whether to write this step's conversation tail to the cache on `model`: yes until
        the step has shown (MIN_TAIL_SAMPLES writes) that its conversations rarely continue
        on the same model — a last step, or one the cascade hands to another model — then only
        one call in TAIL_PROBE_EVERY, to notice if that changes."""
        tails = self._tails.get((step, model))
        if tails is None or tails.written < MIN_TAIL_SAMPLES:
            return True
        if tails.read / tails.written >= TAIL_BREAK_EVEN:
            return True
        tails.calls += 1
        return tails.calls % TAIL_PROBE_EVERY == 0

    def previous_prompt(self, conversation: bytes, model: str) -> int | None:
        """How many messages the conversation's previous call sent, if it ran on `model` and
        cached something: a breakpoint at its end reads that entry back without a new write."""
        seen = self._conversations.get(conversation)
        if seen is None or seen.fingerprint.model != model or not seen.cached_tokens:
            return None
        return len(seen.fingerprint.messages)

    def is_warm(self, fp: Fingerprint, now: float) -> bool:
        """Whether a call whose response has begun cached the prefix this call shares."""
        answered = self._cached.get(fp.shared)
        return answered is not None and answered <= now and now - answered < self.ttl_s

    def _cause(
        self,
        fp: Fingerprint,
        previous: Seen | None,
        usage: Usage,
        started: float,
        min_tokens: int,
    ) -> tuple[MissCause | None, int]:
        if fp.prompt_tokens < min_tokens and usage.cache_read == 0:
            return "below_minimum", 0
        if previous is None:
            return (None, 0) if usage.cache_read else ("cold", 0)
        before = previous.fingerprint
        same_prefix = before.family == fp.family and before.model == fp.model
        extends = same_prefix and fp.messages[: len(before.messages)] == before.messages
        if usage.cache_read and (usage.cache_read >= previous.cached_tokens or not extends):
            return None, 0
        expected = previous.cached_tokens
        if before.model != fp.model:
            return "model_changed", expected
        if before.tools != fp.tools:
            return "tools_changed", expected
        if before.system != fp.system:
            return "system_changed", expected
        if before.conversation == fp.conversation and not extends:
            return "messages_changed", expected
        if previous.answered > started:
            return "parallel_cold", expected
        if started - previous.started > self.ttl_s:
            return "ttl_expired", expected
        return "cold", expected

    def _note_reads(self, fp: Fingerprint, usage: Usage, now: float) -> None:
        """A read uses the last write of its conversation, or of its family's shared prefix."""
        if not usage.cache_read:
            return
        for key in (fp.conversation, fp.family):
            pending = self._writes.get(key)
            if pending is None or pending.expires <= now or pending.model != fp.model:
                continue  # another model's entry: this call could not have read it
            if key == fp.conversation and not pending.tail_read:
                pending.tail_read = True
                tails = self._tails.get((pending.step, pending.model))
                if tails is not None:
                    tails.read += 1
            pending.read = True

    def _expired_unread(self, now: float) -> tuple[tuple[tuple[str, ...], int], ...]:
        wasted = []
        while self._expiries and self._expiries[0].expires <= now:
            pending = self._expiries.popleft()
            if not pending.read:
                wasted.append((pending.owner, pending.tokens))
        return tuple(wasted)


def _ttl(gaps: deque[float], short_s: float) -> Ttl:
    if len(gaps) < MIN_GAPS:
        return "5m"
    return "1h" if short_s < statistics.median(gaps) <= HOUR_S else "5m"
