"""One model call, as the gateway saw it, and the single point where it is metered.

`Meter.price` gives a call's cost (what the key's budget is charged), `Meter.record` its
metrics and call log lines; both after the client has its bytes. Everything metering needs
comes in the record as data: it imports neither the cascade nor the cache.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from operator import itemgetter
from typing import Any, NamedTuple, Protocol

from gateway.metering.labels import LabelBounds
from gateway.metering.metrics import Metrics
from gateway.metering.pricing import UNPRICED_MODEL, Priced, Pricing
from gateway.metering.rates import PriceContext
from gateway.metering.series import Add, Series, adder, counter, is_upstream_error, observer
from gateway.wire.call import Attempt
from gateway.wire.usage import Usage

# Below this, (duration - ttft) is timer noise, not generation time.
MIN_GENERATION_S = 0.001
MAX_COMMON = 4096  # calls' (provider, models, step, status) whose children are at hand
_new = tuple.__new__  # a NamedTuple made from its values in order, without its own frame


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


class CallRecord(NamedTuple):
    """One call, as metered: a tuple, made at once (a frozen dataclass sets each field apart)."""

    request_id: str
    provider: str
    step: str | None
    model_requested: str | None
    model_used: str | None
    status: str  # the HTTP status, or stream_error / cut / client_closed for a failed stream
    duration_s: float
    ttft_s: float | None  # set for streams only: the first content event
    usage: Usage | None
    rewrites: tuple[str, ...] = ()  # rule names, as in x-gateway-rewrites
    findings: tuple[str, ...] = ()
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


# What `Meter.record` reads of a record, in one C call (a field read by name is a descriptor's).
_RECORDED = itemgetter(*map(CallRecord._fields.index, (
    "provider", "step", "model_requested", "model_used", "status", "duration_s", "ttft_s",
    "usage", "rewrites", "cache", "coalesced", "overhead_s", "attempts", "budget_breaches",
)))  # fmt: skip


class CallWriter(Protocol):
    """Something that records each finished call: the call log, the tracer."""

    def write(self, call: CallRecord, metered: Metered) -> None: ...


class Metered(NamedTuple):
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
        self._series: dict[tuple[Any, ...], Series] = {}
        self._rewritten: dict[str, Add] = {}  # gateway_rewrites' counts, by rule

    def labels_of(self, provider: str, model: str | None, step: str | None) -> tuple[str, str, str]:
        return (provider, self.labels.model(model), self.labels.step(step))

    def cost(self, call: CallRecord) -> float | None:
        """USD for the call's usage; None when there is usage but no price for its model."""
        usage, priced, context = call.usage, call.priced, call.context
        if usage is None:
            return 0.0
        model = call.model_used or call.model_requested
        # `priced[::2]`: (model, context), its fields compared in their order.
        if priced is not None and priced.usage is usage and priced[::2] == (model, context):
            return priced.usd  # the relay priced these very inputs
        return self.pricing.cost(call.provider, model, usage, context=context)

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
        return _new(Metered, ((answer or 0.0) + sum(attempts), findings, answer, attempts))

    def record(self, call: CallRecord, metered: Metered) -> None:
        (provider, step, model_requested, model_used, status, duration_s, ttft_s, usage, rewrites,
         cache, coalesced, overhead_s, attempts, budget_breaches) = _RECORDED(call)  # fmt: skip
        key = (provider, model_used, model_requested, step, status)
        series = self._series.get(key)
        if series is None:
            series = self._series_of(call, key)
        metrics, labels = self.metrics, series.labels
        series.called(duration_s)
        if overhead_s is not None:
            if series.overhead is None:
                series.overhead = observer(self._child(metrics.overhead, *labels))
            series.overhead(overhead_s)
        if series.upstream_error is not None:
            series.upstream_error(1)
        if ttft_s is not None:
            if series.ttft is None:
                series.ttft = observer(self._child(metrics.time_to_first_token, *labels))
            series.ttft(ttft_s)
        if usage is not None:
            series.add_tokens(usage, self._tokens)
            if ttft_s is not None:  # a stream (the rate's own first test, without a frame)
                self._output_rate(series, call, usage)
        answer_usd = metered.answer_usd
        if answer_usd is None:
            if series.unpriced is None:
                series.unpriced = adder(self._child(metrics.unpriced, *labels))
            series.unpriced(1)
        elif answer_usd:
            if series.cost is None:
                series.cost = counter(self._child(metrics.cost, *labels))
            series.cost(answer_usd)
        for rule in rewrites:
            rewritten = self._rewritten.get(rule)
            if rewritten is None:
                rewritten = self._rewritten[rule] = adder(self._child(metrics.rewrites, rule))
            rewritten(1)
        if coalesced:
            if series.coalesced is None:
                series.coalesced = adder(self._child(metrics.coalesced, *labels))
            series.coalesced(1)
        if cache is not None:
            self._cache(series, cache)
        for phase in budget_breaches:
            self._child(metrics.latency_budget_breaches, labels[2], phase).inc()
        if len(attempts) > 1:
            self._attempts(call, metered.attempts_usd)
        if self.retirement is not None and model_used is not None:
            days_left = self.retirement(model_used)
            if days_left is not None:
                model = self.labels.model(model_used)
                self._child(metrics.model_retirement_days, model).set(days_left)
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

    def _tokens(self, series: Series, kind: str) -> Add:
        add = series.tokens[kind] = counter(self._child(self.metrics.tokens, *series.labels, kind))
        return add

    def _output_rate(self, series: Series, call: CallRecord, usage: Usage) -> None:
        # Streams that completed only: a cut stream's tail is waiting on a dead connection.
        if call.ttft_s is None or call.status != "200" or not usage.output:
            return
        generating = call.duration_s - call.ttft_s
        if generating >= MIN_GENERATION_S:
            if series.output_rate is None:
                metric = self.metrics.output_tokens_per_second
                series.output_rate = observer(self._child(metric, *series.labels))
            series.output_rate(usage.output / generating)

    def _cache(self, series: Series, verdict: CacheVerdict) -> None:
        cause = verdict.cause
        if cause is not None:
            missed = series.causes.get(cause)
            if missed is None:
                child = self._child(self.metrics.cache_miss_cause, *series.labels, cause)
                missed = series.causes[cause] = adder(child)
            missed(1)
            if verdict.missed_tokens:
                metric = self.metrics.cache_missed_tokens
                self._child(metric, *series.labels, cause).inc(verdict.missed_tokens)
        for owner, tokens in verdict.wasted_writes:
            self._child(self.metrics.cache_wasted_write_tokens, *owner).inc(tokens)

    def _series_of(self, call: CallRecord, key: tuple[Any, ...]) -> Series:
        labels = self.labels_of(call.provider, call.model_used or call.model_requested, call.step)
        requested = self.labels.model(call.model_requested)
        metrics = self.metrics
        failed = None
        if is_upstream_error(call.status):
            failed = adder(self._child(metrics.upstream_errors, call.provider, call.status))
        series = Series.of(
            labels,
            self._child(metrics.requests, *labels, call.status),
            self._child(metrics.model_calls, call.provider, requested, labels[1]),
            self._child(metrics.request_duration, *labels),
        )
        series.upstream_error = failed
        if len(self._series) >= MAX_COMMON:  # raw values, unbounded: a client names models
            self._series.clear()
        self._series[key] = series
        return series

    def _child(self, metric: Any, *values: str) -> Any:
        key = (metric, *values)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*values)
        return child
