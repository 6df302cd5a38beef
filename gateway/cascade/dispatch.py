"""Getting a call started upstream: retries, fallbacks and hedging, all before the client
has a byte.

An attempt has *started* once a response arrives that will be relayed: a JSON body, an
error that is not worth retrying, or a stream's headers. Until then nothing has gone to
the client, so a failed attempt (429, 5xx, 529, a connect error, a timeout) is retried
with backoff, then moved to the step's fallback models in order.

With a hedge, a second chain starts when the first has not started within the step's
TTFT budget, and whichever starts first is relayed; the other is cancelled. There a
stream has started only at its first content event: the events before it are held (and
a stream that breaks or sends an error event before any content is retried like a
failed status). Once bytes reach the client, nothing is ever replayed (relay.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace

import httpx

from gateway.cascade.breaker import Breakers
from gateway.cascade.retry import RetryPolicy, retryable
from gateway.cascade.retry_budget import RetryBudget
from gateway.errors import (
    CircuitOpen,
    DeadlinePassed,
    GatewayError,
    ResponseTooLarge,
    UpstreamSilent,
    UpstreamUnavailable,
)
from gateway.upstream import Upstream
from gateway.wire.call import Attempt
from gateway.wire.headers import RawHeaders
from gateway.wire.tap import Tap
from gateway.wire.usage import Usage


@dataclass(frozen=True, slots=True)
class Candidate:
    model: str
    body: bytes


@dataclass(slots=True)
class Started:
    """The attempt whose response the client gets."""

    response: httpx.Response
    model: str
    attempts: list[Attempt]
    tap: Tap | None = None  # streams: already fed the prelude
    prelude: list[bytes] = field(default_factory=list)  # stream bytes read, not yet sent
    hedged: bool = False  # the hedge chain won
    body: bytes | None = None  # a JSON response, read whole within its attempt

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1


@dataclass(frozen=True, slots=True)
class Failure:
    """An attempt that may be retried: its error, or the response to relay if none is left."""

    error: GatewayError | None = None
    response: httpx.Response | None = None
    started: Started | None = None  # a stream that sent an error event before any content
    rejected: bool = False  # refused by the model's open breaker: nothing was sent


class ChainFailed(Exception):
    """Every attempt failed before a response: the last error, after the attempts made."""

    def __init__(self, error: GatewayError, attempts: list[Attempt]) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts


@dataclass(frozen=True, slots=True)
class Route:
    """Where and what to send: the same for every attempt but the model and body."""

    provider: str
    method: str
    target: str
    headers: RawHeaders


@dataclass(frozen=True, slots=True)
class Deadline:
    """When a call must be over, in the event loop's clock; `seconds` as configured."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(asyncio.get_running_loop().time() + seconds, seconds)

    def left(self) -> float:
        return self.at - asyncio.get_running_loop().time()

    def passed(self) -> DeadlinePassed:
        return DeadlinePassed(
            f"The call did not finish within its time limit of {self.seconds:g} s."
        )


class Dispatcher:
    def __init__(
        self,
        upstream: Upstream,
        policy: RetryPolicy,
        new_tap: Callable[[], Tap],
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        breakers: Breakers | None = None,
        budget: RetryBudget | None = None,
    ) -> None:
        self.upstream = upstream
        self.policy = policy
        self.new_tap = new_tap
        self.sleep = sleep
        self.breakers = breakers
        self.budget = budget

    async def start(
        self,
        route: Route,
        candidates: Sequence[Candidate],
        hedge_after_s: float | None = None,
        hedge_with: Candidate | None = None,
        deadline: Deadline | None = None,
    ) -> Started:
        """The started attempt; raises ChainFailed when no attempt got a response, or none
        did before `deadline` (DeadlinePassed)."""
        if self.budget is not None:
            self.budget.call(route.provider)
        started = await self._start(route, candidates, hedge_after_s, hedge_with, deadline)
        mine = [i for i, a in enumerate(started.attempts) if a.hedge == started.hedged]
        if mine:
            started.attempts[mine[-1]] = replace(started.attempts[mine[-1]], relayed=True)
        return started

    async def _start(
        self,
        route: Route,
        candidates: Sequence[Candidate],
        hedge_after_s: float | None,
        hedge_with: Candidate | None,
        deadline: Deadline | None,
    ) -> Started:
        if hedge_after_s is None or hedge_with is None:
            return await _Chain(self, route, candidates, deadline, hedge=False, hold=False).run()
        primary = _Chain(self, route, candidates, deadline, hedge=False, hold=True)
        hedge = _Chain(self, route, [hedge_with], deadline, hedge=True, hold=True)
        first = asyncio.ensure_future(primary.run())
        second: asyncio.Future[Started] | None = None
        chosen: asyncio.Future[Started] | None = None
        try:
            await asyncio.wait({first}, timeout=hedge_after_s)
            if first.done():
                chosen = first
            else:
                second = asyncio.ensure_future(hedge.run())
                pending: set[asyncio.Future[Started]] = {first, second}
                while pending and chosen is None:
                    done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                    chosen = next((future for future in done if _succeeded(future)), None)
                chosen = chosen or first  # both failed: the primary's last answer is relayed
        finally:
            for future in (first, second):
                if future is not None and future is not chosen:
                    await _discard(future)
        started = chosen.result()  # ChainFailed when every attempt of both chains failed
        # After the loser is discarded: its cancelled attempt is in its chain's list now.
        started.attempts = [*primary.attempts, *hedge.attempts]
        started.hedged = chosen is second
        return started


