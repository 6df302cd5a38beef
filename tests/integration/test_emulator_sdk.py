"""The official anthropic SDK against `gateway emulate`: it must not tell it from the real API."""

from __future__ import annotations

import asyncio
from typing import Any

import anthropic
import httpx
import httpx2
import orjson
import pytest

from gateway.wire.sse import SSEDecoder
from tests.integration.conftest import ClientFactory
from tests.integration.sdk_errors import SDK_EXCEPTIONS

MODEL = "claude-sonnet-4-6"
LONG_SYSTEM = (
    "You are a support agent for Acme. Follow the policies below.\n" + "Policy line. " * 400
)


def test_create_returns_a_message_the_sdk_parses(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    message = make_client(emulator_url, api_key).messages.create(
        model=MODEL, max_tokens=256, messages=[{"role": "user", "content": "Hello"}]
    )
    assert message.id.startswith("msg_")
    assert message.role == "assistant"
    assert message.model == MODEL
    assert message.stop_reason == "end_turn"
    assert message.content[0].type == "text"
    assert message.content[0].text
    assert message.usage.input_tokens > 0
    assert message.usage.output_tokens > 0
    assert message._request_id is not None
    assert message._request_id.startswith("req_")


# The emulator's virtual clock: a day before claude-sonnet-4-5 retires (2026-11-30), so
# these tests do not depend on the calendar.
BEFORE_SONNET_4_5_RETIRES = {"x-emulator-now": "1795910400"}  # 2026-11-29T00:00:00Z


# The SDK warns of a model it lists as deprecated; releases after the model's end of life
# (2026-11-30) drop it from the list, so whether it warns depends on the SDK installed.
@pytest.mark.filterwarnings("ignore:The model 'claude-sonnet-4-5':DeprecationWarning")
def test_alias_answers_with_the_dated_snapshot(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    message = make_client(emulator_url, api_key).messages.create(
        model="claude-sonnet-4-5",
        max_tokens=16,
        messages=[{"role": "user", "content": "Hi"}],
        extra_headers=BEFORE_SONNET_4_5_RETIRES,
    )
    assert message.model == "claude-sonnet-4-5-20250929"


def test_reply_directive_max_tokens_and_stop_sequences(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    sdk = make_client(emulator_url, api_key)
    asked = [{"role": "user", "content": "REPLY: alpha beta gamma delta"}]
    exact = sdk.messages.create(model=MODEL, max_tokens=100, messages=asked)
    assert exact.content[0].text == "alpha beta gamma delta"  # type: ignore[union-attr]
    stopped = sdk.messages.create(
        model=MODEL, max_tokens=100, messages=asked, stop_sequences=["gamma"]
    )
    assert stopped.content[0].text == "alpha beta "  # type: ignore[union-attr]
    assert (stopped.stop_reason, stopped.stop_sequence) == ("stop_sequence", "gamma")
    cut = sdk.messages.create(model=MODEL, max_tokens=3, messages=asked)
    assert cut.stop_reason == "max_tokens"
    assert cut.usage.output_tokens <= 3
    warm = sdk.messages.create(model=MODEL, max_tokens=0, messages=asked)
    assert (warm.content, warm.stop_reason) == ([], "max_tokens")


def test_stream_yields_text_and_cumulative_usage(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    sdk = make_client(emulator_url, api_key)
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 200,
        "messages": [{"role": "user", "content": "Tell me"}],
    }
    with sdk.messages.stream(**kwargs) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    plain = sdk.messages.create(**kwargs)
    assert text == final.content[0].text == plain.content[0].text  # type: ignore[union-attr]
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens


def test_stream_event_order_is_the_documented_one(emulator_url: str, api_key: str) -> None:
    decoder = SSEDecoder()
    events = []
    with httpx.stream(
        "POST",
        emulator_url + "/v1/messages",
        headers={"authorization": f"Bearer {api_key}", "anthropic-version": "2026-10-21"},
        json={
            "model": MODEL,
            "max_tokens": 100,
            "stream": True,
            "messages": [{"role": "user", "content": "REPLY: one two three"}],
        },
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        for chunk in response.iter_raw():
            events += decoder.feed(chunk)
    assert [event.event for event in events] == [
        "message_start", "content_block_start", "ping",
        "content_block_delta", "content_block_delta", "content_block_delta",
        "content_block_stop", "message_delta", "message_stop",
    ]  # fmt: skip
    assert all(orjson.loads(event.data)["type"] == event.event for event in events)


def test_tool_use_when_forced_and_streamed(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    sdk = make_client(emulator_url, api_key)
    tools: list[Any] = [
        {
            "name": "get_weather",
            "description": "Weather for a city",
            "input_schema": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["city", "days"],
            },
        }
    ]
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 200,
        "tools": tools,
        "messages": [{"role": "user", "content": "USE_TOOL: get_weather"}],
    }
    message = sdk.messages.create(**kwargs)
    assert message.stop_reason == "tool_use"
    block = message.content[0]
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == {"city": "example", "days": 1}
    with sdk.messages.stream(**kwargs) as stream:
        streamed = stream.get_final_message()
    assert streamed.content[0].input == block.input  # type: ignore[union-attr]


def test_async_create_and_stream(emulator_url: str, api_key: str) -> None:
    async def run() -> tuple[str, str]:
        async with anthropic.AsyncAnthropic(
            base_url=emulator_url, api_key=api_key, max_retries=0
        ) as sdk:
            messages: list[Any] = [{"role": "user", "content": "REPLY: async works"}]
            created = await sdk.messages.create(model=MODEL, max_tokens=50, messages=messages)
            async with sdk.messages.stream(model=MODEL, max_tokens=50, messages=messages) as stream:
                streamed = await stream.get_final_text()
        return created.content[0].text, streamed  # type: ignore[union-attr]

    assert asyncio.run(run()) == ("async works", "async works")


def test_count_tokens_equals_the_usage_of_the_whole_prompt(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    sdk = make_client(emulator_url, api_key)
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "system": [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "What is the refund policy?"}],
    }
    counted = sdk.messages.count_tokens(**kwargs).input_tokens
    for _ in range(2):  # a write, then a read: the sum is the same either way
        usage = sdk.messages.create(max_tokens=10, **kwargs).usage
        total = (
            usage.input_tokens
            + (usage.cache_creation_input_tokens or 0)
            + (usage.cache_read_input_tokens or 0)
        )
        assert total == counted
    assert usage.cache_read_input_tokens
    assert usage.cache_read_input_tokens > 1024


def test_cache_hit_after_write_and_ttl_on_the_virtual_clock(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    sdk = make_client(emulator_url, api_key)
    system: Any = [{"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}]

    def usage_at(now: float) -> anthropic.types.Usage:
        return sdk.messages.create(
            model=MODEL,
            max_tokens=5,
            system=system,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-emulator-now": str(now)},
        ).usage

    first = usage_at(1_000_000)
    assert first.cache_read_input_tokens == 0
    assert first.cache_creation_input_tokens
    assert first.cache_creation
    assert first.cache_creation.ephemeral_5m_input_tokens == first.cache_creation_input_tokens
    assert usage_at(1_000_240).cache_read_input_tokens == first.cache_creation_input_tokens
    assert (
        usage_at(1_000_530).cache_read_input_tokens == first.cache_creation_input_tokens
    )  # refreshed at +240
    expired = usage_at(1_000_840)
    assert expired.cache_read_input_tokens == 0
    assert expired.cache_creation_input_tokens


def test_parallel_requests_on_a_new_prefix_all_miss(
    simulated_emulator_url: str, api_key: str
) -> None:
    async def run() -> list[int]:
        sdk = anthropic.AsyncAnthropic(
            base_url=simulated_emulator_url, api_key=api_key, max_retries=0
        )
        system: Any = [
            {"type": "text", "text": LONG_SYSTEM, "cache_control": {"type": "ephemeral"}}
        ]

        async def call(now: float) -> int:
            usage = (
                await sdk.messages.create(
                    model=MODEL,
                    max_tokens=5,
                    system=system,
                    messages=[{"role": "user", "content": "hi"}],
                    extra_headers={"x-emulator-now": str(now)},
                )
            ).usage
            return usage.cache_read_input_tokens or 0

        async with sdk:
            parallel = await asyncio.gather(*(call(2_000_000.0) for _ in range(3)))
            later = await call(2_000_010.0)
        return [*parallel, later]

    *parallel, later = asyncio.run(run())
    assert parallel == [0, 0, 0]
    assert later > 0


def test_simulated_latency_is_reported_in_headers(
    make_client: ClientFactory, simulated_emulator_url: str, api_key: str
) -> None:
    raw = make_client(simulated_emulator_url, api_key).messages.with_raw_response.create(
        model=MODEL, max_tokens=20, messages=[{"role": "user", "content": "x " * 4000}]
    )
    ttft_ms = float(raw.headers["x-emulator-ttft-ms"])
    assert ttft_ms > 450  # base of the medium profile, plus prefill of ~2,000 tokens
    assert float(raw.headers["x-emulator-duration-ms"]) > ttft_ms


def test_diagnostics_name_the_changed_system_prompt(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    sdk = make_client(emulator_url, api_key)
    first = sdk.messages.create(
        model=MODEL,
        max_tokens=5,
        system=LONG_SYSTEM + "v1",
        messages=[{"role": "user", "content": "hi"}],
    )
    second = sdk.messages.create(
        model=MODEL,
        max_tokens=5,
        system=LONG_SYSTEM + "v2",
        messages=[{"role": "user", "content": "hi"}],
        diagnostics={"previous_message_id": first.id},
    )
    assert second.diagnostics is not None
    assert second.diagnostics.cache_miss_reason is not None
    assert second.diagnostics.cache_miss_reason.type == "system_changed"


@pytest.mark.parametrize(
    ("status", "exception"),
    SDK_EXCEPTIONS,
)
def test_every_error_status_is_the_sdks_matching_exception(
    make_client: ClientFactory,
    emulator_url: str,
    api_key: str,
    status: int,
    exception: type[anthropic.APIStatusError],
) -> None:
    with pytest.raises(exception) as raised:
        make_client(emulator_url, api_key).messages.create(
            model=MODEL,
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-emulator-fault": str(status)},
        )
    assert raised.value.status_code == status
    assert raised.value.request_id is not None
    body: Any = raised.value.body
    assert body["type"] == "error"
    assert body["error"]["type"]


def test_real_validation_errors(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    sdk = make_client(emulator_url, api_key)
    block: Any = {"type": "text", "text": "x", "cache_control": {"type": "ephemeral"}}
    with pytest.raises(anthropic.BadRequestError, match="maximum of 4 blocks"):
        sdk.messages.create(
            model=MODEL, max_tokens=5, messages=[{"role": "user", "content": [block] * 5}]
        )
    with pytest.raises(anthropic.NotFoundError, match="model: claude-nonexistent"):
        sdk.messages.create(
            model="claude-nonexistent", max_tokens=5, messages=[{"role": "user", "content": "hi"}]
        )
    with pytest.raises(anthropic.NotFoundError):  # retired 2026-06-15
        sdk.messages.create(
            model="claude-sonnet-4-20250514",
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
        )
    with pytest.raises(
        anthropic.BadRequestError, match="temperature: Extra inputs are not permitted"
    ):
        sdk.messages.create(
            model=MODEL,
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
            extra_body={"temperature": 0.5},
        )
    with pytest.raises(anthropic.BadRequestError, match="max_tokens"):
        sdk.messages.create(
            model="claude-3-haiku-20240307",
            max_tokens=5000,
            messages=[{"role": "user", "content": "hi"}],
        )


def test_old_api_version_accepts_temperature_and_x_api_key(emulator_url: str, api_key: str) -> None:
    response = httpx.post(
        emulator_url + "/v1/messages?beta=true",
        headers={"x-api-key": api_key, "anthropic-version": "2023-06-01"},
        json={
            "model": MODEL,
            "max_tokens": 5,
            "temperature": 0.2,
            "messages": [{"role": "user", "content": "hi"}],
        },
    )
    assert response.status_code == 200, response.text
    assert response.headers["anthropic-ratelimit-requests-limit"]
    missing = httpx.post(
        emulator_url + "/v1/messages", headers={"anthropic-version": "2023-06-01"}, json={}
    )
    assert (missing.status_code, missing.json()["error"]["type"]) == (401, "authentication_error")


def test_retry_of_a_counted_fault_succeeds(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    sdk = make_client(emulator_url, api_key, max_retries=2)
    message = sdk.messages.create(
        model=MODEL,
        max_tokens=5,
        messages=[{"role": "user", "content": "REPLY: made it"}],
        extra_headers={"x-emulator-fault": f"529;count=2;id={api_key};after=0"},
    )
    assert message.content[0].text == "made it"  # type: ignore[union-attr]
    with pytest.raises(anthropic.OverloadedError):  # without count, every attempt faults
        sdk.messages.create(
            model=MODEL,
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-emulator-fault": "529;no-retry"},
        )


def test_stream_faults_surface_as_the_sdk_would_see_them(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    sdk = make_client(emulator_url, api_key)
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "hi"}],
    }
    with (
        pytest.raises(anthropic.APIStatusError, match="Overloaded"),
        sdk.messages.stream(**kwargs, extra_headers={"x-emulator-fault": "stream-error"}) as stream,
    ):
        stream.get_final_message()
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        sdk.messages.stream(**kwargs, extra_headers={"x-emulator-fault": "cut"}) as stream,
    ):
        stream.get_final_message()


def test_models_list_reports_lifecycle(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    sdk = make_client(emulator_url, api_key, default_headers=BEFORE_SONNET_4_5_RETIRES)
    models = {model.id: model for model in sdk.models.list(limit=100)}
    assert models["claude-sonnet-4-6"].lifecycle == "active"
    assert models["claude-sonnet-4-5-20250929"].lifecycle == "deprecated"
    assert models["claude-sonnet-4-5-20250929"].retires_at is not None
    assert sdk.models.retrieve("claude-haiku-4-5").id == "claude-haiku-4-5-20251001"


def test_cut_stream_is_no_longer_counted_open(
    make_client: ClientFactory, api_key: str, quiet_realistic_emulator_url: str
) -> None:
    url = quiet_realistic_emulator_url
    sdk = make_client(url, api_key)
    with (
        pytest.raises(httpx2.RemoteProtocolError),
        sdk.messages.stream(
            model="claude-haiku-4-5",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-emulator-fault": "cut"},
        ) as stream,
    ):
        stream.get_final_message()
    assert httpx.get(url + "/emulator/state").json()["open_streams"] == 0
