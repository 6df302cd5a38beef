"""One chain of attempts on a list of models: each model tried up to `attempts_per_model`
times with backoff, then the next model; the circuit breaker, the retry budget and the
call's deadline can each end it sooner.

An attempt has *started* once a response arrives that will be relayed: a JSON body read
whole, an error that is not worth retrying, or a stream's headers — or, in a hedge race
(`hold`), a stream's first content event, the events before it held and fed to its tap.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from gateway.cascade.attempts import Attempt, Candidate, Route, Tap
from gateway.cascade.breaker import Breakers
from gateway.cascade.expiry import Expiry
from gateway.cascade.outcome import (
    ChainFailed,
    Deadline,
    Failure,
    Started,
    healthy,
    logged_status,
)
from gateway.cascade.retry import RetryPolicy, retryable
from gateway.cascade.retry_budget import RetryBudget
from gateway.errors import CircuitOpen, GatewayError, UpstreamSilent, UpstreamUnavailable
from gateway.upstream import BodyBroken, Response, Upstream
from gateway.wire.headers import RawHeaders
from gateway.wire.usage import Usage


class Means(Protocol):
    """What a chain runs with (the Dispatcher)."""

    upstream: Upstream
    policy: RetryPolicy
    new_tap: Callable[[], Tap]
    sleep: Callable[[float], Awaitable[None]]
    breakers: Breakers | None
    budget: RetryBudget | None


class Chain:
    """Attempts on one list of models: each retried per the policy, then the next model."""

    def __init__(
        self,
        means: Means,
        route: Route,
        candidates: Sequence[Candidate],
        deadline: Deadline | None,
        *,
        hedge: bool,
        hold: bool,  # a stream starts at its first content event, not at its headers
    ) -> None:
        self.means = means
        self.hold = hold
        self.route = route
        per_model = means.policy.settings.attempts_per_model
        if client_retry(route.headers):
            per_model = 1  # the client is retrying already: no retries on top of its own
        self.plan = [(candidate, retry) for candidate in candidates for retry in range(per_model)]
        self.hedge = hedge
        self.deadline = deadline
        self.attempts: list[Attempt] = []
        self.tap: Tap | None = None  # the attempt in flight's, for a cancelled loser's usage
        self.current: str | None = None  # the model of the attempt in flight
        self.began = 0.0
        self.sent = False  # an attempt of this chain reached upstream

    async def run(self) -> Started:
        """The started attempt. The loop is this frame: the first attempt is awaited straight
        from here, through the breaker's and the deadline's scope only."""
        try:
            index = 0
            while True:
                candidate, retry = self.plan[index]
                outcome = await self._attempt(candidate)
                if isinstance(outcome, Started):
                    return outcome
                policy = self.means.policy
                then = policy.after_error(outcome.error) if outcome.error is not None else "retry"
                if outcome.rejected:
                    then = "next_model"
                if index == len(self.plan) - 1 or then == "stop":
                    return self._give_up(candidate, outcome)
                delay: float | None = None
                if then == "retry" and self.plan[index + 1][0] is candidate:
                    delay = policy.delay_s(retry, retry_headers(outcome.response))
                deadline = self.deadline
                if delay is not None and deadline is not None and delay >= deadline.left():
                    return self._give_up(candidate, outcome)  # no time left to wait and retry
                if delay is None:
                    index = self._next_model(index)  # asked to wait too long, or out of retries
                    if index == len(self.plan):
                        return self._give_up(candidate, outcome)
                budget = self.means.budget
                if self.sent and budget is not None and not budget.try_retry(self.route.provider):
                    return self._give_up(candidate, outcome)  # over the provider's retry budget
                if outcome.response is not None:
                    await outcome.response.aclose()
                if delay is not None:
                    await self.means.sleep(delay)
                    index += 1
        except asyncio.CancelledError:
            if self.current is not None:
                usage = self.tap.usage if self.tap is not None else None
                self._note(self.current, "cancelled", cancelled=True, usage=usage)
            raise

    def _next_model(self, index: int) -> int:
        candidate = self.plan[index][0]
        while index < len(self.plan) and self.plan[index][0] is candidate:
            index += 1
        return index

    async def _attempt(self, candidate: Candidate) -> Started | Failure:
        """One attempt, within the call's deadline, its result told to the circuit breaker."""
        breakers = self.means.breakers
        provider = self.route.provider
        if breakers is not None:
            wait_s = breakers.admit(provider, candidate.model)
            if wait_s is not None:
                return Failure(circuit_open(provider, candidate.model, wait_s), rejected=True)
        self.began = time.perf_counter()
        self.current = candidate.model
        self.tap = None
        self.sent = True
        outcome: Started | Failure | None = None
        try:
            deadline = self.deadline
            if deadline is None:
                outcome = await self._try(candidate)
            else:
                expiry = Expiry(deadline.at)
                try:
                    outcome = await self._try(candidate)
                except BaseException as error:
                    # As `async with asyncio.timeout_at(...)` in `except TimeoutError`.
                    passed = expiry.end(type(error) is asyncio.CancelledError)
                    if not passed and not isinstance(error, TimeoutError):
                        raise
                    if self.current is not None:
                        usage = self.tap.usage if self.tap else None
                        self._note(candidate.model, "504", usage=usage)
                    outcome = Failure(deadline.passed())
                else:
                    expiry.end(False)
        finally:
            if breakers is not None:
                health = healthy(outcome)
                if health is None:
                    breakers.abandoned(provider, candidate.model)
                elif health:
                    breakers.succeeded(provider, candidate.model)
                else:
                    breakers.failed(provider, candidate.model)
        return outcome

    async def _try(self, candidate: Candidate) -> Started | Failure:
        route = self.route
        try:
            response = await self.means.upstream.open(
                route.provider, route.method, route.target, route.headers, candidate.body
            )
        except GatewayError as error:
            self._note(candidate.model, str(error.status))
            return Failure(error)
        if retryable(response.status_code):
            self._note(candidate.model, str(response.status_code))
            return Failure(response=response)
        if not response.is_success or not is_stream(response):
            return await self._whole(candidate, response)
        if not self.hold:
            self._note(candidate.model, str(response.status_code), relayed=True)
            return Started(response, candidate.model, self.attempts, self.means.new_tap())
        return await self._prelude(candidate, response)

    async def _whole(self, candidate: Candidate, response: Response) -> Started | Failure:
        """Reads a JSON body within its attempt: nothing goes to the client before the whole
        body, so one cut midway is retried like a failed status, not relayed as a 502."""
        try:
            body = await self.means.upstream.read(self.route.provider, response)
        except GatewayError as error:
            self._note(candidate.model, logged_status(error))
            await response.aclose()
            return Failure(error)
        except asyncio.CancelledError:
            await response.aclose()
            raise
        self._note(candidate.model, str(response.status_code), relayed=not self.hold)
        return Started(response, candidate.model, self.attempts, body=body)

    async def _prelude(self, candidate: Candidate, response: Response) -> Started | Failure:
        """Reads a stream up to its first content event: before that, it can still be retried."""
        tap = self.tap = self.means.new_tap()
        prelude: list[bytes] = []
        try:
            async for chunk in response:
                prelude.append(chunk)
                tap.feed(chunk)
                if tap.saw_content or tap.error_type or tap.complete:
                    break
        except BodyBroken as error:
            failed: GatewayError = error
            self._note(candidate.model, logged_status(failed), usage=tap.usage)
            await response.aclose()
            if not isinstance(failed, UpstreamSilent):
                failed = UpstreamUnavailable("upstream closed the stream before its first token")
            return Failure(failed)
        except asyncio.CancelledError:
            await response.aclose()
            raise
        started = Started(response, candidate.model, self.attempts, tap, prelude)
        if started.stream_failed:
            self._note(candidate.model, "stream_error", usage=tap.usage)
            return Failure(response=response, started=started)
        self._note(candidate.model, str(response.status_code))
        return started

    def _give_up(self, candidate: Candidate, failure: Failure) -> Started:
        """The last attempt's answer is relayed: marked so here, but in a hedge race, where
        the dispatcher marks the winner's."""
        if (failure.started is not None or failure.response is not None) and not self.hold:
            self._relayed_last()
        if failure.started is not None:
            return failure.started  # its error event reaches the client as the stream sent it
        if failure.response is not None:
            return Started(failure.response, candidate.model, self.attempts)
        error = failure.error or UpstreamUnavailable("no attempt could be made")
        self._relayed_last()  # its error is what the client gets
        raise ChainFailed(error, self.attempts)

    def _relayed_last(self) -> None:
        if self.attempts and not self.attempts[-1].relayed:
            self.attempts[-1] = self.attempts[-1]._replace(relayed=True)

    def _note(
        self,
        model: str,
        status: str,
        *,
        cancelled: bool = False,
        usage: Usage | None = None,
        relayed: bool = False,
    ) -> None:
        duration = time.perf_counter() - self.began
        attempt = Attempt(model, status, duration, self.hedge, cancelled, usage, relayed)
        self.attempts.append(attempt)
        self.current = None


