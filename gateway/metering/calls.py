"""One model call, as the gateway saw it, and the single point where it is metered.

`Meter.price` gives a call's cost (what the key's budget is charged), `Meter.record` its
metrics and call log lines; both after the client has its bytes. Everything metering needs
comes in the record as data: it imports neither the cascade nor the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from gateway.metering.labels import LabelBounds
from gateway.metering.metrics import Metrics
from gateway.metering.pricing import UNPRICED_MODEL, Priced, Pricing
from gateway.metering.rates import PriceContext
from gateway.wire.call import Attempt
from gateway.wire.usage import Usage

# Outcomes that are the provider's failure, not the client's: see gateway_upstream_errors.
FAILED_STREAMS = frozenset({"cut", "stream_error"})
# Below this, (duration - ttft) is timer noise, not generation time.
MIN_GENERATION_S = 0.001
MAX_COMMON = 4096  # calls' (provider, models, step, status) whose children are at hand


class CacheVerdict(Protocol):
    """The prefix registry's word on a call's cache misses (cache/registry.Verdict)."""

    @property
    def cause(self) -> str | None: ...

    @property
    def missed_tokens(self) -> int: ...

    @property
    def wasted_writes(self) -> tuple[tuple[tuple[str, ...], int], ...]:
        """Writes of earlier calls found expired unread: (their owner's labels, tokens)."""
        ...


@dataclass(frozen=True, slots=True)
class CallRecord:
    request_id: str
    provider: str
    step: str | None
    model_requested: str | None
    model_used: str | None
    status: str  # the HTTP status, or stream_error / cut / client_closed for a failed stream
    duration_s: float
    ttft_s: float | None  # set for streams only: the first content event
    usage: Usage | None
    rewrites: tuple[str, ...] = field(default=())  # rule names, as in x-gateway-rewrites
    findings: tuple[str, ...] = field(default=())
    cache: CacheVerdict | None = None  # the prefix registry's word on this call's cache misses
    coalesced: bool = False
    overhead_s: float | None = None  # the gateway's own time, upstream wait excluded
    started_at: float = 0.0  # wall-clock time the request arrived, for the call log
    tier: str | None = None  # the cascade tier that chose the model
    attempts: tuple[Attempt, ...] = ()  # every request upstream: retries, fallbacks, hedges
    budget_breaches: tuple[str, ...] = ()  # the phases over the step's latency budget
    key: str | None = None  # the gateway key's name (None: a provider key passed through)
    context: PriceContext = ()  # the price context it was served at (OpenAI's priority tier)
    priced: Priced | None = None  # the relay's cost of the answer, if it priced it


class CallWriter(Protocol):
    """Something that records each finished call: the call log, the tracer."""

    def write(self, call: CallRecord, metered: Metered) -> None: ...


@dataclass(frozen=True, slots=True)
class Metered:
    """What metering adds to a call, for the call log: its cost and the findings so far."""

    cost_usd: float  # the answer's, and every other attempt's that reported usage
    findings: tuple[str, ...]
    answer_usd: float | None = 0.0  # the answer's alone; None: tokens, but no price
    attempts_usd: tuple[float, ...] = ()  # each attempt's, for a call of two or more


class Meter:
    def __init__(
        self,
        metrics: Metrics,
        labels: LabelBounds,
        pricing: Pricing | None = None,
        writers: Sequence[CallWriter] = (),
        # Days until a model retires, if it is within the warning window.
        retirement: Callable[[str], int | None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.retirement = retirement
        self.writers = tuple(writers)
        self.labels = labels
        self.pricing = pricing or Pricing.load()
        # Label values are bounded, so so is this: prometheus' labels() costs ~10 µs a call.
        self._children: dict[tuple[Any, ...], Any] = {}
        # What every call records, by its raw (provider, models, step, status): one lookup.
        self._common: dict[tuple[Any, ...], _Common] = {}

    def label_values(self, call: CallRecord) -> tuple[str, str, str]:
        """The call's bounded (provider, model, step) label values."""
        return self.labels_of(call.provider, call.model_used or call.model_requested, call.step)

    def labels_of(self, provider: str, model: str | None, step: str | None) -> tuple[str, str, str]:
        return (provider, self.labels.model(model), self.labels.step(step))

    def cost(self, call: CallRecord) -> float | None:
        """USD for the call's usage; None when there is usage but no price for its model."""
        if call.usage is None:
            return 0.0
        model = call.model_used or call.model_requested
        priced = call.priced
        if (
            priced is not None
            and priced.usage is call.usage
            and priced.model == model
            and priced.context == call.context
        ):
            return priced.usd  # the relay priced these very inputs
        return self.pricing.cost(call.provider, model, call.usage, context=call.context)

    def on_call_complete(self, call: CallRecord) -> Metered:
        """Prices the call, then records it: metrics and the writers."""
        metered = self.price(call)
        self.record(call, metered)
        return metered

    def price(self, call: CallRecord) -> Metered:
        """The call's cost: its answer's and that of the attempts the client did not get
        (spent all the same); an answer with tokens but no price adds a finding."""
        answer = self.cost(call)
        findings = call.findings
        if answer is None and (call.usage is None or not any(call.usage.by_type().values())):
            answer = 0.0
        elif answer is None:
            findings = (*findings, UNPRICED_MODEL)
        attempts: tuple[float, ...] = ()
        if len(call.attempts) > 1:
            attempts = tuple(self._attempt_cost(call, attempt) for attempt in call.attempts)
        return Metered((answer or 0.0) + sum(attempts), findings, answer, attempts)

    def record(self, call: CallRecord, metered: Metered) -> None:
        key = (call.provider, call.model_used, call.model_requested, call.step, call.status)
        common = self._common.get(key)
        if common is None:
            common = self._common_of(call, key)
        labels = common.labels
        common.requests.inc()
        common.model_calls.inc()
        common.duration.observe(call.duration_s)
        if call.overhead_s is not None:
            self._child(self.metrics.overhead, *labels).observe(call.overhead_s)
        if is_upstream_error(call.status):
            self._child(self.metrics.upstream_errors, call.provider, call.status).inc()
        if call.ttft_s is not None:
            self._child(self.metrics.time_to_first_token, *labels).observe(call.ttft_s)
        if call.usage is not None:
            for kind, count in call.usage.by_type().items():
                if count:
                    self._child(self.metrics.tokens, *labels, kind).inc(count)
            self._output_rate(labels, call, call.usage)
        if metered.answer_usd is None:
            self._child(self.metrics.unpriced, *labels).inc()
        elif metered.answer_usd:
            self._child(self.metrics.cost, *labels).inc(metered.answer_usd)
        for rule in call.rewrites:
            self._child(self.metrics.rewrites, rule).inc()
        if call.coalesced:
            self._child(self.metrics.coalesced, *labels).inc()
        if call.cache is not None:
            self._cache(labels, call.cache)
        for phase in call.budget_breaches:
            self._child(self.metrics.latency_budget_breaches, labels[2], phase).inc()
        self._attempts(call, metered.attempts_usd)
        if self.retirement is not None and call.model_used is not None:
            days_left = self.retirement(call.model_used)
            if days_left is not None:
                model = self.labels.model(call.model_used)
                self._child(self.metrics.model_retirement_days, model).set(days_left)
        for writer in self.writers:
            writer.write(call, metered)

    def on_shadow(
        self, provider: str, model: str, step: str | None, status: str, usage: Usage | None
    ) -> float | None:
        """Meters a shadow call apart from client calls; returns its cost (None: unpriced)."""
        labels = (provider, self.labels.model(model), self.labels.step(step))
        self._child(self.metrics.shadow_calls, *labels, status).inc()
        if usage is None:
            return 0.0
        cost = self.pricing.cost(provider, model, usage)
        if cost:
            self._child(self.metrics.shadow_cost, *labels).inc(cost)
        return cost

    def _attempt_cost(self, call: CallRecord, attempt: Attempt) -> float:
        if attempt.relayed or attempt.usage is None:
            return 0.0
        cost = self.pricing.cost(call.provider, attempt.model, attempt.usage, context=call.context)
        return cost or 0.0

    def _attempts(self, call: CallRecord, costs: tuple[float, ...]) -> None:
        """Retries, hedges, and the tokens and cost of attempts whose response the client
        never got."""
        if len(call.attempts) < 2:
            return
        chains = {attempt.hedge for attempt in call.attempts}
        retries = len(call.attempts) - len(chains)
        if retries:
            self._child(self.metrics.retries, call.provider).inc(retries)
        step = self.labels.step(call.step)
        if True in chains:
            hedge_won = any(a.relayed and a.hedge for a in call.attempts)
            winner = "hedge" if hedge_won else "primary"
            self._child(self.metrics.hedged_calls, call.provider, step, winner).inc()
        for attempt, cost in zip(call.attempts, costs, strict=True):
            if attempt.relayed:
                continue
            if is_upstream_error(attempt.status):
                self._child(self.metrics.upstream_errors, call.provider, attempt.status).inc()
            if attempt.usage is None:
                continue
            labels = (call.provider, self.labels.model(attempt.model), step)
            for kind, count in attempt.usage.by_type().items():
                if count:
                    self._child(self.metrics.tokens, *labels, kind).inc(count)
            if cost:
                self._child(self.metrics.cost, *labels).inc(cost)

    def _output_rate(self, labels: tuple[str, ...], call: CallRecord, usage: Usage) -> None:
        # Streams that completed only: a cut stream's tail is waiting on a dead connection.
        if call.ttft_s is None or call.status != "200" or not usage.output:
            return
        generating = call.duration_s - call.ttft_s
        if generating >= MIN_GENERATION_S:
            rate = usage.output / generating
            self._child(self.metrics.output_tokens_per_second, *labels).observe(rate)

    def _cache(self, labels: tuple[str, ...], verdict: CacheVerdict) -> None:
        if verdict.cause is not None:
            self._child(self.metrics.cache_miss_cause, *labels, verdict.cause).inc()
            if verdict.missed_tokens:
                missed = self._child(self.metrics.cache_missed_tokens, *labels, verdict.cause)
                missed.inc(verdict.missed_tokens)
        for owner, tokens in verdict.wasted_writes:
            self._child(self.metrics.cache_wasted_write_tokens, *owner).inc(tokens)

    def _common_of(self, call: CallRecord, key: tuple[Any, ...]) -> _Common:
        labels = self.label_values(call)
        requested = self.labels.model(call.model_requested)
        common = _Common(
            labels,
            self._child(self.metrics.requests, *labels, call.status),
            self._child(self.metrics.model_calls, call.provider, requested, labels[1]),
            self._child(self.metrics.request_duration, *labels),
        )
        if len(self._common) >= MAX_COMMON:  # raw values, unbounded: a client names models
            self._common.clear()
        self._common[key] = common
        return common

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child


@dataclass(frozen=True, slots=True)
class _Common:
    """The label values and children every call of one (provider, models, step, status)
    records."""

    labels: tuple[str, str, str]
    requests: Any
    model_calls: Any
    duration: Any


def is_upstream_error(status: str) -> bool:
    """429, 5xx (529 included, and the gateway's own 502/504), a cut or an in-stream error."""
    if status in FAILED_STREAMS:
        return True
    return status.isdigit() and (status == "429" or 500 <= int(status) <= 599)
