"""A provider scripted per model, behind `httpx.MockTransport`, and a dispatcher wired to it
with a fake clock and a sleep that only records: retries, fallbacks and hedges run
in-process, without waiting."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from typing import Any

import httpx
import orjson

from gateway.cascade.breaker import Breakers
from gateway.cascade.dispatch import Candidate, Dispatcher, Route
from gateway.cascade.retry import RetryPolicy
from gateway.cascade.retry_budget import RetryBudget
from gateway.settings import ProviderSettings, RetrySettings
from gateway.upstream import Upstream
from gateway.wire.anthropic_usage import StreamUsage

Reply = Callable[[httpx.Request], Awaitable[httpx.Response]]
ROUTE = Route("anthropic", "POST", "/v1/messages", [])


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Script:
    """Each model's calls get its replies in order; the last one repeats."""

    def __init__(self, replies: Mapping[str, Sequence[Reply]]) -> None:
        self.replies = {model: list(script) for model, script in replies.items()}
        self.calls: list[str] = []
        self.requests: list[httpx.Request] = []
        self.served: defaultdict[str, int] = defaultdict(int)

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        model = orjson.loads(request.content)["model"]
        self.calls.append(model)
        self.requests.append(request)
        script = self.replies[model]
        reply = script[min(self.served[model], len(script) - 1)]
        self.served[model] += 1
        return await reply(request)


def json_reply(status: int = 200, headers: dict[str, str] | None = None) -> Reply:
    async def reply(request: httpx.Request) -> httpx.Response:
        model = orjson.loads(request.content)["model"]
        body = {"type": "message", "model": model, "usage": {"input_tokens": 3}}
        if status >= 400:
            body = {"type": "error", "error": {"type": f"status_{status}", "message": "no"}}
        return httpx.Response(status, headers=headers, content=orjson.dumps(body))

    return reply


def raises(error: Exception) -> Reply:
    async def reply(request: httpx.Request) -> httpx.Response:
        raise error

    return reply


def held(release: asyncio.Event, then: Reply) -> Reply:
    """No answer until `release` is set (never, for a call that must lose or time out)."""

    async def reply(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return await then(request)

    return reply


class Chunks(httpx.AsyncByteStream):
    """A body sent in `chunks`, then `error` raised (a cut), or held open on `hold`."""

    def __init__(
        self,
        chunks: Sequence[bytes],
        error: Exception | None = None,
        hold: asyncio.Event | None = None,
    ) -> None:
        self.chunks = chunks
        self.error = error
        self.hold = hold
        self.closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            yield chunk
        if self.hold is not None:
            await self.hold.wait()
        if self.error is not None:
            raise self.error

    async def aclose(self) -> None:
        self.closed = True


def body_reply(
    chunks: Sequence[bytes],
    error: Exception | None = None,
    *,
    stream: bool = False,
    hold: asyncio.Event | None = None,
    bodies: list[Chunks] | None = None,  # each body sent, to see it closed
) -> Reply:
    async def reply(request: httpx.Request) -> httpx.Response:
        body = Chunks(chunks, error, hold)
        if bodies is not None:
            bodies.append(body)
        kind = "text/event-stream" if stream else "application/json"
        return httpx.Response(200, headers={"content-type": kind}, stream=body)

    return reply


def event(kind: str, data: dict[str, Any]) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


START = event("message_start", {"message": {"model": "m", "usage": {"input_tokens": 7}}})
CONTENT = event("content_block_delta", {"delta": {"type": "text_delta", "text": "hi"}})
STOP = event("message_stop", {})
OVERLOADED = event("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})


def retries(**fields: Any) -> RetrySettings:
    """Retry settings whose budget stays out of the way unless a test sets it."""
    return RetrySettings(**{"base_delay_s": 1.0, "budget_ratio": 100.0, **fields})


class Wired:
    """A dispatcher on a scripted provider; `slept` lists every backoff it asked for."""

    def __init__(self, script: Script, settings: RetrySettings | None = None) -> None:
        settings = settings or retries()
        self.script = script
        self.clock = Clock()
        self.slept: list[float] = []
        self.breakers = Breakers(settings, self.clock)
        self.budget = RetryBudget(settings, self.clock)
        self.upstream = Upstream(
            {"anthropic": ProviderSettings(base_url="http://upstream.invalid")},
            transport=httpx.MockTransport(script),
        )
        self.dispatcher = Dispatcher(
            self.upstream,
            RetryPolicy(settings),
            lambda: StreamUsage(1 << 20),
            sleep=self.sleep,
            breakers=self.breakers,
            budget=self.budget,
        )

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.clock.now += seconds
        await asyncio.sleep(0)


def candidates(*models: str) -> list[Candidate]:
    return [Candidate(model, orjson.dumps({"model": model, "max_tokens": 5})) for model in models]


def signalled(sent: asyncio.Event, then: Reply) -> Reply:
    """Sets `sent` once the request has reached the provider, then answers with `then`."""

    async def reply(request: httpx.Request) -> httpx.Response:
        sent.set()
        return await then(request)

    return reply
