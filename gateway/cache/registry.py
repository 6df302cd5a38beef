"""The prefix registry: what each prompt family and conversation sent last, and when.

It answers, after each call, why the cache missed (the cause and the tokens it cost) and
which cache writes expired without ever being read. In memory, a dictionary lookup or two
per call (shared_prefixes.py shares the last calls between replicas), and bounded: its
entries are learned state (bounded.py), counted in bytes per tenant, and a call is
remembered in a constant size whatever the length of its conversation (the last message
digest and the count: digests are chained, so the last one stands for them all).
"""

from __future__ import annotations

from collections import deque
from typing import Literal, NamedTuple

from gateway.cache.bounded import LearnedState, LearnedTable
from gateway.cache.reuse import (
    GAPS_BYTES,
    TAILS_BYTES,
    PendingWrite,
    ReuseGaps,
    TailReuse,
)
from gateway.cache.seen import Seen as Seen  # imported from here by its users
from gateway.cache.seen import compacted
from gateway.rewrite.fingerprint import Fingerprint
from gateway.rewrite.snapshot import Ttl
from gateway.wire.usage import Usage

# The provider's diagnostics.cache_miss_reason types that name a cause (docs/wire.md); the
# others (previous_message_not_found, unavailable) leave the registry's own verdict.
PROVIDER_CAUSES: dict[str, MissCause] = {
    "model_changed": "model_changed",
    "system_changed": "system_changed",
    "tools_changed": "tools_changed",
    "messages_changed": "messages_changed",
}
# What an entry holds beyond the strings it counts (tracemalloc, rounded up): a float (reuse.py
# counts its own, seen.py a Seen's).
CACHED_BYTES = 120
# Pending writes waiting for their expiry to be judged hold at most this share of the learned
# state's bytes (beside it: a write forgotten by its table is still judged at its expiry).
EXPIRIES_SHARE = 1 / 8
MissCause = Literal[
    "cold", "ttl_expired", "model_changed", "tools_changed", "system_changed",
    "messages_changed", "below_minimum", "parallel_cold",
]  # fmt: skip


class Verdict(NamedTuple):
    cause: MissCause | None
    missed_tokens: int
    # Writes of earlier calls found expired unread at this call: (their owner, tokens).
    wasted_writes: tuple[tuple[tuple[str, ...], int], ...]


_new_verdict = tuple.__new__


