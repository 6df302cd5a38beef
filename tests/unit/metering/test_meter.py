"""The Meter on a real CollectorRegistry, read back sample by sample."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from gateway.metering import series
from gateway.metering.calls import CallRecord, Meter
from gateway.metering.labels import LabelBounds
from gateway.metering.metrics import Metrics
from gateway.metering.pricing import UNPRICED_MODEL, Priced, Pricing
from gateway.settings import ModelPriceSettings, PricingSettings
from gateway.wire.usage import Usage

CACHED = Usage(
    input=2_000, output=1_000, cache_read=50_000, cache_write_5m=4_000, cache_write_1h=3_000
)
SONNET = {"provider": "anthropic", "model": "claude-sonnet-4-6", "step": "synthesis"}


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


@pytest.fixture
def meter(registry: CollectorRegistry) -> Meter:
    labels = LabelBounds(["synthesis", "routing"], ["claude-sonnet-4-6", "claude-haiku-4-5"])
    return Meter(Metrics(registry), labels)


BASE = CallRecord(
    request_id="gw_1",
    provider="anthropic",
    step="synthesis",
    model_requested="claude-sonnet-4-6",
    model_used="claude-sonnet-4-6",
    status="200",
    duration_s=3.0,
    ttft_s=None,
    usage=CACHED,
)


def call(**fields: Any) -> CallRecord:
    return BASE._replace(**fields)


def test_cost_is_counted_and_returned(meter: Meter, registry: CollectorRegistry) -> None:
    metered = meter.on_call_complete(call())
    meter.on_call_complete(call())
    assert metered.cost_usd == pytest.approx(0.069)
    assert metered.findings == ()
    assert registry.get_sample_value("gateway_cost_usd_total", SONNET) == pytest.approx(0.138)


def test_configured_pricing_reaches_the_metric(registry: CollectorRegistry) -> None:
    pricing = Pricing.load(
        PricingSettings(models={"claude-sonnet-4-6": ModelPriceSettings(scale=0.5)})
    )
    meter = Meter(Metrics(registry), LabelBounds(["synthesis"], ["claude-sonnet-4-6"]), pricing)
    meter.on_call_complete(call())
    assert registry.get_sample_value("gateway_cost_usd_total", SONNET) == pytest.approx(0.0345)


def test_an_unpriced_model_costs_zero_with_a_finding(
    meter: Meter, registry: CollectorRegistry
) -> None:
    record = call(model_requested="claude-next", model_used="claude-next", findings=("x",))
    metered = meter.on_call_complete(record)
    assert metered.cost_usd == 0
    assert metered.findings == ("x", UNPRICED_MODEL)
    other = {**SONNET, "model": "other"}  # an unknown name never becomes a label value
    assert registry.get_sample_value("gateway_unpriced_calls_total", other) == 1
    assert registry.get_sample_value("gateway_cost_usd_total", other) is None
    assert registry.get_sample_value("gateway_tokens_total", {**other, "type": "output"}) == 1_000


def test_a_call_without_usage_is_not_unpriced(meter: Meter, registry: CollectorRegistry) -> None:
    metered = meter.on_call_complete(call(model_used=None, usage=None, status="400"))
    assert metered.findings == ()
    assert registry.get_sample_value("gateway_unpriced_calls_total", SONNET) is None


def test_labels_are_bounded(meter: Meter, registry: CollectorRegistry) -> None:
    meter.on_call_complete(call(step="user-42-step", model_used="claude-sonnet-4-6-exp"))
    bucketed = {"provider": "anthropic", "model": "other", "step": "other"}
    assert registry.get_sample_value("gateway_requests_total", {**bucketed, "status": "200"}) == 1


def test_output_rate_is_observed_for_completed_streams_only(
    meter: Meter, registry: CollectorRegistry
) -> None:
    meter.on_call_complete(call(ttft_s=None))  # not a stream
    meter.on_call_complete(call(ttft_s=1.0, status="cut"))  # its tail is a dead connection
    meter.on_call_complete(call(ttft_s=1.0, duration_s=3.0))  # 1,000 tokens in 2 s
    count = registry.get_sample_value("gateway_output_tokens_per_second_count", SONNET)
    total = registry.get_sample_value("gateway_output_tokens_per_second_sum", SONNET)
    assert (count, total) == (1, 500)
    assert registry.get_sample_value("gateway_time_to_first_token_seconds_count", SONNET) == 2


def test_upstream_errors_are_the_providers_failures(
    meter: Meter, registry: CollectorRegistry
) -> None:
    statuses = ["200", "400", "401", "413", "client_closed", "429", "500", "502", "504", "529"]
    for status in [*statuses, "cut", "stream_error"]:
        meter.on_call_complete(call(status=status, usage=None))

    def errors(status: str) -> float | None:
        labels = {"provider": "anthropic", "status": status}
        return registry.get_sample_value("gateway_upstream_errors_total", labels)

    for status in ("429", "500", "502", "504", "529", "cut", "stream_error"):
        assert errors(status) == 1, status
    for status in ("200", "400", "401", "413", "client_closed"):
        assert errors(status) is None, status


def test_overhead_is_observed_when_the_relay_measured_it(
    meter: Meter, registry: CollectorRegistry
) -> None:
    meter.on_call_complete(call())
    meter.on_call_complete(call(overhead_s=0.0004))
    assert registry.get_sample_value("gateway_overhead_seconds_count", SONNET) == 1
    le = {**SONNET, "le": "0.0005"}
    assert registry.get_sample_value("gateway_overhead_seconds_bucket", le) == 1


def test_overhead_buckets_place_a_call_either_side_of_two_milliseconds(
    meter: Meter, registry: CollectorRegistry
) -> None:
    meter.on_call_complete(call(overhead_s=0.0018))
    meter.on_call_complete(call(overhead_s=0.0022))

    def below(bound: str) -> float | None:
        le = {**SONNET, "le": bound}
        return registry.get_sample_value("gateway_overhead_seconds_bucket", le)

    assert (below("0.0015"), below("0.002"), below("0.0025")) == (0, 1, 2)


def test_ttft_buckets_span_llm_latencies(meter: Meter, registry: CollectorRegistry) -> None:
    meter.on_call_complete(call(ttft_s=0.04))
    meter.on_call_complete(call(ttft_s=29.0))
    bucket = "gateway_time_to_first_token_seconds_bucket"
    assert registry.get_sample_value(bucket, {**SONNET, "le": "0.05"}) == 1
    assert registry.get_sample_value(bucket, {**SONNET, "le": "30.0"}) == 2


def test_the_relays_price_is_taken_for_the_same_inputs_only(meter: Meter) -> None:
    assert meter.pricing.cost("anthropic", "claude-sonnet-4-6", CACHED) == pytest.approx(0.069)
    said = Priced("claude-sonnet-4-6", CACHED, (), 1.25)  # not the real price: seen if taken
    assert meter.price(call(priced=said)).cost_usd == 1.25
    unpriced = meter.price(call(priced=said._replace(usd=None)))
    assert unpriced.answer_usd is None
    assert unpriced.findings == (UNPRICED_MODEL,)
    # Priced for other inputs: priced again.
    for other in (
        said._replace(model="claude-haiku-4-5"),
        said._replace(usage=replace(CACHED)),  # equal, but not the record's usage
        said._replace(context=(("service_tier", "priority"),)),
    ):
        assert meter.price(call(priced=other)).cost_usd == pytest.approx(0.069)


def samples(registry: CollectorRegistry) -> list[tuple[str, tuple[tuple[str, str], ...], str]]:
    return sorted(
        (sample.name, tuple(sorted(sample.labels.items())), repr(sample.value))
        for metric in registry.collect()
        for sample in metric.samples
        if not sample.name.endswith("_created")
    )


def test_in_place_values_read_as_prometheus_client_adds_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Values of this process' own are added to in place; the samples are those the
    children's own inc and observe make (as multiprocess mode's values are added to)."""
    durations = [0.0, 0.0005, 0.002, 0.1, 1.0, 2.5, 7.0, 1e9, float("inf"), float("nan"), 3.0]
    registries = CollectorRegistry(), CollectorRegistry()
    for registry in registries:
        if registry is registries[1]:
            monkeypatch.setattr(series, "in_place", lambda *values: False)
        labels = LabelBounds(["synthesis"], ["claude-sonnet-4-6"])
        meter = Meter(Metrics(registry), labels)
        for index, duration in enumerate(durations):
            status = ("200", "529")[index % 2]
            meter.on_call_complete(
                call(duration_s=duration, status=status, overhead_s=duration, ttft_s=duration / 2)
            )
        made = [item.plain is not None for item in meter._series.values()]
        assert made == [registry is registries[0]] * 2
        for duration in durations:
            meter.on_call_complete(call(duration_s=duration, rewrites=("pin", "whitespace")))
    assert samples(registries[0]) == samples(registries[1])
    requests = (("model", "claude-sonnet-4-6"), ("provider", "anthropic"), ("status", "200"))
    assert ("gateway_requests_total", (*requests, ("step", "synthesis")), "17.0") in samples(
        registries[0]
    )


def test_token_counts_are_usage_by_type_in_its_order_over_a_grid(
    meter: Meter, registry: CollectorRegistry
) -> None:
    """Each type's count as `Usage.by_type()` gives it, a series made only for a count, and
    the series in by_type's order (the exposition's)."""
    import itertools

    expected: dict[str, int] = {}
    order: list[str] = []
    for counts in itertools.product((0, 1, 7), repeat=5):
        usage = Usage(*counts)
        meter.record(call(usage=usage), meter.price(call(usage=usage)))
        for kind, count in usage.by_type().items():
            if count:
                expected[kind] = expected.get(kind, 0) + count
                if kind not in order:
                    order.append(kind)
    for kind, total in expected.items():
        labels = {**SONNET, "type": kind}
        assert registry.get_sample_value("gateway_tokens_total", labels) == total
    seen = [
        sample.labels["type"]
        for metric in registry.collect()
        if metric.name == "gateway_tokens"
        for sample in metric.samples
        if sample.name == "gateway_tokens_total"
    ]
    assert seen == order
