"""The client's seeded mix of calls and the client that sends them and reads what comes back."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from dataclasses import dataclass

import aiohttp
import orjson

from soaking.config import (
    FAMILIES,
    HANG_S,
    LEAVE_EARLY_MS,
    LEAVE_EARLY_SHARE,
    LEAVE_MID_SHARE,
    OPENAI_SHARE,
    PATHS,
    STEPS,
    STREAM_SHARE,
)
from soaking.outcomes import STREAM_ENDS, Result, classify_json, classify_stream


@dataclass(frozen=True, slots=True)
class Plan:
    api: str  # a key of PATHS
    stream: bool
    step: str | None
    family: int
    leave: str | None  # None, "early" (before the response head) or "mid" (mid-stream)
    leave_after_s: float = 0.0


def plans(count: int, seed: int) -> Iterator[Plan]:
    rng = random.Random(seed)
    for _ in range(count):
        api = "chat" if rng.random() < OPENAI_SHARE else "messages"
        stream = rng.random() < STREAM_SHARE
        step = rng.choice(STEPS)
        family = rng.randrange(FAMILIES)
        draw = rng.random()
        if draw < LEAVE_EARLY_SHARE:
            after = rng.uniform(*LEAVE_EARLY_MS) / 1000
            yield Plan(api, stream, step, family, "early", after)
        elif stream and draw < LEAVE_EARLY_SHARE + LEAVE_MID_SHARE:
            yield Plan(api, stream, step, family, "mid")
        else:
            yield Plan(api, stream, step, family, None)


def bodies() -> dict[tuple[str, int, bool], bytes]:
    out = {}
    for family in range(FAMILIES):
        system = (
            f"You are support agent {family} for a hardware store. Answer in two sentences, "
            "name the aisle, and never promise delivery dates. " * 3
        )
        question = {"role": "user", "content": f"Where are the size {family} bolts?"}
        messages = {
            "model": "claude-haiku-4-5",
            "max_tokens": 200,
            "system": system,
            "messages": [question],
        }
        chat = {  # no stream_options: the gateway asks for usage and filters it out again
            "model": "gpt-5.4-mini",
            "max_completion_tokens": 200,
            "messages": [{"role": "system", "content": system}, question],
        }
        for api, body in (("messages", messages), ("chat", chat)):
            out[api, family, False] = orjson.dumps(body)
            out[api, family, True] = orjson.dumps({**body, "stream": True})
    return out


class Client:
    def __init__(self, session: aiohttp.ClientSession, origin: str) -> None:
        self.session = session
        self.urls = {api: origin + path for api, path in PATHS.items()}
        self.bodies = bodies()
        self.in_flight = 0

    async def call(self, plan: Plan) -> Result:
        self.in_flight += 1
        try:
            return await asyncio.wait_for(self._call(plan), HANG_S)
        except TimeoutError:
            return Result("VIOLATION no end within 30 s", str(plan))
        except aiohttp.ClientError as error:
            return Result(f"VIOLATION {type(error).__name__}", f"{plan}: {error}")
        finally:
            self.in_flight -= 1

    async def _call(self, plan: Plan) -> Result:
        if plan.api == "chat":
            headers = {"authorization": "Bearer k"}
        else:
            headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
        headers["content-type"] = "application/json"
        if plan.step is not None:
            headers["x-gateway-step"] = plan.step
        body = self.bodies[plan.api, plan.family, plan.stream]
        request = self.session.post(self.urls[plan.api], data=body, headers=headers)
        if plan.leave == "early":
            try:  # cancelling aiohttp's request closes its connection: the gateway sees it go
                response = await asyncio.wait_for(request, plan.leave_after_s)
            except TimeoutError:
                return Result("left before the response head")
        else:
            response = await request
        async with response:
            result = await self._read(plan, response)
        if plan.leave == "early":
            result.meant = "early"
        return result

    async def _read(self, plan: Plan, response: aiohttp.ClientResponse) -> Result:
        is_stream = response.headers.get("content-type", "").startswith("text/event-stream")
        if not is_stream:
            data = await response.read()
            return classify_json(response.status, response.headers, data, plan.api)
        received = bytearray()
        try:
            async for chunk in response.content.iter_any():
                received += chunk
                if plan.leave == "mid" and received.count(b"data:") >= 3:
                    if any(end in received for end in STREAM_ENDS):
                        break  # the whole stream outran the departure
                    response.close()
                    return Result("left mid-stream")
        except aiohttp.ClientPayloadError as error:
            tail = bytes(received[-200:]).decode(errors="replace")
            return Result("VIOLATION stream dropped without an error event", f"{error}: {tail}")
        result = classify_stream(bytes(received), plan.api)
        if plan.leave == "mid":
            result.meant = "mid"
        return result
