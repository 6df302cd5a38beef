"""Shadow calls in flight hold their request bodies: bounded in bytes."""

from __future__ import annotations

import asyncio
import random
from typing import Any, cast

import httpx
from prometheus_client import CollectorRegistry

from gateway.cascade.dispatch import Route
from gateway.cascade.shadow import Answer, Shadows
from gateway.cascade.table import StepPlan
from gateway.metering.calls import Meter
from gateway.metering.labels import LabelBounds
from gateway.metering.metrics import Metrics
from gateway.settings import ProviderSettings, ShadowSettings
from gateway.wire.formats import ANTHROPIC_MESSAGES

MODEL = "claude-haiku-4-5"
PLAN = StepPlan("search", None, None, None, False, None, ShadowSettings(model=MODEL, sample=1.0))
ROUTE = Route("anthropic", "POST", "/v1/messages", [])
REPLY = (
    b'{"type":"message","model":"claude-haiku-4-5","content":[],'
    b'"usage":{"input_tokens":1,"output_tokens":1}}'
)


class HeldUpstream:
    """A provider that answers only once released: the shadows stay in flight until then."""

    def __init__(self) -> None:
        self.release = asyncio.Event()

    def settings(self, provider: str) -> ProviderSettings:
        return ProviderSettings(base_url="http://127.0.0.1:9")

    async def open(self, *_: Any) -> httpx.Response:
        await self.release.wait()
        return httpx.Response(200, content=REPLY)

    async def read(self, provider: str, response: httpx.Response) -> bytes:
        return await response.aread()


def skipped(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value(
        "gateway_shadow_calls_total",
        {"provider": "anthropic", "model": MODEL, "step": "search", "status": "skipped"},
    )
    return value or 0.0


def test_past_its_bytes_a_sampled_call_gets_no_shadow_and_it_is_counted(tmp_path: Any) -> None:
    asyncio.run(past_its_bytes(str(tmp_path / "shadow.jsonl")))


async def past_its_bytes(log: str) -> None:
    registry = CollectorRegistry()
    meter = Meter(Metrics(registry), LabelBounds(["search"], [MODEL]))
    upstream = HeldUpstream()
    shadows = Shadows(cast(Any, upstream), meter, log, random.Random(0), max_pending_bytes=250_000)
    content = "x" * 100_000
    payload = {"model": MODEL, "max_tokens": 8, "messages": [{"role": "user", "content": content}]}

    def start() -> Any:
        return shadows.start(ROUTE, payload, PLAN, "gw_1", ANTHROPIC_MESSAGES)

    started = [start() for _ in range(5)]
    assert [call is not None for call in started] == [True, True, False, False, False]
    assert skipped(registry) == 3
    assert 200_000 < shadows.pending_bytes <= 250_000
    upstream.release.set()  # the shadows answer and their primaries finish: the room is back
    for call in started[:2]:
        call.primary_done(Answer(MODEL, "200", "", None, None, 1.0))
    others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    await asyncio.wait_for(asyncio.gather(*others), timeout=30)
    assert shadows.pending_bytes == 0
    assert start() is not None
    await shadows.aclose()