class PrefixRegistry:
    def __init__(self, state: LearnedState | None = None, ttl_s: float = 300.0) -> None:
        self.ttl_s = ttl_s
        state = LearnedState.default() if state is None else state
        self._conversations: LearnedTable[bytes, Seen] = LearnedTable(state, "conversation")
        self._families: LearnedTable[bytes, Seen] = LearnedTable(state, "family")
        self._writes: LearnedTable[bytes, PendingWrite] = LearnedTable(state, "write")
        # A shared prefix -> when the response that cached it began.
        self._cached: LearnedTable[bytes, float] = LearnedTable(state, "cached")
        self._gaps: LearnedTable[bytes, ReuseGaps] = LearnedTable(state, "gaps")
        self._tails: LearnedTable[tuple[str | None, str], TailReuse] = LearnedTable(state, "tails")
        self._expiries: deque[PendingWrite] = deque()
        self._expiries_bytes = 0
        self._expiries_max_bytes = int(state.max_bytes * EXPIRIES_SHARE)

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
        tenant, family, conversation = fp.tenant, fp.family, fp.conversation
        in_conversation = self._conversations.get(tenant, conversation)
        in_family = self._families.get(tenant, family)
        # The reuse gaps, noted in this frame (every call makes it): ttls() reads them.
        gaps = self._gaps.get(tenant, family)
        if gaps is None:
            gaps = ReuseGaps()
            self._gaps.put(tenant, family, gaps, GAPS_BYTES)
        if in_family is not None and in_family.fingerprint.family == family:
            gaps.prefix.append(started - in_family.started)
        if in_conversation is not None and in_conversation.fingerprint.family == family:
            gaps.turns.append(started - in_conversation.started)
        previous = in_conversation or in_family
        cause, expected = self._cause(fp, previous, usage, started, min_tokens)
        if cause is not None and provider_reason in PROVIDER_CAUSES:
            cause = PROVIDER_CAUSES[provider_reason]  # the provider saw its own cache
        written = usage.cache_write_5m + usage.cache_write_1h
        seen = compacted(fp, started, answered, usage.cache_read + written, message_id)
        size = seen.size
        if in_conversation is not None and in_conversation is in_family and in_family.size == size:
            # Both keys hold one entry (the family's last call was this conversation's), made
            # the most recent by the gets above: two puts of its size would leave the same.
            in_family.take(seen)
        else:
            self._conversations.put(tenant, conversation, seen, size)
            self._families.put(tenant, family, seen, size)
        if seen.cached_tokens:
            self._cached.put(tenant, fp.shared, answered, CACHED_BYTES)
        cache_read = usage.cache_read
        if cache_read:
            self._note_reads(fp, usage, started)
        if written:
            pending = PendingWrite(owner, written, started + self.ttl_s, step=step, model=fp.model)
            self._writes.put(tenant, conversation, pending, pending.size)
            self._writes.put(tenant, family, pending, pending.size)
            self._expect(pending)
            key = (step, fp.model)
            tails = self._tails.get(tenant, key)
            if tails is None:
                tails = TailReuse()
                self._tails.put(tenant, key, tails, TAILS_BYTES + len(step or "") + len(fp.model))
            tails.note_written()
        missed = expected - cache_read
        expiries = self._expiries
        # The expired writes (`_expired_unread`), looked at only when the oldest has expired.
        wasted = (
            self._expired_unread(started) if expiries and expiries[0].expires <= started else ()
        )
        # By tuple.__new__: a NamedTuple's own __new__ is a Python frame.
        return _new_verdict(Verdict, (cause, missed if missed > 0 else 0, wasted))

    def _expect(self, pending: PendingWrite) -> None:
        """Queues a write to be judged at its expiry; past the queue's bytes, the oldest
        goes unjudged (its waste, if any, is not reported)."""
        self._expiries.append(pending)
        self._expiries_bytes += pending.size
        while self._expiries_bytes > self._expiries_max_bytes and self._expiries:
            self._expiries_bytes -= self._expiries.popleft().size

    def adopt(self, fp: Fingerprint, conversation: Seen | None, family: Seen | None) -> None:
        """Takes another replica's last calls of `fp`'s conversation and family where they
        are newer than this one's, so `record` compares with the real previous call."""
        tenant = fp.tenant
        for store, key, shared in (
            (self._conversations, fp.conversation, conversation),
            (self._families, fp.family, family),
        ):
            if shared is None:
                continue
            mine = store.get(tenant, key)
            if mine is None or mine.started < shared.started:
                seen = shared.compact()
                store.put(tenant, key, seen, seen.size)
                if seen.cached_tokens:
                    self._cached.put(tenant, seen.fingerprint.shared, seen.answered, CACHED_BYTES)

    def previous_message_id(self, fp: Fingerprint) -> str | None:
        """The id of the last response in this call's conversation, to ask the provider why."""
        seen = self._conversations.get(fp.tenant, fp.conversation)
        return seen.message_id if seen is not None else None

    def ttls(self, tenant: bytes, family: bytes) -> tuple[Ttl, Ttl]:
        """(stable prefix, conversation tail) TTLs from the family's observed reuse gaps."""
        gaps = self._gaps.get(tenant, family)
        return ("5m", "5m") if gaps is None else gaps.ttls(self.ttl_s)

    def tail_pays(self, tenant: bytes, step: str | None, model: str) -> bool:
        """Whether to write this step's conversation tail to the cache on `model`: yes until
        the step has shown (MIN_TAIL_SAMPLES writes, reuse.py) that its conversations rarely
        continue on the same model — a last step, or one the cascade hands to another model —
        then only one call in TAIL_PROBE_EVERY (counted by `tail_judged`), to notice if that
        changes."""
        tails = self._tails.get(tenant, (step, model))
        return tails is None or tails.pays or tails.probes_next()

    def tail_judged(self, tenant: bytes, step: str | None, model: str) -> None:
        """Counts a call of a step judged not to pay, for `tail_pays`'s probes."""
        tails = self._tails.get(tenant, (step, model))
        if tails is not None and not tails.pays:
            tails.calls += 1

    def previous_prompt(self, tenant: bytes, conversation: bytes, model: str) -> int | None:
        """How many messages the conversation's previous call sent, if it ran on `model` and
        cached something: a breakpoint at its end reads that entry back without a new write."""
        seen = self._conversations.get(tenant, conversation)
        if seen is None or seen.fingerprint.model != model or not seen.cached_tokens:
            return None
        return seen.messages

    def is_warm(self, fp: Fingerprint, now: float) -> bool:
        """Whether a call whose response has begun cached the prefix this call shares."""
        answered = self._cached.get(fp.tenant, fp.shared)
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
        extends = same_prefix and previous.extended_by(fp)
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
            pending = self._writes.get(fp.tenant, key)
            if pending is None or pending.expires <= now or pending.model != fp.model:
                continue  # another model's entry: this call could not have read it
            if key == fp.conversation and not pending.tail_read:
                pending.tail_read = True
                tails = self._tails.get(fp.tenant, (pending.step, pending.model))
                if tails is not None:
                    tails.read += 1
            pending.read = True

    def _expired_unread(self, now: float) -> tuple[tuple[tuple[str, ...], int], ...]:
        wasted = []
        while self._expiries and self._expiries[0].expires <= now:
            pending = self._expiries.popleft()
            self._expiries_bytes -= pending.size
            if not pending.read:
                wasted.append((pending.owner, pending.tokens))
        return tuple(wasted)
