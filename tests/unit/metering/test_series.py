"""The one-frame metric updates give the values prometheus_client's own methods give."""

from __future__ import annotations

import math

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram

from gateway.metering.series import adder, counter, observer

BOUNDS = (0.001, 0.01, 0.1, 1.0)
AMOUNTS = (0.0, 0.0005, 0.001, 0.0010001, 0.01, 0.05, 0.1, 1.0, 2.5, math.inf, -1.0, math.nan)


def _samples(registry: CollectorRegistry) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, s.labels, s.value)
        for metric in registry.collect()
        for s in metric.samples
        if not s.name.endswith("_created")
    ]


def _histogram(registry: CollectorRegistry) -> Histogram:
    return Histogram("h", "h", ["a"], buckets=BOUNDS, registry=registry)


def test_observer_fills_the_buckets_and_sum_as_observe() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference, fast = _histogram(theirs).labels("x"), observer(_histogram(ours).labels("x"))
    for amount in AMOUNTS:
        reference.observe(amount)
        fast(amount)
    expected, got = _samples(theirs), _samples(ours)
    assert [(n, labels) for n, labels, _ in got] == [(n, labels) for n, labels, _ in expected]
    for (_, _, want), (_, _, have) in zip(expected, got, strict=True):
        assert have == want or (math.isnan(have) and math.isnan(want))


def test_adder_counts_as_inc() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Counter("c", "c", ["a"], registry=theirs).labels("x")
    fast = adder(Counter("c", "c", ["a"], registry=ours).labels("x"))
    for amount in (1, 1, 2.5, 0):
        reference.inc(amount)
        fast(amount)
    assert _samples(ours) == _samples(theirs)


def test_counter_counts_as_inc_and_refuses_a_negative_amount_as_it() -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    reference = Counter("c", "c", ["a"], registry=theirs).labels("x")
    fast = counter(Counter("c", "c", ["a"], registry=ours).labels("x"))
    for amount in (1, 7, 0.25, 0):
        reference.inc(amount)
        fast(amount)
    with pytest.raises(ValueError, match="non-negative"):
        fast(-3)
    assert _samples(ours) == _samples(theirs)
