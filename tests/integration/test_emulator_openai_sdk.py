"""The official openai SDK against `gateway emulate`: chat, responses, tools, errors, caching."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from gateway.emulator.openai.prompt import REQUEST_OVERHEAD_TOKENS as OVERHEAD
from gateway.wire.sse import SSEDecoder
from tests.integration.openai_tools import TOOLS

MODEL = "gpt-4.1"
NEW_MODEL = "gpt-5.6-terra"
LONG_SYSTEM = "You are a support agent for Acme. Follow the policies below.\n" + "Policy. " * 800
OPENAI_EXCEPTIONS: list[tuple[int, int, type[openai.APIStatusError]]] = [
    (400, 400, openai.BadRequestError),
    (401, 401, openai.AuthenticationError),
    (403, 403, openai.PermissionDeniedError),
    (404, 404, openai.NotFoundError),
    (409, 409, openai.ConflictError),
    (429, 429, openai.RateLimitError),
    (500, 500, openai.InternalServerError),
    (529, 503, openai.InternalServerError),  # OpenAI has no 529: overloaded is a 503
]


@pytest.fixture
def client(emulator_url: str, api_key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emulator_url + "/v1", api_key=api_key, max_retries=0) as sdk:
        yield sdk


def test_chat_create(client: openai.OpenAI) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "REPLY: hello there"}]
    )
    completion = raw.parse()
    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "gpt-4.1-2025-04-14"
    assert completion.choices[0].message.content == "hello there"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert completion.usage.total_tokens == (
        completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion._request_id is not None
    assert raw.headers["x-ratelimit-limit-requests"] == "10000"
    assert raw.headers["x-ratelimit-reset-tokens"].endswith("s")


def test_chat_stream_usage_only_when_asked(client: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "REPLY: one two three"}],
        "stream": True,
    }
    plain = list(client.chat.completions.create(**kwargs))
    assert all(chunk.usage is None for chunk in plain)
    assert "".join(c.choices[0].delta.content or "" for c in plain) == "one two three"
    assert plain[-1].choices[0].finish_reason == "stop"
    counted = list(client.chat.completions.create(**kwargs, stream_options={"include_usage": True}))
    assert len(counted) == len(plain) + 1
    assert counted[-1].choices == []
    assert counted[-1].usage is not None
    assert counted[-1].usage.completion_tokens > 0


def test_chat_tool_calls_plain_and_streamed(client: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "USE_TOOL: get_weather"}],
    }
    completion = client.chat.completions.create(**kwargs)
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"example","days":1}'
    with client.chat.completions.stream(**kwargs) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls
    assert streamed
    assert streamed[0].function.arguments == call.function.arguments  # type: ignore[union-attr]


def test_responses_create_and_stream(client: openai.OpenAI) -> None:
    response = client.responses.create(model=NEW_MODEL, input="REPLY: from responses")
    assert response.id.startswith("resp_")
    assert response.output_text == "from responses"
    assert response.status == "completed"
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 0
    with client.responses.stream(model=NEW_MODEL, input="REPLY: streamed words") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text == "streamed words"
    assert final.usage is not None
    assert final.usage.output_tokens > 0


def test_responses_event_order(emulator_url: str, api_key: str) -> None:
    decoder = SSEDecoder()
    events = []
    with httpx.stream(
        "POST",
        emulator_url + "/v1/responses",
        headers={"authorization": f"Bearer {api_key}"},
        json={"model": MODEL, "input": "REPLY: a b", "stream": True},
    ) as response:
        for chunk in response.iter_raw():
            events += decoder.feed(chunk)
    assert [event.event for event in events] == [
        "response.created", "response.in_progress", "response.output_item.added",
        "response.content_part.added", "response.output_text.delta",
        "response.output_text.delta", "response.output_text.done", "response.content_part.done",
        "response.output_item.done", "response.completed",
    ]  # fmt: skip


def test_responses_tool_call(client: openai.OpenAI) -> None:
    tools: Any = [{"type": "function", **TOOLS[0]["function"]}]
    response = client.responses.create(model=NEW_MODEL, input="USE_TOOL: get_weather", tools=tools)
    call = response.output[0]
    assert call.type == "function_call"
    assert call.name == "get_weather"
    assert call.arguments == '{"city":"example","days":1}'
    with client.responses.stream(
        model=NEW_MODEL, input="USE_TOOL: get_weather", tools=tools
    ) as stream:
        final = stream.get_final_response()
    assert final.output[0].arguments == call.arguments  # type: ignore[union-attr]


@pytest.mark.parametrize(("fault", "status", "exception"), OPENAI_EXCEPTIONS)
def test_every_error_status_is_the_sdks_matching_exception(
    client: openai.OpenAI, fault: int, status: int, exception: type[openai.APIStatusError]
) -> None:
    with pytest.raises(exception) as raised:
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-emulator-fault": str(fault)},
        )
    assert raised.value.status_code == status
    assert raised.value.request_id is not None
    body: Any = raised.value.body
    assert set(body) == {"message", "type", "param", "code"}
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "1"


def test_real_validation_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError, match="gpt-nonexistent"):
        client.chat.completions.create(
            model="gpt-nonexistent", messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(openai.BadRequestError, match="stream_options"):
        client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            stream_options={"include_usage": True},
        )
    with pytest.raises(openai.BadRequestError, match="24h"):
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "hi"}],
            prompt_cache_retention="24h",
        )


def test_stream_faults(client: openai.OpenAI) -> None:
    with pytest.raises(openai.APIError, match="server had an error"):
        list(
            client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                extra_headers={"x-emulator-fault": "stream-error"},
            )
        )
    events = list(
        client.responses.create(
            model=MODEL,
            input="hi",
            stream=True,
            extra_headers={"x-emulator-fault": "stream-error"},
        )
    )
    assert [e.type for e in events[-2:]] == ["error", "response.failed"]


def test_cached_tokens_on_a_repeated_long_prefix(client: openai.OpenAI) -> None:
    def usage_at(now: float, question: str) -> Any:
        return client.chat.completions.create(
            model=MODEL,
            messages=[
                {"role": "system", "content": LONG_SYSTEM},
                {"role": "user", "content": question},
            ],
            extra_headers={"x-emulator-now": str(now)},
        ).usage

    first = usage_at(1_000_000, "first question")
    assert first.prompt_tokens_details.cached_tokens == 0
    second = usage_at(1_000_010, "second question")
    cached = second.prompt_tokens_details.cached_tokens
    assert cached > 1024
    assert cached % 128 == 0
    assert second.prompt_tokens > cached  # prompt_tokens include the cached ones
    assert "cache_write_tokens" not in second.prompt_tokens_details.model_dump(exclude_none=True)


def test_newer_models_bill_writes_at_exact_boundaries(client: openai.OpenAI) -> None:
    def usage(question: Any) -> Any:
        return client.responses.create(
            model=NEW_MODEL, instructions=LONG_SYSTEM, input=question
        ).usage

    first = usage("first")
    assert first.input_tokens_details.cached_tokens == 0
    # Everything but the request's framing is written at the implicit breakpoint (the end).
    assert first.input_tokens_details.cache_write_tokens == first.input_tokens - OVERHEAD
    # The implicit breakpoint is the last message: the next turn reads up to it exactly.
    second = usage(
        [
            {"role": "user", "content": "first"},
            {"role": "assistant", "content": "an answer"},
            {"role": "user", "content": "second"},
        ]
    )
    details = second.input_tokens_details
    assert details.cached_tokens == first.input_tokens - OVERHEAD  # not rounded to 128
    assert details.cached_tokens + details.cache_write_tokens + OVERHEAD == second.input_tokens


def test_models_list_is_openais_shape_for_openai_clients(
    client: openai.OpenAI, emulator_url: str, api_key: str
) -> None:
    ids = {model.id for model in client.models.list()}
    assert {"gpt-4.1", "gpt-4.1-2025-04-14", "gpt-6-sol"} <= ids
    assert not any(i.startswith("claude") for i in ids)
    assert client.models.retrieve("gpt-5.5").id == "gpt-5.5"
    anthropic_list = httpx.get(
        emulator_url + "/v1/models",
        headers={"x-api-key": api_key, "anthropic-version": "2023-06-01"},
    ).json()
    assert anthropic_list["data"][0]["type"] == "model"
    assert all(m["id"].startswith("claude") for m in anthropic_list["data"])
