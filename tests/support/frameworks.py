"""Python agent frameworks as their users run them, for the recorder (tests/support/record.py).

    .cache/recording-venv/bin/python -m tests.support.frameworks langchain-anthropic URL
    .cache/recording-venv/bin/python -m tests.support.frameworks openai-agents URL

Each runs a small agent with one tool and two questions, the first asking the emulated
model for a tool call (`USE_TOOL:`), against the base URL given (the recording proxy).
The recorder runs them in a separate venv (its pins apart from the dev one); the dev extras
install both frameworks too, and tests/integration/test_frameworks.py runs them in-process
through the gateway. Each returns the agent's last answer.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

API_KEY = "sk-recording-0000000000000000"
SYSTEM = (
    "You are the order desk's assistant for the shop. Answer in one short paragraph.\n"
    "Today's date is 2026-11-30.\n"
    "Use the lookup tool for anything about a specific order.\n"
    # Long enough to cache (over 1,024 tokens), as a real desk's policy would be.
    + "".join(
        f"Policy {n}: orders in region {n % 7} ship within {n % 5 + 1} days; refunds need a"
        f" receipt and go back to the original payment method within {n % 9 + 3} days.\n"
        for n in range(60)
    )
)
QUESTIONS = (
    "Where is order 1042?\nUSE_TOOL: lookup_order",
    "And when will it arrive?\nREPLY: It arrives on Thursday.",
)


def lookup_order(order_id: str) -> str:
    """Look up an order's status by its id."""
    return f"Order {order_id}: shipped 2026-11-28, carrier parcel, 2 items, tracking 7781."


def langchain_anthropic(base_url: str, api_key: str = API_KEY) -> str:
    from langchain_anthropic import ChatAnthropic
    from langchain_core.messages import HumanMessage, SystemMessage, ToolMessage
    from langchain_core.tools import tool

    lookup = tool(lookup_order)
    model = ChatAnthropic(  # type: ignore[call-arg]
        model="claude-sonnet-4-6", base_url=base_url, api_key=api_key, max_tokens=1024
    ).bind_tools([lookup])
    history: list[Any] = [SystemMessage(SYSTEM)]
    for question in QUESTIONS:
        history.append(HumanMessage(question))
        for _ in range(4):
            reply = model.invoke(history)
            history.append(reply)
            if not reply.tool_calls:
                break
            for call in reply.tool_calls:
                history.append(ToolMessage(lookup.invoke(call["args"]), tool_call_id=call["id"]))
    return str(history[-1].text)


def openai_agents(base_url: str, api_key: str = API_KEY) -> str:
    from agents import (
        Agent,
        OpenAIResponsesModel,
        Runner,
        function_tool,
        set_tracing_disabled,
    )
    from openai import AsyncOpenAI

    set_tracing_disabled(True)  # never to api.openai.com
    client = AsyncOpenAI(base_url=base_url + "/v1", api_key=api_key)
    agent = Agent(
        name="order desk",
        instructions=SYSTEM,
        tools=[function_tool(lookup_order)],
        model=OpenAIResponsesModel(model="gpt-5.4", openai_client=client),
    )

    async def conversation() -> str:
        # One event loop for every turn: the client's connections belong to it.
        history: list[Any] = []
        answer = ""
        for question in QUESTIONS:
            result = await Runner.run(agent, [*history, {"role": "user", "content": question}])
            history, answer = result.to_input_list(), str(result.final_output)
        await client.close()
        return answer

    return asyncio.run(conversation())


def main() -> None:
    name, base_url = sys.argv[1], sys.argv[2]
    {"langchain-anthropic": langchain_anthropic, "openai-agents": openai_agents}[name](base_url)


if __name__ == "__main__":
    main()
