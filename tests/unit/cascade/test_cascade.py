"""Routing, pinning, lifecycle and retry decisions, table by table (no server)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from typing import Any

import orjson
import pytest

from gateway.cascade.chain import client_retry
from gateway.cascade.lifecycle import Lifecycle
from gateway.cascade.retry import RetryPolicy, retry_after_s, retryable
from gateway.cascade.table import LatencyBudget, RoutingTable
from gateway.catalog import ModelCatalog
from gateway.cli import retirement_warnings
from gateway.errors import (
    DeadlinePassed,
    InvalidRequest,
    MalformedResponse,
    ResponseTooLarge,
    UpstreamSilent,
    UpstreamTimeout,
    UpstreamUnavailable,
)
from gateway.rewrite.pin import note_retirement, pin
from gateway.rewrite.request import LLMRequest
from gateway.rewrite.route import route
from gateway.rewrite.routes import in_canary
from gateway.settings import CanarySettings, RetrySettings, RoutingSettings, Settings

CATALOG = ModelCatalog.load()
STEPS: dict[str, Any] = {
    "routing": {"tier": "small"},
    "synthesis": {"tier": "large", "fallbacks": ["tier:small", "claude-haiku-4-5", "gpt-4.1"]},
    "search": {"total_ms": 2000},
    "review": {"tier": "large", "canary": {"model": "claude-sonnet-4-5", "percent": 100}},
}


def table(**settings: Any) -> RoutingTable:
    return RoutingTable(RoutingSettings(**{"steps": STEPS, **settings}), CATALOG)


def request(model: object, step: str | None = None, routing: bool = True) -> LLMRequest:
    body = {"model": model, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    return LLMRequest("anthropic", body, step, b"tenant", routing)


@pytest.mark.parametrize(
    ("model", "step", "routing", "expected", "rule"),
    [
        ("claude-opus-4-6", "routing", True, "claude-haiku-5-5", "route"),  # tier small
        ("claude-opus-4-6", "synthesis", True, "claude-sonnet-5-5", "route"),  # tier large
        ("claude-sonnet-5-5", "synthesis", True, "claude-sonnet-5-5", None),  # already there
        ("claude-opus-4-6", "search", True, "claude-opus-4-6", None),  # a step without a tier
        ("claude-opus-4-6", None, True, "claude-opus-4-6", None),  # no step label
        ("claude-opus-4-6", "unknown_step", True, "claude-opus-4-6", None),  # no default step
        ("claude-opus-4-6", "routing", False, "claude-opus-4-6", None),  # x-gateway-route: off
        ("tier:large", None, True, "claude-sonnet-5-5", "route"),  # the model names a tier
        ("tier:small", "synthesis", False, "claude-haiku-5-5", "route"),  # named tier wins
        # a canary's candidate is pinned like any model
        ("claude-opus-4-6", "review", True, "claude-sonnet-4-5-20250929", "route"),
    ],
)
def test_route(
    model: str, step: str | None, routing: bool, expected: str, rule: str | None
) -> None:
    routed = route(request(model, step, routing), table())
    assert routed.body["model"] == expected
    assert [r.rule for r in routed.rewrites] == ([rule] if rule else [])


def test_an_unknown_label_follows_the_default_step() -> None:
    routed = route(request("claude-opus-4-6", "my_step"), table(default_step="routing"))
    assert routed.body["model"] == "claude-haiku-5-5"
    assert routed.tier == "small"


def test_an_unknown_tier_is_the_clients_error() -> None:
    with pytest.raises(InvalidRequest, match="tier:tiny"):
        route(request("tier:tiny"), table())


@pytest.mark.parametrize(
    ("model", "policy", "expected", "rewrites", "findings"),
    [
        ("claude-sonnet-4-5", "pin", "claude-sonnet-4-5-20250929", ["pin"], []),
        ("claude-haiku-4-5", "pin", "claude-haiku-4-5-20251001", ["pin"], []),
        ("claude-haiku-4-5-20251001", "pin", "claude-haiku-4-5-20251001", [], []),  # dated
        ("claude-sonnet-4-6", "pin", "claude-sonnet-4-6", [], []),  # 4.6+: a fixed snapshot
        ("gpt-4.1", "pin", "gpt-4.1-2025-04-14", ["pin"], []),  # OpenAI's undated alias
        ("gpt-5.6-terra", "pin", "gpt-5.6-terra", [], []),  # no dated id exists
        ("some-private-model", "pin", "some-private-model", [], []),  # unknown: unchanged
        ("claude-haiku-4-5", "warn", "claude-haiku-4-5", [], ["unpinned_model"]),
        (42, "pin", 42, [], []),  # not a string: the provider will say so
    ],
)
def test_pin(
    model: object, policy: str, expected: object, rewrites: list[str], findings: list[str]
) -> None:
    pinned = pin(request(model), table(pin_policy=policy))
    assert pinned.body["model"] == expected
    assert [r.rule for r in pinned.rewrites] == rewrites
    assert [f.code for f in pinned.findings] == findings


def test_reject_names_the_snapshot() -> None:
    with pytest.raises(InvalidRequest, match="use 'claude-haiku-4-5-20251001'"):
        pin(request("claude-haiku-4-5"), table(pin_policy="reject"))


def test_configured_pins_override_the_catalog() -> None:
    held = table(pins={"claude-haiku-4-5": "claude-haiku-4-5-20250101"})
    assert pin(request("claude-haiku-4-5"), held).body["model"] == "claude-haiku-4-5-20250101"


def test_fallbacks_resolve_tiers_pin_aliases_and_skip_other_providers() -> None:
    plan = table().plan("synthesis")
    assert plan is not None
    assert plan.fallbacks["anthropic"] == ("claude-haiku-5-5", "claude-haiku-4-5-20251001")
    assert plan.fallbacks["openai"] == ("gpt-5.6-luna", "gpt-4.1-2025-04-14")


def test_default_tiers_point_at_no_retiring_model() -> None:
    today = dt.date(2026, 11, 25)
    lifecycle = Lifecycle(CATALOG)
    for models in RoutingSettings().tiers.values():
        for model in models.values():
            assert CATALOG.resolve(model) is not None, model
            assert lifecycle.days_left(model, today) is None, model


def test_canary_membership_is_stable_and_near_its_share() -> None:
    canary = CanarySettings(model="m", percent=25)
    members = [in_canary(canary, "step", f"conversation {n}".encode()) for n in range(4000)]
    assert members == [in_canary(canary, "step", f"conversation {n}".encode()) for n in range(4000)]
    assert 0.22 < sum(members) / len(members) < 0.28


@pytest.mark.parametrize(
    ("model", "today", "window", "finding"),
    [
        ("claude-sonnet-4-5", dt.date(2026, 11, 25), 30, "model_retiring"),  # 5 days left
        ("claude-sonnet-4-5-20250929", dt.date(2026, 10, 1), 30, None),  # 60 days: outside
        ("claude-sonnet-4-5", dt.date(2026, 12, 1), 30, "model_retired"),
        ("claude-sonnet-4-6", dt.date(2026, 11, 25), 30, None),  # no retirement date
    ],
)
def test_traffic_to_a_retiring_model_is_a_finding(
    model: str, today: dt.date, window: int, finding: str | None
) -> None:
    noted = note_retirement(request(model), Lifecycle(CATALOG), window, today)
    assert [f.code for f in noted.findings] == ([finding] if finding else [])


def test_the_providers_models_list_replaces_the_catalogs_dates() -> None:
    lifecycle = Lifecycle(CATALOG)
    listing = {
        "data": [
            {"id": "claude-sonnet-4-6", "retires_at": "2027-01-15T00:00:00Z"},
            {"id": "claude-sonnet-4-5-20250929", "retires_at": None},
            {"id": 7},  # ignored
        ]
    }
    assert lifecycle.merge_models_list(orjson.dumps(listing)) == 2
    today = dt.date(2026, 12, 20)
    assert lifecycle.days_left("claude-sonnet-4-6", today) == 26
    assert lifecycle.days_left("claude-sonnet-4-5", today) is None  # by alias, too
    assert lifecycle.merge_models_list(b"not json") == 0


@pytest.mark.parametrize(
    ("status", "retried"),
    [(400, False), (401, False), (404, False), (413, False), (408, True), (409, True),
     (429, True), (500, True), (502, True), (503, True), (529, True)],
)  # fmt: skip
def test_what_is_retried(status: int, retried: bool) -> None:
    assert retryable(status) is retried


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),  # -ms first
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "Wed, 21 Oct 2026 07:28:00 GMT"}, None),  # a date: backoff instead
        ({"retry-after": "-1"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after_s(headers) == seconds


def test_backoff_doubles_to_its_cap_with_jitter_and_honours_retry_after() -> None:
    policy = RetryPolicy(
        RetrySettings(base_delay_s=0.5, max_delay_s=4, max_retry_after_s=10), random.Random(1)
    )
    for retry, base in enumerate([0.5, 1, 2, 4, 4]):
        assert 0.75 * base <= policy.backoff_s(retry) <= base
    assert policy.delay_s(0, {"retry-after": "3"}) == 3
    assert policy.delay_s(0, {"retry-after": "30"}) is None  # too long: fall back instead


@pytest.mark.parametrize(
    ("ttft_s", "duration_s", "breaches"),
    [(0.1, 1.0, ()), (0.6, 1.0, ("ttft",)), (0.1, 3.0, ("total",)), (None, 3.0, ("total",))],
)
def test_latency_budget_breaches(
    ttft_s: float | None, duration_s: float, breaches: tuple[str, ...]
) -> None:
    assert LatencyBudget("s", 500, 2000).breaches(ttft_s, duration_s) == breaches


def test_config_names_only_known_tiers_and_steps() -> None:
    with pytest.raises(ValueError, match="unknown tier 'huge'"):
        RoutingSettings(steps={"x": {"tier": "huge"}})
    with pytest.raises(ValueError, match="default_step"):
        RoutingSettings(default_step="nowhere")
    with pytest.raises(ValueError, match="hedge needs ttft_ms"):
        RoutingSettings(steps={"x": {"hedge": True}})


def test_check_warns_about_config_that_names_a_retiring_model() -> None:
    settings = Settings(
        routing=RoutingSettings(
            tiers={
                "small": {"anthropic": "claude-haiku-5-5"},
                "large": {"anthropic": "claude-sonnet-4-5"},
            },
            steps={"synthesis": {"tier": "large", "fallbacks": ["claude-3-5-haiku-20241022"]}},
        )
    )
    assert retirement_warnings(settings, dt.date(2026, 11, 25)) == [
        "routing.tiers.large.anthropic: claude-sonnet-4-5-20250929 retires in 5 days;"
        " pin a current model",
        "routing.steps.synthesis.fallbacks: claude-3-5-haiku-20241022 retired 279 days ago;"
        " pin a current model",
    ]
    assert retirement_warnings(Settings(), dt.date(2026, 11, 25)) == []


def test_what_follows_each_upstream_failure() -> None:
    policy = RetryPolicy(RetrySettings())
    assert policy.after_error(UpstreamUnavailable("cut")) == "retry"
    assert policy.after_error(MalformedResponse("not HTTP")) == "retry"
    assert policy.after_error(UpstreamTimeout("connect")) == "retry"
    assert policy.after_error(UpstreamSilent("took the call, then nothing")) == "next_model"
    assert policy.after_error(ResponseTooLarge("500 MB")) == "next_model"
    assert policy.after_error(DeadlinePassed("600 s")) == "stop"
    lenient = RetryPolicy(RetrySettings(retry_read_timeouts=True))
    assert lenient.after_error(UpstreamSilent("took the call, then nothing")) == "retry"


def test_a_steps_time_limit_reaches_its_plan() -> None:
    settings = RoutingSettings(steps={"quick": {"timeout_s": 1.5}, "slow": {}})  # type: ignore[dict-item]
    table = RoutingTable(settings, ModelCatalog.load())
    assert table.plan("quick").timeout_s == 1.5  # type: ignore[union-attr]
    assert table.plan("slow").timeout_s is None  # type: ignore[union-attr]


def test_a_hung_provider_holds_a_client_for_one_read_timeout_by_default() -> None:
    """3 attempts x 600 s before; now one attempt of timeout_s, and no call
    outlives total_timeout_s (streams: stream_timeout_s)."""
    settings = Settings()
    for provider in (settings.providers.anthropic, settings.providers.openai):
        assert provider.timeout_s <= 120
        assert provider.timeout_s < provider.total_timeout_s <= provider.stream_timeout_s
    assert not settings.routing.retries.retry_read_timeouts
    assert RetryPolicy(settings.routing.retries).after_error(UpstreamSilent("")) != "retry"


def test_a_remembered_retirement_follows_a_merged_models_list() -> None:
    lifecycle = Lifecycle(CATALOG)
    today = dt.date(2026, 12, 20)
    assert lifecycle.retiring_within("claude-sonnet-4-6", today, 30) is None
    listing = {"data": [{"id": "claude-sonnet-4-6", "retires_at": "2027-01-15T00:00:00Z"}]}
    lifecycle.merge_models_list(orjson.dumps(listing))
    assert lifecycle.retiring_within("claude-sonnet-4-6", today, 30) == 26
    assert lifecycle.retiring_within("claude-sonnet-4-6", today, 10) is None
    assert lifecycle.retiring_within("claude-sonnet-4-6", dt.date(2027, 1, 10), 10) == 5


def test_many_model_names_keep_the_remembered_answers_bounded() -> None:
    lifecycle = Lifecycle(CATALOG)
    today = dt.date(2026, 11, 25)
    for n in range(3000):
        lifecycle.retiring_within(f"made-up-{n}", today, 30)
    assert len(lifecycle._within) <= 1024
    assert lifecycle.retiring_within("claude-sonnet-4-5", today, 30) == 5


def test_client_retry_reads_the_stainless_retry_count_in_any_case() -> None:
    def former(headers: list[tuple[bytes, bytes]]) -> bool:
        for name, value in headers:
            if name.lower() == b"x-stainless-retry-count":
                return value.strip().isdigit() and int(value) > 0
        return False

    names = [
        b"x-stainless-retry-count",
        b"X-Stainless-Retry-Count",
        b"x-stainless-retry-coun",
        b"x-stainless-retry-counts",
        b"x-stainless-lang",
    ]
    values = [b"0", b"1", b" 2 ", b"x", b""]
    for name, value in itertools.product(names, values):
        for headers in ([(name, value)], [(b"a", b"1"), (name, value), (names[0], b"3")]):
            assert client_retry(headers) == former(headers)
