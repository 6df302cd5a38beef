"""Two Python agent frameworks as their users run them, through `gateway serve` in front of the
emulator: langchain-anthropic (Anthropic Messages) and openai-agents (OpenAI Responses).

Each makes a plain call, a streamed call and a tool loop that ends (tests/support/frameworks.py,
the same agents the recorder drives: a tool call asked for with `USE_TOOL:`, the tool's result,
then a text answer, then a second question answered exactly with `REPLY:`). Every test checks
the framework's answer and that the gateway metered each of its calls on /metrics.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.servers import metric
from tests.support import frameworks

pytest.importorskip("langchain_anthropic")
pytest.importorskip("agents")

CLAUDE, GPT = "claude-sonnet-4-6", "gpt-5.4"
THURSDAY = "It arrives on Thursday."  # the tool loop's last answer (frameworks.QUESTIONS)


@dataclass(frozen=True)
class Metered:
    """The gateway's counters for one model: calls relayed with 200, output tokens, cost."""

    calls: float
    output_tokens: float
    cost_usd: float

    @classmethod
    def read(cls, gateway_url: str, model: str) -> Metered:
        return cls(
            metric(gateway_url, "gateway_requests_total", model=model, status="200"),
            metric(gateway_url, "gateway_tokens_total", model=model, type="output"),
            metric(gateway_url, "gateway_cost_usd_total", model=model),
        )


@pytest.fixture
def metered(gateway_url: str) -> dict[str, Metered]:
    """The counters before the test, per model (assert_metered compares with them)."""
    return {model: Metered.read(gateway_url, model) for model in (CLAUDE, GPT)}


def assert_metered(gateway_url: str, before: Metered, model: str, calls: int) -> None:
    after = Metered.read(gateway_url, model)
    assert after.calls - before.calls == calls
    assert after.output_tokens > before.output_tokens
    assert after.cost_usd > before.cost_usd


def key(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"  # caches are per key: no test reads another's


# --------------------------------------------------------------------------- langchain-anthropic


def chat_anthropic(gateway_url: str):  # type: ignore[no-untyped-def]
    from langchain_anthropic import ChatAnthropic

    return ChatAnthropic(  # type: ignore[call-arg]
        model=CLAUDE,
        base_url=gateway_url,
        api_key=key("sk-ant-fw"),
        max_tokens=256,
        max_retries=0,
    )


def test_langchain_anthropic_plain(gateway_url: str, metered: dict[str, Metered]) -> None:
    reply = chat_anthropic(gateway_url).invoke("REPLY: pong from langchain")
    assert reply.text == "pong from langchain"
    assert_metered(gateway_url, metered[CLAUDE], CLAUDE, calls=1)


def test_langchain_anthropic_stream(gateway_url: str, metered: dict[str, Metered]) -> None:
    chunks = list(chat_anthropic(gateway_url).stream("REPLY: one two three four"))
    assert len(chunks) > 1  # arrived in pieces
    assert "".join(chunk.text for chunk in chunks) == "one two three four"
    assert_metered(gateway_url, metered[CLAUDE], CLAUDE, calls=1)


def test_langchain_anthropic_tool_loop(gateway_url: str, metered: dict[str, Metered]) -> None:
    """Question 1: a tool call, the tool's result, an answer; question 2: an answer."""
    assert frameworks.langchain_anthropic(gateway_url, key("sk-ant-fw")) == THURSDAY
    assert_metered(gateway_url, metered[CLAUDE], CLAUDE, calls=3)


# --------------------------------------------------------------------------- openai-agents


@asynccontextmanager
async def agent(gateway_url: str, name: str) -> AsyncIterator[Any]:
    """An agent without tools on a client of its own, closed on the event loop it ran on."""
    from agents import Agent, OpenAIResponsesModel, set_tracing_disabled
    from openai import AsyncOpenAI

    set_tracing_disabled(True)  # never to api.openai.com
    client = AsyncOpenAI(base_url=gateway_url + "/v1", api_key=key("sk-fw"), max_retries=0)
    try:
        yield Agent(name=name, model=OpenAIResponsesModel(model=GPT, openai_client=client))
    finally:
        await client.close()


def test_openai_agents_plain(gateway_url: str, metered: dict[str, Metered]) -> None:
    from agents import Runner

    async def run() -> str:
        async with agent(gateway_url, "plain") as plain:
            return str((await Runner.run(plain, "REPLY: pong from agents")).final_output)

    assert asyncio.run(run()) == "pong from agents"
    assert_metered(gateway_url, metered[GPT], GPT, calls=1)


def test_openai_agents_stream(gateway_url: str, metered: dict[str, Metered]) -> None:
    from agents import Runner
    from openai.types.responses import ResponseTextDeltaEvent

    async def run() -> tuple[list[str], str]:
        async with agent(gateway_url, "stream") as streaming:
            result = Runner.run_streamed(streaming, "REPLY: one two three four")
            deltas = [
                event.data.delta
                async for event in result.stream_events()
                if event.type == "raw_response_event"
                and isinstance(event.data, ResponseTextDeltaEvent)
            ]
            return deltas, str(result.final_output)

    deltas, final = asyncio.run(run())
    assert len(deltas) > 1
    assert "".join(deltas) == final == "one two three four"
    assert_metered(gateway_url, metered[GPT], GPT, calls=1)


def test_openai_agents_tool_loop(gateway_url: str, metered: dict[str, Metered]) -> None:
    """The loop ends after the tool's result (it ran to the turn limit before the
    emulator ended tool loops), and every turn was one metered call."""
    assert frameworks.openai_agents(gateway_url, key("sk-fw")) == THURSDAY
    assert_metered(gateway_url, metered[GPT], GPT, calls=3)
