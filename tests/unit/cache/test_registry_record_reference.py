"""`PrefixRegistry.record` against the form it had before its steps were folded into one
frame (`_note_gaps` inline, the Seen made compact by position, the expired writes looked at
only when one has expired): the same verdicts and the same learned state, entry by entry and
in the same order, over random calls (conversations that grow, change model, tools or
system, run in parallel or past the TTL; reads, writes, provider reasons; a state small
enough to forget)."""

from __future__ import annotations

import random

import pytest

from gateway.cache.bounded import LearnedState
from gateway.cache.registry import (
    CACHED_BYTES,
    GAPS_BYTES,
    PROVIDER_CAUSES,
    TAILS_BYTES,
    PendingWrite,
    PrefixRegistry,
    ReuseGaps,
    Seen,
    TailReuse,
    Verdict,
)
from gateway.rewrite.fingerprint import Fingerprint
from gateway.wire.usage import Usage


class Reference(PrefixRegistry):
    """`record` as it was written before, step by step."""

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
        tenant = fp.tenant
        in_conversation = self._conversations.get(tenant, fp.conversation)
        in_family = self._families.get(tenant, fp.family)
        self._reference_gaps(fp, in_conversation, in_family, started)
        previous = in_conversation or in_family
        cause, expected = self._cause(fp, previous, usage, started, min_tokens)
        if cause is not None and provider_reason in PROVIDER_CAUSES:
            cause = PROVIDER_CAUSES[provider_reason]
        written = usage.cache_write_5m + usage.cache_write_1h
        seen = Seen.of(fp, usage, started, answered, message_id).compact()
        size = seen.size
        if in_conversation is not None and in_conversation is in_family and in_family.size == size:
            in_family.take(seen)
        else:
            self._conversations.put(tenant, fp.conversation, seen, size)
            self._families.put(tenant, fp.family, seen, size)
        if seen.cached_tokens:
            self._cached.put(tenant, fp.shared, answered, CACHED_BYTES)
        self._note_reads(fp, usage, started)
        if written:
            pending = PendingWrite(owner, written, started + self.ttl_s, step=step, model=fp.model)
            self._writes.put(tenant, fp.conversation, pending, pending.size)
            self._writes.put(tenant, fp.family, pending, pending.size)
            self._expect(pending)
            key = (step, fp.model)
            tails = self._tails.get(tenant, key)
            if tails is None:
                tails = TailReuse()
                self._tails.put(tenant, key, tails, TAILS_BYTES + len(step or "") + len(fp.model))
            tails.note_written()
        return Verdict(cause, max(0, expected - usage.cache_read), self._expired_unread(started))

    def _reference_gaps(
        self, fp: Fingerprint, in_conversation: Seen | None, in_family: Seen | None, now: float
    ) -> None:
        gaps = self._gaps.get(fp.tenant, fp.family)
        if gaps is None:
            gaps = ReuseGaps()
            self._gaps.put(fp.tenant, fp.family, gaps, GAPS_BYTES)
        if in_family is not None and in_family.fingerprint.family == fp.family:
            gaps.prefix.append(now - in_family.started)
        if in_conversation is not None and in_conversation.fingerprint.family == fp.family:
            gaps.turns.append(now - in_conversation.started)


def _fingerprint(rng: random.Random, tenant: bytes) -> Fingerprint:
    family = rng.choice([b"fam-a", b"fam-b", b"fam-c"])
    conversation = rng.choice([b"conv-1", b"conv-2", b"conv-3", family])
    messages = tuple(
        b"m%d-%s" % (i, rng.choice([b"x", b"y"]) if i == 3 else b"")
        for i in range(rng.randint(0, 5))
    )
    return Fingerprint(
        family,
        conversation,
        rng.choice(["model-a", "model-b-longer"]),
        rng.choice([b"tools-1", b"tools-2"]),
        rng.choice([b"sys-1", b"sys-2"]),
        messages,
        rng.choice([family, b"shared-" + family]),
        rng.choice([10, 2000, 5000]),
        tenant,
    )


def _usage(rng: random.Random) -> Usage:
    def tokens() -> int:
        return rng.choice([0, 0, 0, 1024, 3000, 6000])

    return Usage(rng.randint(1, 9000), rng.randint(1, 500), tokens(), tokens(), tokens())


def _state(registry: PrefixRegistry) -> list[object]:
    """Every entry of the learned state, in its order, with its size and what it holds."""
    held: list[object] = []
    for key, (value, size, _, tenant) in registry._conversations.state._entries.items():
        if isinstance(value, ReuseGaps):
            value = (list(value.prefix), list(value.turns))
        held.append((key, repr(value), size, tenant.name, tenant.bytes))
    expiries = [repr(pending) for pending in registry._expiries]
    return [held, expiries, registry._expiries_bytes, registry._conversations.state.bytes]


@pytest.mark.parametrize("seed", range(12))
def test_record_matches_the_step_by_step_form(seed: int) -> None:
    rng = random.Random(seed)
    small = seed % 3 == 0  # a state that forgets
    max_bytes = 12_000 if small else 64 * 1024 * 1024

    def state() -> LearnedState:
        return LearnedState(max_bytes, max_bytes // 2 if small else max_bytes)

    ttl_s = rng.choice([5.0, 300.0])
    fast, slow = PrefixRegistry(state(), ttl_s), Reference(state(), ttl_s)
    now = 1_000.0
    tenants = [b"tenant-1", b"tenant-2"]
    for _ in range(600):
        fp = _fingerprint(rng, rng.choice(tenants))
        usage = _usage(rng)
        now += rng.choice([0.0, 0.5, 2.0, 7.0, 400.0])
        answered = now + rng.choice([-1.0, 0.2, 3.0])  # another call's answer may be later
        arguments = (fp, usage, now, answered, rng.choice([0, 1024, 4096]), ("anthropic", "m", "s"))
        options = {
            "message_id": rng.choice([None, "msg_1", "msg_longer_id"]),
            "provider_reason": rng.choice([None, "model_changed", "unavailable", "tools_changed"]),
            "step": rng.choice([None, "plan", "edit"]),
        }
        got = fast.record(*arguments, **options)  # type: ignore[arg-type]
        want = slow.record(*arguments, **options)  # type: ignore[arg-type]
        assert got == want
        assert type(got) is Verdict
        assert _state(fast) == _state(slow)
