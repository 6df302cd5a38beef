"""What real clients send by default, through the official SDKs against `gateway emulate`:
mid-conversation system turns, 128K output limits, structured outputs, tool loops that end,
and model ids newer than the catalog."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import openai
import pytest
from pydantic import BaseModel, Field

from gateway.emulator.anthropic.validation import MID_CONVERSATION_SYSTEM_BETA
from gateway.emulator.models import INFERRED_HEADER
from tests.integration.conftest import ClientFactory
from tests.integration.openai_tools import TOOLS
from tests.integration.servers import emulator

# What Claude Code 2.1.197 sends with its default model: a system turn after the user's.
SYSTEM_TURN = [
    {"role": "user", "content": "say hi"},
    {"role": "system", "content": [{"type": "text", "text": "Reminder: the date is Monday."}]},
]


class Forecast(BaseModel):
    city: str
    days: list[int] = Field(min_length=3)
    unit: str = Field(json_schema_extra={"enum": ["celsius", "fahrenheit"]})


class Report(BaseModel):
    title: str
    forecasts: list[Forecast]
    note: str | None


@pytest.fixture
def openai_client(emulator_url: str, api_key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emulator_url + "/v1", api_key=api_key, max_retries=0) as sdk:
        yield sdk


# --- mid-conversation system messages -------------------------------------------


def test_system_turn_accepted_with_the_beta_header(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    client = make_client(emulator_url, api_key)
    messages: Any = SYSTEM_TURN
    # On a model without the feature: the beta header is the client's opt-in.
    message = client.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        messages=messages,
        extra_headers={"anthropic-beta": "claude-code-20250219," + MID_CONVERSATION_SYSTEM_BETA},
    )
    assert message.content[0].type == "text"
    # The beta client: `/v1/messages?beta=true`, betas as a list.
    beta = client.beta.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=64,
        messages=messages,
        betas=["context-management-2025-06-27", MID_CONVERSATION_SYSTEM_BETA],
    )
    assert beta.stop_reason == "end_turn"


def test_system_turn_without_the_beta_only_where_the_model_has_it(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    client = make_client(emulator_url, api_key)
    messages: Any = SYSTEM_TURN
    with pytest.raises(anthropic.BadRequestError, match=r"messages\.1\.role"):
        client.messages.create(model="claude-sonnet-4-6", max_tokens=64, messages=messages)
    # Documented: Opus 4.8 takes them without any header.
    message = client.messages.create(model="claude-opus-4-8", max_tokens=64, messages=messages)
    assert message.content[0].type == "text"
    counted = client.messages.count_tokens(model="claude-opus-4-8", messages=messages)
    assert counted.input_tokens > 0


# --- output limits ----------------------------------------------------------------


def test_max_tokens_128k_accepted_on_sonnet_4_6(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    client = make_client(emulator_url, api_key)
    # As the AI SDK and pydantic-ai send it: streamed (the SDK refuses 128K without a stream).
    with client.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=128_000,
        messages=[{"role": "user", "content": "REPLY: ok"}],
    ) as stream:
        assert stream.get_final_text() == "ok"
    with pytest.raises(anthropic.BadRequestError, match="128000"):
        client.messages.create(
            model="claude-sonnet-4-6",
            max_tokens=128_001,
            messages=[{"role": "user", "content": "x"}],
            timeout=60,
        )


# --- model ids the catalog does not list yet --------------------------------------


def test_codex_default_model_is_served_with_an_inferred_header(
    openai_client: openai.OpenAI,
) -> None:
    raw = openai_client.responses.with_raw_response.create(model="gpt-6.2-sol", input="REPLY: hi")
    assert raw.headers[INFERRED_HEADER] == "gpt-6.1-sol"
    response = raw.parse()
    assert response.model == "gpt-6.2-sol"
    assert response.output_text == "hi"
    chat = openai_client.chat.completions.with_raw_response.create(
        model="gpt-6.2-sol", messages=[{"role": "user", "content": "REPLY: hi"}]
    )
    assert chat.headers[INFERRED_HEADER] == "gpt-6.1-sol"
    listed = openai_client.chat.completions.with_raw_response.create(
        model="gpt-6.1-sol", messages=[{"role": "user", "content": "hi"}]
    )
    assert INFERRED_HEADER not in listed.headers


def test_future_claude_model_is_served_and_unknown_names_are_not(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    client = make_client(emulator_url, api_key)
    raw = client.messages.with_raw_response.create(
        model="claude-opus-5-1",
        max_tokens=1024,
        messages=list(SYSTEM_TURN),  # type: ignore[arg-type]
    )
    assert raw.headers[INFERRED_HEADER] == "claude-opus-5"
    assert raw.parse().model == "claude-opus-5-1"
    counted = client.messages.with_raw_response.count_tokens(
        model="claude-opus-5-1", messages=[{"role": "user", "content": "hi"}]
    )
    assert counted.headers[INFERRED_HEADER] == "claude-opus-5"
    with pytest.raises(anthropic.NotFoundError):
        client.messages.create(
            model="claude-poem-5", max_tokens=16, messages=[{"role": "user", "content": "x"}]
        )


def test_strict_models_refuses_unlisted_ids(api_key: str) -> None:
    with (
        emulator("--strict-models") as url,
        openai.OpenAI(base_url=url + "/v1", api_key=api_key, max_retries=0) as client,
    ):
        with pytest.raises(openai.NotFoundError, match=r"gpt-6\.2-sol"):
            client.responses.create(model="gpt-6.2-sol", input="hi")
        assert client.responses.create(model="gpt-6.1-sol", input="REPLY: hi").output_text == "hi"


# --- OpenAI tool loops end after the tool result ----------------------------------


def test_chat_tool_loop_ends(openai_client: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "REPLY: done\nUSE_TOOL: get_weather"}]
    for _ in range(3):
        completion = openai_client.chat.completions.create(
            model="gpt-4.1", messages=messages, tools=TOOLS
        )
        message = completion.choices[0].message
        if not message.tool_calls:
            break
        messages.append(message.model_dump(exclude_none=True))
        for call in message.tool_calls:
            messages.append({"role": "tool", "tool_call_id": call.id, "content": "sunny"})
    assert completion.choices[0].finish_reason == "stop"
    assert message.content == "done"
    assert len(messages) == 3  # one call, one result, then the answer


def test_responses_tool_loop_ends(openai_client: openai.OpenAI) -> None:
    """As Codex sends it (store off): the whole input every turn, the tool output last."""
    tools: Any = [{"type": "function", **TOOLS[0]["function"]}]
    items: list[Any] = [{"role": "user", "content": "USE_TOOL: get_weather"}]
    first = openai_client.responses.create(model="gpt-6.2-sol", input=items, tools=tools)
    call = first.output[0]
    assert call.type == "function_call"
    items += [
        {"type": "function_call", "call_id": call.call_id, "name": call.name,
         "arguments": call.arguments},
        {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
    ]  # fmt: skip
    second = openai_client.responses.create(model="gpt-6.2-sol", input=items, tools=tools)
    assert [item.type for item in second.output] == ["message"]


# --- structured outputs -----------------------------------------------------------


def test_chat_parse_with_a_pydantic_model(openai_client: openai.OpenAI) -> None:
    completion = openai_client.chat.completions.parse(
        model="gpt-4.1",
        messages=[{"role": "user", "content": "Forecast for two cities"}],
        response_format=Report,
    )
    report = completion.choices[0].message.parsed
    assert isinstance(report, Report)
    assert len(report.forecasts[0].days) == 3
    assert report.forecasts[0].unit == "celsius"
    streamed: Any = None
    with openai_client.chat.completions.stream(
        model="gpt-4.1", messages=[{"role": "user", "content": "again"}], response_format=Report
    ) as stream:
        streamed = stream.get_final_completion().choices[0].message.parsed
    assert isinstance(streamed, Report)


def test_responses_parse_with_a_pydantic_model(openai_client: openai.OpenAI) -> None:
    response = openai_client.responses.parse(
        model="gpt-6.2-sol", input="Forecast for two cities", text_format=Report
    )
    assert isinstance(response.output_parsed, Report)


def test_anthropic_parse_with_a_pydantic_model(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    message = make_client(emulator_url, api_key).messages.parse(
        model="claude-opus-4-8",
        max_tokens=1024,
        messages=[{"role": "user", "content": "Forecast for two cities"}],
        output_format=Report,
    )
    assert isinstance(message.parsed_output, Report)


# --- the same through the gateway: unlisted ids and system turns pass, priced or not ---------


def test_gateway_relays_unlisted_models_and_system_turns(
    make_client: ClientFactory, gateway_url: str, api_key: str
) -> None:
    raw = make_client(gateway_url, api_key).beta.messages.with_raw_response.create(
        model="claude-opus-5-1",
        max_tokens=256,
        messages=list(SYSTEM_TURN),  # type: ignore[arg-type]
        betas=[MID_CONVERSATION_SYSTEM_BETA],
    )
    assert raw.headers[INFERRED_HEADER] == "claude-opus-5"
    assert raw.parse().content[0].type == "text"
    with openai.OpenAI(base_url=gateway_url + "/v1", api_key=api_key, max_retries=0) as client:
        response = client.responses.with_raw_response.create(model="gpt-6.2-sol", input="REPLY: hi")
        assert response.headers[INFERRED_HEADER] == "gpt-6.1-sol"
        assert response.parse().output_text == "hi"


def test_a_schema_asking_too_much_is_a_400(openai_client: openai.OpenAI) -> None:
    huge = {"type": "array", "items": {"type": "string"}, "minItems": 10**9}
    with pytest.raises(openai.BadRequestError, match="more than 10000 values"):
        openai_client.chat.completions.create(
            model="gpt-4.1",
            messages=[{"role": "user", "content": "hi"}],
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "huge", "schema": {"type": "object",
                    "properties": {"a": huge}, "required": ["a"]}},
            },
        )  # fmt: skip
