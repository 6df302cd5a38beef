"""The dispatcher's retries and fallbacks, deadline and retry budget, in-process: a scripted
provider behind httpx.MockTransport, a fake clock, and a sleep that only records its delay."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from gateway.cascade.dispatch import ChainFailed, Deadline, Route, Started
from gateway.cascade.retry_budget import RetryBudget
from gateway.errors import DeadlinePassed, ResponseTooLarge, UpstreamSilent, UpstreamUnavailable
from gateway.settings import ProviderSettings
from tests.unit.cascade.scripted import (
    CONTENT,
    ROUTE,
    START,
    Chunks,
    Reply,
    Script,
    Wired,
    body_reply,
    candidates,
    held,
    json_reply,
    raises,
    retries,
)

A, B = "claude-sonnet-5-5", "claude-haiku-5-5"
OK = json_reply(200)
OVERLOADED = json_reply(529)


def run(wired: Wired, *models: str, **options: Any) -> Started | ChainFailed:
    async def go() -> Started | ChainFailed:
        route = options.pop("route", ROUTE)
        if "deadline_s" in options:
            options["deadline"] = Deadline.after(options.pop("deadline_s"))
        try:
            started = await wired.dispatcher.start(route, candidates(*models), **options)
        except ChainFailed as failed:
            return failed
        await started.response.aclose()
        return started

    return asyncio.run(go())


def statuses(outcome: Started | ChainFailed) -> list[str]:
    return [attempt.status for attempt in outcome.attempts]


def wired(replies: dict[str, list[Reply]], **settings: Any) -> Wired:
    return Wired(Script(replies), retries(**settings))


def test_a_failed_attempt_is_retried_on_the_same_model_after_backoff() -> None:
    w = wired({A: [OVERLOADED, OVERLOADED, OK]}, base_delay_s=1.0, max_delay_s=8.0)
    started = run(w, A)
    assert isinstance(started, Started)
    assert started.response.status_code == 200
    assert started.model == A
    assert started.retried
    assert statuses(started) == ["529", "529", "200"]
    assert [a.relayed for a in started.attempts] == [False, False, True]
    # Doubling from base_delay_s, jittered down by at most a quarter.
    assert 0.75 <= w.slept[0] <= 1.0
    assert 1.5 <= w.slept[1] <= 2.0


def test_backoff_stops_doubling_at_its_cap() -> None:
    w = wired({A: [OVERLOADED]}, attempts_per_model=5, base_delay_s=1.0, max_delay_s=2.0)
    run(w, A)
    assert len(w.slept) == 4
    assert all(s <= 2.0 for s in w.slept)
    assert min(w.slept[2:]) >= 1.5


@pytest.mark.parametrize(
    ("headers", "wait"), [({"retry-after-ms": "1500"}, 1.5), ({"retry-after": "3"}, 3.0)]
)
def test_a_retry_waits_as_long_as_the_provider_asks(headers: dict[str, str], wait: float) -> None:
    w = wired({A: [json_reply(429, headers), OK]})
    started = run(w, A)
    assert isinstance(started, Started)
    assert started.response.status_code == 200
    assert w.slept == [wait]


def test_a_provider_asking_for_too_long_a_wait_gets_the_fallback_at_once() -> None:
    w = wired({A: [json_reply(429, {"retry-after": "60"})], B: [OK]}, max_retry_after_s=20)
    started = run(w, A, B)
    assert isinstance(started, Started)
    assert started.model == B
    assert w.script.calls == [A, B]
    assert w.slept == []


def test_a_model_failing_every_retry_falls_back_to_the_next() -> None:
    w = wired({A: [OVERLOADED], B: [OK]}, attempts_per_model=3)
    started = run(w, A, B)
    assert isinstance(started, Started)
    assert started.model == B
    assert w.script.calls == [A, A, A, B]
    assert statuses(started) == ["529", "529", "529", "200"]


def test_when_every_attempt_fails_the_last_response_is_relayed() -> None:
    w = wired({A: [OVERLOADED], B: [json_reply(503)]}, attempts_per_model=2)
    started = run(w, A, B)
    assert isinstance(started, Started)
    assert started.response.status_code == 503
    assert started.model == B
    assert w.script.calls == [A, A, B, B]
    assert [a.relayed for a in started.attempts] == [False, False, False, True]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_a_client_error_is_relayed_without_a_retry(status: int) -> None:
    w = wired({A: [json_reply(status)], B: [OK]})
    started = run(w, A, B)
    assert isinstance(started, Started)
    assert started.response.status_code == status
    assert started.body is not None
    assert b"status_" in started.body
    assert w.script.calls == [A]


@pytest.mark.parametrize("status", [408, 409, 429, 500, 502, 503, 504, 529])
def test_what_is_retried(status: int) -> None:
    w = wired({A: [json_reply(status), OK]})
    assert statuses(run(w, A)) == [str(status), "200"]


def test_an_unreachable_provider_is_retried_then_the_chain_fails() -> None:
    w = wired({A: [raises(httpx.ConnectError("refused"))]}, attempts_per_model=3)
    failed = run(w, A)
    assert isinstance(failed, ChainFailed)
    assert isinstance(failed.error, UpstreamUnavailable)
    assert failed.error.status == 502
    assert statuses(failed) == ["502", "502", "502"]
    assert [a.relayed for a in failed.attempts] == [False, False, True]  # its error is sent


def test_a_connect_timeout_is_retried() -> None:
    w = wired({A: [raises(httpx.ConnectTimeout("slow")), OK]})
    assert statuses(run(w, A)) == ["504", "200"]


def test_a_provider_silent_past_its_read_timeout_is_not_retried_on_the_same_model() -> None:
    # It took the call: another try would bill it again, and likely wait as long.
    w = wired({A: [raises(httpx.ReadTimeout("silent")), OK], B: [OK]})
    started = run(w, A, B)
    assert isinstance(started, Started)
    assert started.model == B
    assert w.script.calls == [A, B]


def test_read_timeouts_are_retried_when_configured() -> None:
    w = wired({A: [raises(httpx.ReadTimeout("silent")), OK]}, retry_read_timeouts=True)
    assert statuses(run(w, A)) == ["504", "200"]


def test_a_read_timeout_on_the_last_model_is_the_chains_error() -> None:
    failed = run(wired({A: [raises(httpx.ReadTimeout("silent"))]}), A)
    assert isinstance(failed, ChainFailed)
    assert isinstance(failed.error, UpstreamSilent)


def test_a_json_body_cut_midway_is_retried_before_the_client_has_a_byte() -> None:
    cut = body_reply([b'{"type":"mes'], httpx.ReadError("reset"))
    w = wired({A: [cut, OK]})
    started = run(w, A)
    assert isinstance(started, Started)
    assert started.body is not None
    assert statuses(started) == ["cut", "200"]


def test_a_json_body_over_the_cap_goes_to_the_next_model_and_spares_the_breaker() -> None:
    w = wired({A: [body_reply([b"x" * 600, b"y" * 600])], B: [OK]}, breaker_failures=1)
    w.upstream._settings["anthropic"] = ProviderSettings(
        base_url="http://upstream.invalid", max_response_bytes=1000
    )
    started = run(w, A, B)
    assert isinstance(started, Started)
    assert started.model == B
    assert statuses(started) == ["502", "200"]
    # Too large is not a sign of the model's health: its breaker is not opened.
    assert w.breakers.state("anthropic", A) == "closed"
    failed = run(w, A)
    assert isinstance(failed, ChainFailed)
    assert isinstance(failed.error, ResponseTooLarge)


@pytest.mark.parametrize(("count", "calls"), [(b"0", [A, A, A, B]), (b"2", [A, B])])
def test_a_clients_own_retry_gets_no_retries_of_the_same_model(
    count: bytes, calls: list[str]
) -> None:
    w = wired({A: [OVERLOADED], B: [OK]}, attempts_per_model=3)
    route = Route("anthropic", "POST", "/v1/messages", [(b"X-Stainless-Retry-Count", count)])
    run(w, A, B, route=route)
    assert w.script.calls == calls


# --- the circuit breaker --------------------------------------------------------------------


def test_failed_attempts_open_the_breaker_and_its_model_is_then_skipped() -> None:
    w = wired({A: [OVERLOADED], B: [OK]}, attempts_per_model=2, breaker_failures=2)
    run(w, A, B)
    assert w.breakers.state("anthropic", A) == "open"
    assert w.breakers.state("anthropic", B) == "closed"
    w.script.calls.clear()
    started = run(w, A, B)
    assert isinstance(started, Started)
    assert started.model == B
    assert w.script.calls == [B]  # nothing sent to the open model
    assert w.slept[2:] == []  # and no backoff for it


def test_an_open_breaker_on_the_only_model_fails_the_chain_with_its_retry_after() -> None:
    w = wired({A: [OVERLOADED]}, attempts_per_model=1, breaker_failures=1, breaker_cooldown_s=30)
    run(w, A)
    failed = run(w, A)
    assert isinstance(failed, ChainFailed)
    assert failed.error.status == 529
    assert failed.attempts == []
    w.clock.now += 30  # cooled down: one probe goes through, and its success closes it
    w.script.replies[A] = [OK]
    started = run(w, A)
    assert isinstance(started, Started)
    assert w.breakers.state("anthropic", A) == "closed"


def test_a_client_error_counts_as_the_models_health() -> None:
    w = wired({A: [json_reply(400)]}, breaker_failures=1)
    run(w, A)
    assert w.breakers.state("anthropic", A) == "closed"


# --- the retry budget -----------------------------------------------------------------------


def test_past_the_retry_budget_a_failed_attempts_answer_goes_to_the_client_at_once() -> None:
    w = wired({A: [OVERLOADED], B: [OK]}, budget_ratio=0.5, budget_min_per_s=0)
    # One call: half a retry allowed, so none; its 529 is relayed, no fallback tried.
    started = run(w, A, B)
    assert isinstance(started, Started)
    assert started.response.status_code == 529
    assert w.script.calls == [A]
    assert w.slept == []
    run(w, A, B)  # two calls in the window: one retry allowed between them
    assert w.script.calls == [A, A, A]


def test_an_attempt_refused_by_a_breaker_spends_no_retry_budget() -> None:
    w = wired({A: [OVERLOADED], B: [OK]}, attempts_per_model=1, breaker_failures=1)
    run(w, A, B)  # A fails (its breaker opens), B answers: one retry spent
    w.dispatcher.budget = RetryBudget(retries(budget_ratio=0, budget_min_per_s=0), w.clock)
    started = run(w, A, B)  # A is refused unsent: B is its first attempt, not a retry
    assert isinstance(started, Started)
    assert started.model == B


# --- the call's deadline --------------------------------------------------------------------


def test_a_call_past_its_deadline_fails_with_deadline_passed() -> None:
    never = asyncio.Event()
    w = wired({A: [held(never, OK)], B: [OK]}, breaker_failures=1)
    failed = run(w, A, B, deadline_s=0)
    assert isinstance(failed, ChainFailed)
    assert isinstance(failed.error, DeadlinePassed)
    assert statuses(failed) == ["504"]
    assert failed.attempts[0].relayed
    assert w.script.calls == [A]  # no fallback after the deadline
    assert w.breakers.state("anthropic", A) == "closed"  # the call's time, not the model's fault


def test_no_retry_is_waited_for_that_would_end_past_the_deadline() -> None:
    w = wired({A: [json_reply(529, {"retry-after": "15"}), OK]})
    started = run(w, A, deadline_s=10)
    assert isinstance(started, Started)
    assert started.response.status_code == 529
    assert w.slept == []
    assert w.script.calls == [A]


def test_a_retry_within_the_deadline_is_made() -> None:
    w = wired({A: [json_reply(529, {"retry-after": "1"}), OK]})
    started = run(w, A, deadline_s=600)
    assert isinstance(started, Started)
    assert started.response.status_code == 200


# --- streams without a hedge ----------------------------------------------------------------


def test_a_stream_starts_at_its_headers_when_not_hedged() -> None:
    bodies: list[Chunks] = []
    w = wired({A: [body_reply([START, CONTENT], stream=True, bodies=bodies)]})

    async def go() -> None:
        started = await w.dispatcher.start(ROUTE, candidates(A))
        assert started.tap is not None
        assert started.prelude == []
        assert not started.tap.saw_content  # the relay feeds it, not the dispatcher
        assert [(a.model, a.status, a.relayed) for a in started.attempts] == [(A, "200", True)]
        await started.response.aclose()

    asyncio.run(go())
    assert bodies[0].closed


def test_a_one_attempt_call_is_relayed_as_noted_under_its_deadline() -> None:
    w = wired({A: [OK], B: [OK]})
    for options in ({}, {"deadline_s": 30.0}):
        started = run(w, A, B, **options)
        assert isinstance(started, Started)
        assert [(a.model, a.status, a.relayed, a.hedge) for a in started.attempts] == [
            (A, "200", True, False)
        ]
    assert w.script.calls == [A, A]  # once a call: no retry, the fallback never tried


def test_an_open_breaker_answers_in_each_providers_overloaded_status() -> None:
    w = wired({A: [OK]}, breaker_failures=1, breaker_cooldown_s=30)
    for provider, status in (("anthropic", 529), ("openai", 503)):
        w.breakers.failed(provider, A)
        failed = run(w, A, route=Route(provider, "POST", "/v1/x", []))
        assert isinstance(failed, ChainFailed)
        assert failed.error.status == status
        assert failed.error.headers == ((b"retry-after", b"30"),)
    assert w.script.calls == []  # nothing sent while open
