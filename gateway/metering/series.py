"""The metric updates every call makes, at hand and one Python frame each.

prometheus_client's `Counter.inc` and `Histogram.observe` are three or four frames per
update (the method, `_raise_if_not_observable`, the value's `inc`), and `observe` finds its
bucket by a Python loop over the bounds. A call makes a dozen updates; here a count by one
goes to the child's value directly, and an observation to its sum and to the bucket a
bisection finds: the same values. A value of this process' own is added to in place (see
`Plain`), one of multiprocess mode's by its `inc`. A negative amount (tokens a provider
reports) still goes to `Counter.inc`, which refuses it.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from prometheus_client.values import MutexValue

from gateway.wire.usage import Usage

Add = Callable[[float], None]
# Outcomes that are the provider's failure, not the client's: see gateway_upstream_errors.
FAILED_STREAMS = frozenset({"cut", "stream_error"})


def in_place(*values: Any) -> bool:
    """Whether the values are this process' own (prometheus_client's `MutexValue`, not the
    multiprocess mode's files), to be added to in place: see `Plain`."""
    return all(type(value) is MutexValue for value in values)


def adder(counter_child: Any) -> Add:
    """The child's value's `inc`: `child.inc(n)` for n >= 0, without its checks."""
    value = counter_child._value
    if not in_place(value):
        inc: Add = value.inc
        return inc

    def add(amount: float) -> None:
        value._value += amount

    return add


def counter(counter_child: Any) -> Add:
    """`child.inc`, one frame for an amount >= 0; a negative one is the child's to refuse."""
    value = counter_child._value
    refuse: Add = counter_child.inc
    if not in_place(value):
        add: Add = value.inc

        def inc(amount: float) -> None:
            if amount >= 0:
                add(amount)
            else:
                refuse(amount)  # ValueError, as ever

        return inc

    def inc_in_place(amount: float) -> None:
        if amount >= 0:
            value._value += amount
        else:
            refuse(amount)  # ValueError, as ever

    return inc_in_place


def observer(histogram_child: Any) -> Add:
    """`child.observe`: the sum, then the first bucket whose bound is >= the amount (none for
    NaN, as prometheus_client's loop finds none)."""
    bounds: list[float] = list(histogram_child._upper_bounds)
    total = histogram_child._sum
    values = list(histogram_child._buckets)
    if in_place(total, *values):

        def observe_in_place(amount: float) -> None:
            total._value += amount
            if amount == amount:  # not NaN
                values[bisect_left(bounds, amount)]._value += 1

        return observe_in_place
    add_sum: Add = total.inc
    buckets: list[Add] = [bucket.inc for bucket in values]

    def observe(amount: float) -> None:
        add_sum(amount)
        if amount == amount:  # not NaN
            buckets[bisect_left(bounds, amount)](1)

    return observe


class Plain(NamedTuple):
    """A series' every-call values when they are this process' own (prometheus_client's
    `MutexValue`; not the multiprocess mode's files): added to in place, no frame a value.
    Their only writer is the event loop's thread (the Meter), so the lock, which keeps two
    writers from losing an update, has none to keep apart; a reader's `get()` reads the one
    float before or after, as it would have."""

    requests: Any
    model_calls: Any
    duration_sum: Any
    duration_buckets: list[Any]
    bounds: list[float]

    @classmethod
    def of(cls, requests: Any, model_calls: Any, duration: Any) -> Plain | None:
        """From the counter and histogram children; None if a value is not in-process."""
        if not in_place(requests._value, model_calls._value, duration._sum, *duration._buckets):
            return None
        return cls(
            requests._value,
            model_calls._value,
            duration._sum,
            list(duration._buckets),
            list(duration._upper_bounds),
        )


@dataclass(slots=True)
class Series:
    """What every call of one raw (provider, models, step, status) records: its label values
    and the updates; those not every call makes are made on first use (a child made is a
    series exported, so none is made before its first value)."""

    labels: tuple[str, str, str]
    requests: Add
    model_calls: Add
    duration: Add
    upstream_error: Add | None  # the status is a provider's failure (gateway_upstream_errors)
    overhead: Add | None = None
    ttft: Add | None = None
    output_rate: Add | None = None
    tokens: dict[str, Add] = field(default_factory=dict)  # by type
    cost: Add | None = None
    causes: dict[str, Add] = field(default_factory=dict)  # cache misses, by cause
    unpriced: Add | None = None
    coalesced: Add | None = None
    plain: Plain | None = None  # requests, model_calls and duration in place, if in-process

    @classmethod
    def of(
        cls, labels: tuple[str, str, str], requests: Any, model_calls: Any, duration: Any
    ) -> Series:
        """From the children of the counters and the histogram every call adds to."""
        series = cls(labels, adder(requests), adder(model_calls), observer(duration), None)
        series.plain = Plain.of(requests, model_calls, duration)
        return series

    def called(self, duration_s: float) -> None:
        """`requests(1)`, `model_calls(1)` and `duration(duration_s)`: in place if in-process."""
        plain = self.plain
        if plain is None:
            self.requests(1)
            self.model_calls(1)
            self.duration(duration_s)
            return
        plain.requests._value += 1
        plain.model_calls._value += 1
        plain.duration_sum._value += duration_s
        if duration_s == duration_s:  # not NaN
            plain.duration_buckets[bisect_left(plain.bounds, duration_s)]._value += 1

    def add_tokens(self, usage: Usage, made: Callable[[Series, str], Add]) -> None:
        """`tokens[kind](count)` for each type with tokens, in `Usage.pairs()`'s order (that
        of the series' first exports), each count read once and no pairs made; `made(self,
        kind)` makes and keeps a type's adder on its first tokens."""
        tokens = self.tokens
        if usage.input:
            (tokens.get("input") or made(self, "input"))(usage.input)
        if usage.output:
            (tokens.get("output") or made(self, "output"))(usage.output)
        if usage.cache_read:
            (tokens.get("cache_read") or made(self, "cache_read"))(usage.cache_read)
        if usage.cache_write_5m:
            (tokens.get("cache_write_5m") or made(self, "cache_write_5m"))(usage.cache_write_5m)
        if usage.cache_write_1h:
            (tokens.get("cache_write_1h") or made(self, "cache_write_1h"))(usage.cache_write_1h)


def is_upstream_error(status: str) -> bool:
    """429, 5xx (529 included, and the gateway's own 502/504), a cut or an in-stream error."""
    if status in FAILED_STREAMS:
        return True
    return status.isdigit() and (status == "429" or 500 <= int(status) <= 599)
