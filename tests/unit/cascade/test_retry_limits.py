"""The retry budget and the circuit breaker: on their own with a fake clock, and in the
dispatcher against a fake upstream (an httpx transport) that fails every call."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import httpx
import orjson
import pytest

from gateway.cascade.breaker import Breakers
from gateway.cascade.dispatch import Candidate, ChainFailed, Dispatcher, Route, Started
from gateway.cascade.retry import RetryPolicy
from gateway.cascade.retry_budget import RetryBudget
from gateway.errors import CircuitOpen
from gateway.settings import ProviderSettings, RetrySettings
from gateway.upstream import Upstream
from gateway.wire.anthropic_usage import StreamUsage


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def retries(**fields: Any) -> RetrySettings:
    return RetrySettings(**{"base_delay_s": 0, **fields})


# --- the breaker on its own --------------------------------------------------------------


def test_the_breaker_opens_after_failures_in_a_row_and_a_probe_closes_it() -> None:
    clock = Clock()
    changes: list[bool] = []
    breakers = Breakers(
        retries(breaker_failures=3, breaker_cooldown_s=30),
        clock,
        on_change=lambda p, m, opened: changes.append(opened),
    )
    for _ in range(2):
        assert breakers.admit("anthropic", "m") is None
        breakers.failed("anthropic", "m")
    breakers.succeeded("anthropic", "m")  # a success between failures: the count starts over
    for _ in range(3):
        assert breakers.admit("anthropic", "m") is None
        breakers.failed("anthropic", "m")
    assert breakers.state("anthropic", "m") == "open"
    assert breakers.admit("anthropic", "m") == 30
    assert breakers.admit("anthropic", "other") is None  # per model
    assert breakers.admit("openai", "m") is None  # and per provider
    clock.now += 29.5
    assert breakers.admit("anthropic", "m") == 1  # a retry-after is at least a second
    clock.now += 1
    assert breakers.admit("anthropic", "m") is None  # the probe
    assert breakers.admit("anthropic", "m") is not None  # one probe at a time
    breakers.failed("anthropic", "m")  # the probe failed: open again, for a whole cool-down
    assert breakers.admit("anthropic", "m") == 30
    clock.now += 30
    assert breakers.admit("anthropic", "m") is None
    breakers.succeeded("anthropic", "m")
    assert breakers.state("anthropic", "m") == "closed"
    assert breakers.admit("anthropic", "m") is None
    assert changes == [True, False]


def test_an_abandoned_probe_lets_the_next_call_probe() -> None:
    clock = Clock()
    breakers = Breakers(retries(breaker_failures=1, breaker_cooldown_s=5), clock)
    breakers.failed("openai", "m")
    clock.now += 5
    assert breakers.admit("openai", "m") is None
    breakers.abandoned("openai", "m")
    assert breakers.admit("openai", "m") is None


def test_the_breakers_track_a_bounded_number_of_models() -> None:
    breakers = Breakers(retries(breaker_failures=1, breaker_max_models=2), Clock())
    for model in ("a", "b", "c"):
        breakers.failed("anthropic", model)
    assert [breakers.state("anthropic", m) for m in "abc"] == ["open", "open", "closed"]


# --- the budget on its own ---------------------------------------------------------------


def test_the_budget_allows_a_share_of_the_calls_over_its_window() -> None:
    clock = Clock()
    exhausted: list[str] = []
    budget = RetryBudget(
        retries(budget_ratio=0.2, budget_min_per_s=0.1, budget_window_s=10),
        clock,
        on_exhausted=exhausted.append,
    )
    for _ in range(10):
        budget.call("anthropic")
    # 20% of 10 calls, plus 0.1/s over 10 s: 3 retries.
    assert [budget.try_retry("anthropic") for _ in range(4)] == [True, True, True, False]
    assert exhausted == ["anthropic"]
    assert budget.try_retry("openai")  # per provider: the floor alone
    clock.now += 11  # the window has moved past them all
    assert budget.try_retry("anthropic")
    assert not budget.try_retry("anthropic")  # the floor alone now


# --- in the dispatcher -------------------------------------------------------------------


class FailingUpstream:
    """A provider that answers 529 overloaded to every call (or 200 for `healthy` models)."""

    def __init__(self, healthy: frozenset[str] = frozenset()) -> None:
        self.healthy = healthy
        self.calls: Counter[str] = Counter()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        model = orjson.loads(request.content)["model"]
        self.calls[model] += 1
        if model in self.healthy:
            return httpx.Response(200, json={"type": "message", "model": model})
        body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return httpx.Response(529, json=body)


def dispatcher(
    fake: FailingUpstream, settings: RetrySettings, clock: Clock | None = None
) -> Dispatcher:
    clock = clock or Clock()
    upstream = Upstream(
        {"anthropic": ProviderSettings(base_url="http://upstream.invalid")},
        "httpcore",
        transport=httpx.MockTransport(fake),
    )

    async def no_sleep(_: float) -> None:
        return None

    return Dispatcher(
        upstream,
        RetryPolicy(settings),
        lambda: StreamUsage(1 << 20),
        sleep=no_sleep,
        breakers=Breakers(settings, clock),
        budget=RetryBudget(settings, clock),
    )


def route(headers: list[tuple[bytes, bytes]] | None = None) -> Route:
    return Route("anthropic", "POST", "/v1/messages", headers or [])


def candidate(model: str) -> Candidate:
    return Candidate(model, orjson.dumps({"model": model, "max_tokens": 5}))


async def call(dispatch: Dispatcher, *models: str, **kw: Any) -> Started | ChainFailed:
    try:
        started = await dispatch.start(route(kw.get("headers")), [candidate(m) for m in models])
    except ChainFailed as failed:
        return failed
    await started.response.aclose()
    return started


def test_an_always_failing_upstream_gets_at_most_1_2_times_the_calls() -> None:
    """Before the fix, every call was tried three times (3x the client's requests upstream)."""
    fake = FailingUpstream()
    clock = Clock()
    dispatch = dispatcher(fake, RetrySettings(base_delay_s=0), clock)

    async def run() -> None:
        for _ in range(30):  # a client retrying every 5 s for 150 s
            await call(dispatch, "claude-sonnet-4-6")
            clock.now += 5

    asyncio.run(run())
    assert sum(fake.calls.values()) <= 1.2 * 30


def test_an_open_breaker_answers_overloaded_at_once_with_retry_after() -> None:
    fake = FailingUpstream()
    settings = retries(breaker_failures=2, breaker_cooldown_s=30, budget_min_per_s=100)
    dispatch = dispatcher(fake, settings)

    async def run() -> Started | ChainFailed:
        await call(dispatch, "claude-sonnet-4-6")  # 3 attempts: the breaker opens
        return await call(dispatch, "claude-sonnet-4-6")

    refused = asyncio.run(run())
    assert fake.calls["claude-sonnet-4-6"] == 2  # the third attempt was not sent
    assert isinstance(refused, ChainFailed)
    assert isinstance(refused.error, CircuitOpen)
    assert refused.error.status == 529
    assert refused.error.error_type == "overloaded_error"
    assert dict(refused.error.headers)[b"retry-after"] == b"30"


def test_a_fallback_is_tried_when_the_primarys_breaker_is_open() -> None:
    fake = FailingUpstream(healthy=frozenset({"claude-haiku-4-5"}))
    settings = retries(breaker_failures=1, budget_min_per_s=100)
    dispatch = dispatcher(fake, settings)

    async def run() -> Started | ChainFailed:
        await call(dispatch, "claude-sonnet-4-6")  # opens the primary's breaker
        return await call(dispatch, "claude-sonnet-4-6", "claude-haiku-4-5")

    started = asyncio.run(run())
    assert isinstance(started, Started)
    assert started.model == "claude-haiku-4-5"
    assert fake.calls == {"claude-sonnet-4-6": 1, "claude-haiku-4-5": 1}


@pytest.mark.parametrize(("count", "attempts"), [(b"0", 3), (b"1", 1), (b"2", 1)])
def test_a_clients_own_retry_gets_no_retries_of_the_gateways(count: bytes, attempts: int) -> None:
    fake = FailingUpstream()
    dispatch = dispatcher(fake, retries(breaker_failures=0, budget_min_per_s=100))
    asyncio.run(call(dispatch, "claude-sonnet-4-6", headers=[(b"x-stainless-retry-count", count)]))
    assert fake.calls["claude-sonnet-4-6"] == attempts


def test_a_clients_own_retry_may_still_fall_back() -> None:
    fake = FailingUpstream(healthy=frozenset({"claude-haiku-4-5"}))
    dispatch = dispatcher(fake, retries(breaker_failures=0, budget_min_per_s=100))
    headers = [(b"x-stainless-retry-count", b"1")]
    started = asyncio.run(call(dispatch, "claude-sonnet-4-6", "claude-haiku-4-5", headers=headers))
    assert isinstance(started, Started)
    assert fake.calls == {"claude-sonnet-4-6": 1, "claude-haiku-4-5": 1}
