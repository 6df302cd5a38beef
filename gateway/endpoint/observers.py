"""After the call: each observer is given the one frozen record, in turn.

The prefix registry's verdict and the cost are in the record (the call log reports both),
so they are judged before it is built: `PrefixJudge` shares the call between replicas and
has the registry judge it; `Meter.price` prices it.
"""

from __future__ import annotations

import logging
from typing import Protocol

from gateway.admission import Gate
from gateway.cache.registry import PrefixRegistry, Seen, Verdict
from gateway.cache.shared_prefixes import SharedPrefixes
from gateway.cascade.shadow import Answer
from gateway.endpoint.prepared import Prepared
from gateway.endpoint.record import Outcome, Record, unseen_attempts
from gateway.metering.calls import Meter

LOG = logging.getLogger("gateway.endpoint")


class Observer(Protocol):
    def observe(self, record: Record) -> None: ...


class Metering:
    """Metrics, the call log and traces."""

    def __init__(self, meter: Meter) -> None:
        self.meter = meter

    def observe(self, record: Record) -> None:
        self.meter.record(record.call, record.metered)


class ShadowPair:
    """The answer a shadow call waits for, to write the pair."""

    def observe(self, record: Record) -> None:
        if record.shadow is None:
            return
        call = record.call
        answer = Answer(
            call.model_used,
            call.status,
            record.text,
            call.usage,
            record.metered.cost_usd,
            round(call.duration_s * 1000, 3),
        )
        record.shadow.primary_done(answer)


class Settlement:
    """A gateway key's spend: the call's real cost in place of its reservation."""

    def __init__(self, gate: Gate) -> None:
        self.gate = gate

    def observe(self, record: Record) -> None:
        if record.admitted is None:
            return
        # No price for the model, or tokens made that no usage reported: its reservation
        # is the charge, never nothing; so is each other attempt's that may have.
        self.gate.settle(
            record.admitted,
            record.metered.cost_usd,
            record.call.usage,
            at_least_reserved=record.metered.answer_usd is None or record.unseen,
            unseen_attempts=unseen_attempts(record.call.attempts),
        )


class PrefixJudge:
    """Why a model call's cache missed, from the prefix registry, which then remembers it."""

    def __init__(
        self, registry: PrefixRegistry, shared: SharedPrefixes | None, meter: Meter
    ) -> None:
        self.registry = registry
        self.shared = shared  # the registry across replicas (None: this one alone)
        self.meter = meter  # the call's labels name the owner of its cache writes

    async def exchange(self, call: Prepared, outcome: Outcome, started_at: float) -> None:
        """Another replica's last call of this conversation, before the registry judges this
        one (`judged`), and this one shared in its place: one state round trip, after the
        client has its response. Nothing to do without a shared registry."""
        fp, usage, answered = call.fingerprint, outcome.usage, outcome.answered
        if self.shared is None or fp is None or usage is None or answered is None:
            return
        seen = Seen.of(fp, usage, started_at, answered, outcome.message_id)
        try:
            await self.shared.exchange(fp, seen, self.registry)
        except Exception:  # the verdict is this replica's alone; settling must still run
            LOG.exception("shared prefix exchange failed; judged by this replica alone")

    def judged(
        self,
        provider: str,
        call: Prepared,
        outcome: Outcome,
        started_at: float,
        step: str | None,
    ) -> Verdict | None:
        """The registry's verdict on the call, after `exchange` where replicas share it."""
        fp, usage, answered = call.fingerprint, outcome.usage, outcome.answered
        if fp is None or usage is None or answered is None:
            return None
        # The owner of the call's cache writes, named only for a call that wrote.
        written = usage.cache_write_5m or usage.cache_write_1h
        owner = self.meter.labels_of(provider, outcome.model or call.model, step) if written else ()
        return self.registry.record(
            fp,
            usage,
            started_at,
            answered,
            call.min_cacheable_tokens,
            owner,
            message_id=outcome.message_id,
            provider_reason=outcome.miss_reason,
            step=step,
        )