class _Chain:
    """Attempts on one list of models: each retried per the policy, then the next model."""

    def __init__(
        self,
        dispatcher: Dispatcher,
        route: Route,
        candidates: Sequence[Candidate],
        deadline: Deadline | None,
        *,
        hedge: bool,
        hold: bool,  # a stream starts at its first content event, not at its headers
    ) -> None:
        self.dispatcher = dispatcher
        self.hold = hold
        self.route = route
        per_model = dispatcher.policy.settings.attempts_per_model
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
        try:
            return await self._run()
        except asyncio.CancelledError:
            if self.current is not None:
                usage = self.tap.usage if self.tap is not None else None
                self._note(self.current, "cancelled", cancelled=True, usage=usage)
            raise

    async def _run(self) -> Started:
        index = 0
        while True:
            candidate, retry = self.plan[index]
            outcome = await self._attempt(candidate)
            if isinstance(outcome, Started):
                return outcome
            policy = self.dispatcher.policy
            then = policy.after_error(outcome.error) if outcome.error is not None else "retry"
            if outcome.rejected:
                then = "next_model"
            if index == len(self.plan) - 1 or then == "stop":
                return self._give_up(candidate, outcome)
            delay: float | None = None
            if then == "retry" and self.plan[index + 1][0] is candidate:
                headers = outcome.response.headers if outcome.response else httpx.Headers()
                delay = self.dispatcher.policy.delay_s(retry, headers)
            if delay is not None and self.deadline is not None and delay >= self.deadline.left():
                return self._give_up(candidate, outcome)  # no time left to wait and try again
            if delay is None:
                index = self._next_model(index)  # asked to wait too long, or out of retries
                if index == len(self.plan):
                    return self._give_up(candidate, outcome)
            budget = self.dispatcher.budget
            if self.sent and budget is not None and not budget.try_retry(self.route.provider):
                return self._give_up(candidate, outcome)  # over the provider's retry budget
            if outcome.response is not None:
                await outcome.response.aclose()
            if delay is not None:
                await self.dispatcher.sleep(delay)
                index += 1

    def _next_model(self, index: int) -> int:
        candidate = self.plan[index][0]
        while index < len(self.plan) and self.plan[index][0] is candidate:
            index += 1
        return index

    async def _attempt(self, candidate: Candidate) -> Started | Failure:
        breakers = self.dispatcher.breakers
        if breakers is None:
            return await self._timed(candidate)
        provider = self.route.provider
        wait_s = breakers.admit(provider, candidate.model)
        if wait_s is not None:
            return Failure(_circuit_open(provider, candidate.model, wait_s), rejected=True)
        outcome: Started | Failure | None = None
        try:
            outcome = await self._timed(candidate)
        finally:
            healthy = _healthy(outcome)
            if healthy is None:
                breakers.abandoned(provider, candidate.model)
            elif healthy:
                breakers.succeeded(provider, candidate.model)
            else:
                breakers.failed(provider, candidate.model)
        return outcome

    async def _timed(self, candidate: Candidate) -> Started | Failure:
        self.began = time.perf_counter()
        self.current = candidate.model
        self.tap = None
        self.sent = True
        if self.deadline is None:
            return await self._try(candidate)
        try:
            async with asyncio.timeout_at(self.deadline.at):
                return await self._try(candidate)
        except TimeoutError:
            if self.current is not None:
                self._note(candidate.model, "504", usage=self.tap.usage if self.tap else None)
            return Failure(self.deadline.passed())

    async def _try(self, candidate: Candidate) -> Started | Failure:
        route = self.route
        try:
            response = await self.dispatcher.upstream.open(
                route.provider, route.method, route.target, route.headers, candidate.body
            )
        except GatewayError as error:
            self._note(candidate.model, str(error.status))
            return Failure(error)
        if retryable(response.status_code):
            self._note(candidate.model, str(response.status_code))
            return Failure(response=response)
        if not response.is_success or not _is_stream(response):
            return await self._whole(candidate, response)
        if not self.hold:
            self._note(candidate.model, str(response.status_code))
            return Started(response, candidate.model, self.attempts, self.dispatcher.new_tap())
        return await self._prelude(candidate, response)

    async def _whole(self, candidate: Candidate, response: httpx.Response) -> Started | Failure:
        """Reads a JSON body within its attempt: nothing goes to the client before the whole
        body, so one cut midway is retried like a failed status, not relayed as a 502."""
        try:
            body = await self.dispatcher.upstream.read(self.route.provider, response)
        except GatewayError as error:
            self._note(candidate.model, _status(error))
            await response.aclose()
            return Failure(error)
        except asyncio.CancelledError:
            await response.aclose()
            raise
        self._note(candidate.model, str(response.status_code))
        return Started(response, candidate.model, self.attempts, body=body)

    async def _prelude(self, candidate: Candidate, response: httpx.Response) -> Started | Failure:
        """Reads a stream up to its first content event: before that, it can still be retried."""
        tap = self.tap = self.dispatcher.new_tap()
        prelude: list[bytes] = []
        stream = response.stream
        assert isinstance(stream, httpx.AsyncByteStream)
        try:
            async for chunk in stream:
                prelude.append(chunk)
                tap.feed(chunk)
                if tap.saw_content or tap.error_type or tap.complete:
                    break
        except httpx.TransportError as error:
            failed = self.dispatcher.upstream.body_error(self.route.provider, error)
            self._note(candidate.model, _status(failed), usage=tap.usage)
            await response.aclose()
            if not isinstance(failed, UpstreamSilent):
                failed = UpstreamUnavailable("upstream closed the stream before its first token")
            return Failure(failed)
        except asyncio.CancelledError:
            await response.aclose()
            raise
        started = Started(response, candidate.model, self.attempts, tap, prelude)
        if _stream_failed(started):
            self._note(candidate.model, "stream_error", usage=tap.usage)
            return Failure(response=response, started=started)
        self._note(candidate.model, str(response.status_code))
        return started

    def _give_up(self, candidate: Candidate, failure: Failure) -> Started:
        if failure.started is not None:
            return failure.started  # its error event reaches the client as the stream sent it
        if failure.response is not None:
            return Started(failure.response, candidate.model, self.attempts)
        error = failure.error or UpstreamUnavailable("no attempt could be made")
        if self.attempts:  # its error is what the client gets
            self.attempts[-1] = replace(self.attempts[-1], relayed=True)
        raise ChainFailed(error, self.attempts)

    def _note(
        self, model: str, status: str, *, cancelled: bool = False, usage: Usage | None = None
    ) -> None:
        duration = time.perf_counter() - self.began
        self.attempts.append(Attempt(model, status, duration, self.hedge, cancelled, usage))
        self.current = None