STAINLESS_RETRY = b"x-stainless-retry-count"
STAINLESS_RETRY_LEN = len(STAINLESS_RETRY)  # only a name this long is lowered and compared


def client_retry(headers: RawHeaders) -> bool:
    """The client says this call is its own retry (the Stainless SDKs' x-stainless-retry-count
    above 0): the gateway adds no retries of the same model to it."""
    for name, value in headers:
        if len(name) == STAINLESS_RETRY_LEN and name.lower() == STAINLESS_RETRY:
            return value.strip().isdigit() and int(value) > 0
    return False


def circuit_open(provider: str, model: str, wait_s: float) -> CircuitOpen:
    status = 529 if provider == "anthropic" else 503
    return CircuitOpen(
        f"{model} is failing at {provider}: the gateway is not sending it calls for"
        f" {wait_s:g} s while it recovers (its circuit breaker is open).",
        status,
        wait_s,
    )


def is_stream(response: Response) -> bool:
    content_type = response.header(b"content-type") or b""
    return content_type.startswith(b"text/event-stream")


RETRY_AFTER = ((b"retry-after-ms", "retry-after-ms"), (b"retry-after", "retry-after"))


def retry_headers(response: Response | None) -> dict[str, str]:
    """The wait a failed response asked for, as the retry policy reads it (an ASCII value)."""
    asked: dict[str, str] = {}
    if response is not None:
        for raw, name in RETRY_AFTER:
            value = response.header(raw)
            if value is not None and value.isascii():
                asked[name] = value.decode()
    return asked