def client_retry(headers: RawHeaders) -> bool:
    """The client says this call is its own retry (the Stainless SDKs' x-stainless-retry-count
    above 0): the gateway adds no retries of the same model to it."""
    for name, value in headers:
        if name.lower() == b"x-stainless-retry-count":
            return value.strip().isdigit() and int(value) > 0
    return False


def _circuit_open(provider: str, model: str, wait_s: float) -> CircuitOpen:
    status = 529 if provider == "anthropic" else 503
    return CircuitOpen(
        f"{model} is failing at {provider}: the gateway is not sending it calls for"
        f" {wait_s:g} s while it recovers (its circuit breaker is open).",
        status,
        wait_s,
    )


def _healthy(outcome: Started | Failure | None) -> bool | None:
    """What an attempt says of the model's health, for its breaker; None: nothing (it was
    cancelled, ran out of the call's time, or was too large to hold)."""
    if outcome is None:
        return None
    if isinstance(outcome, Started):
        return True
    if isinstance(outcome.error, DeadlinePassed | ResponseTooLarge):
        return None
    return False


def _status(error: GatewayError) -> str:
    """An attempt's status in the call log for the gateway's own error."""
    if isinstance(error, UpstreamSilent | ResponseTooLarge):
        return str(error.status)
    return "cut"


def _is_stream(response: httpx.Response) -> bool:
    content_type: str = response.headers.get("content-type", "")
    return content_type.startswith("text/event-stream")


def _stream_failed(started: Started) -> bool:
    tap = started.tap
    return tap is not None and bool(tap.error_type) and not tap.saw_content


def _succeeded(future: asyncio.Future[Started]) -> bool:
    if future.cancelled() or future.exception() is not None:
        return False
    started = future.result()
    return started.response.is_success and not _stream_failed(started)


async def _discard(future: asyncio.Future[Started]) -> None:
    """Stops a chain that lost (or was abandoned) and closes any response it got."""
    if not future.done():
        future.cancel()
    try:
        started = await future
    except (asyncio.CancelledError, ChainFailed):
        return
    await started.response.aclose()
