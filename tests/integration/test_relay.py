"""The official SDK through `gateway serve` → `gateway emulate`: it must not tell them apart."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from bench.harness import free_port, gateway_process
from gateway.wire.sse import SSEDecoder
from tests.integration.conftest import ClientFactory
from tests.integration.scripted_upstream import scripted_upstream
from tests.integration.sdk_errors import SDK_EXCEPTIONS
from tests.integration.servers import gateway, metric

MODEL = "claude-sonnet-4-6"
HEADERS = {"anthropic-version": "2026-10-21", "content-type": "application/json"}
MESSAGE_ID = re.compile(rb'"msg_[A-Za-z0-9]+"')


def test_create_matches_direct(
    make_client: ClientFactory, emulator_url: str, gateway_url: str, api_key: str
) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "max_tokens": 100,
        "messages": [{"role": "user", "content": "REPLY: through the gateway"}],
    }
    direct = make_client(emulator_url, api_key + "-direct").messages.with_raw_response.create(
        **kwargs
    )
    relayed = make_client(gateway_url, api_key).messages.with_raw_response.create(**kwargs)
    direct_message, message = direct.parse(), relayed.parse()
    assert message.content == direct_message.content
    assert message.usage == direct_message.usage
    assert message._request_id is not None
    assert message._request_id.startswith("req_")  # upstream's request-id reaches the SDK
    assert relayed.headers["anthropic-ratelimit-requests-limit"] == "4000"
    assert relayed.headers["x-gateway-request-id"].startswith("gw_")
    assert relayed.headers["x-gateway-model"] == MODEL
    assert "x-gateway-rewrites" not in relayed.headers  # nothing was rewritten: no header


def test_stream_text_and_tool_use_match_direct(
    make_client: ClientFactory, emulator_url: str, gateway_url: str, api_key: str
) -> None:
    tools: Any = [
        {
            "name": "lookup",
            "description": "Look a thing up",
            "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}},
        }
    ]
    for content in ("REPLY: streamed words arrive intact", "USE_TOOL: lookup"):
        kwargs: dict[str, Any] = {
            "model": MODEL,
            "max_tokens": 100,
            "tools": tools,
            "messages": [{"role": "user", "content": content}],
        }
        with make_client(emulator_url, api_key + "-direct").messages.stream(**kwargs) as stream:
            direct = stream.get_final_message()
        with make_client(gateway_url, api_key).messages.stream(**kwargs) as stream:
            relayed = stream.get_final_message()
        assert relayed.content == direct.content
        assert relayed.usage == direct.usage


def test_stream_bytes_are_upstreams_bytes(
    emulator_url: str, gateway_url: str, api_key: str
) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 100,
        "stream": True,
        "messages": [{"role": "user", "content": "REPLY: byte for byte"}],
    }

    def raw(url: str) -> bytes:
        response = httpx.post(
            url + "/v1/messages", json=body, headers={**HEADERS, "x-api-key": api_key}
        )
        return MESSAGE_ID.sub(b'"msg_"', response.content)

    assert raw(gateway_url) == raw(emulator_url)


def test_async_sdk_and_count_tokens(gateway_url: str, api_key: str) -> None:
    async def run() -> tuple[str, int]:
        async with anthropic.AsyncAnthropic(base_url=gateway_url, api_key=api_key) as client:
            messages: Any = [{"role": "user", "content": "REPLY: async relay"}]
            created = await client.messages.create(model=MODEL, max_tokens=20, messages=messages)
            counted = await client.messages.count_tokens(model=MODEL, messages=messages)
            return created.content[0].text, counted.input_tokens  # type: ignore[union-attr]

    text, counted = asyncio.run(run())
    assert text == "async relay"
    assert counted > 0


def test_models_list_passes_through(
    make_client: ClientFactory, gateway_url: str, api_key: str
) -> None:
    ids = [model.id for model in make_client(gateway_url, api_key).models.list(limit=100)]
    assert "claude-sonnet-4-6" in ids


@pytest.mark.parametrize(
    ("status", "exception"),
    SDK_EXCEPTIONS,
)
def test_upstream_errors_are_relayed_unchanged(
    make_client: ClientFactory,
    gateway_url: str,
    api_key: str,
    status: int,
    exception: type[anthropic.APIStatusError],
) -> None:
    with pytest.raises(exception) as raised:
        make_client(gateway_url, api_key).messages.create(
            model=MODEL,
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-emulator-fault": f"{status};after=7"},
        )
    assert raised.value.status_code == status
    assert raised.value.request_id is not None
    assert raised.value.request_id.startswith("req_")
    if status == 429:
        assert raised.value.response.headers["retry-after"] == "7"


def test_sdk_retries_through_the_gateway(
    make_client: ClientFactory, gateway_url: str, api_key: str
) -> None:
    client = make_client(gateway_url, api_key, max_retries=2)
    message = client.messages.create(
        model=MODEL,
        max_tokens=5,
        messages=[{"role": "user", "content": "REPLY: third time"}],
        extra_headers={"x-emulator-fault": f"529;count=2;id={api_key};after=0"},
    )
    assert message.content[0].text == "third time"  # type: ignore[union-attr]


def test_both_auth_styles_and_api_versions(gateway_url: str, api_key: str) -> None:
    body = {
        "model": MODEL,
        "max_tokens": 5,
        "temperature": 0.3,
        "messages": [{"role": "user", "content": "hi"}],
    }
    old = httpx.post(
        gateway_url + "/v1/messages?beta=true",
        json=body,
        headers={**HEADERS, "anthropic-version": "2023-06-01", "x-api-key": api_key},
    )
    assert old.status_code == 200, old.text
    new = httpx.post(
        gateway_url + "/v1/messages",
        json=body,
        headers={**HEADERS, "authorization": f"Bearer {api_key}", "anthropic-beta": "x-1"},
    )
    assert new.status_code == 400
    assert new.json()["error"]["message"] == "temperature: Extra inputs are not permitted"


def test_gateway_errors_use_the_anthropic_envelope(gateway_url: str, api_key: str) -> None:
    auth = {**HEADERS, "x-api-key": api_key}
    cases = [
        (b"{not json", auth, 400, "invalid_request_error"),
        (b"[1, 2]", auth, 400, "invalid_request_error"),
        (b"{}", {**auth, "content-type": "text/plain"}, 415, "invalid_request_error"),
        (b'{"pad": "' + b"x" * 300_000 + b'"}', auth, 413, "request_too_large"),
    ]
    for content, headers, status, error_type in cases:
        response = httpx.post(gateway_url + "/v1/messages", content=content, headers=headers)
        assert response.status_code == status
        body = response.json()
        assert body["type"] == "error"
        assert body["error"]["type"] == error_type
        assert body["request_id"] == response.headers["x-gateway-request-id"]


@pytest.mark.parametrize(
    ("fault", "raised", "status"),
    [
        ("stream-error", anthropic.APIStatusError, "stream_error"),  # event: error after a 200
        # The connection drops mid-stream: the gateway ends the stream with an error event.
        ("cut", anthropic.APIStatusError, "cut"),
    ],
)
def test_a_failed_stream_fails_for_the_client_and_is_counted(
    make_client: ClientFactory,
    gateway_url: str,
    api_key: str,
    fault: str,
    raised: type[Exception],
    status: str,
) -> None:
    before = metric(gateway_url, "gateway_requests_total", status=status)
    with (
        pytest.raises(raised),
        make_client(gateway_url, api_key).messages.stream(
            model=MODEL,
            max_tokens=50,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-emulator-fault": fault},
        ) as stream,
    ):
        stream.get_final_message()
    assert metric(gateway_url, "gateway_requests_total", status=status) == before + 1


def test_usage_ttft_and_steps_reach_the_metrics(
    make_client: ClientFactory, gateway_url: str, api_key: str
) -> None:
    client = make_client(gateway_url, api_key)
    system: Any = [
        {"type": "text", "text": "Rules. " * 800, "cache_control": {"type": "ephemeral"}}
    ]
    read_before = metric(gateway_url, "gateway_tokens_total", type="cache_read", step="synthesis")
    ttft_before = metric(gateway_url, "gateway_time_to_first_token_seconds_count", step="synthesis")
    for _ in range(2):
        with client.messages.stream(
            model=MODEL,
            max_tokens=20,
            system=system,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-gateway-step": "synthesis"},
        ) as stream:
            usage = stream.get_final_message().usage
    read = metric(gateway_url, "gateway_tokens_total", type="cache_read", step="synthesis")
    assert read - read_before == usage.cache_read_input_tokens
    ttft = metric(gateway_url, "gateway_time_to_first_token_seconds_count", step="synthesis")
    assert ttft == ttft_before + 2
    client.messages.create(
        model=MODEL,
        max_tokens=5,
        messages=[{"role": "user", "content": "hi"}],
        extra_headers={"x-gateway-step": "step-nobody-configured"},
    )
    assert metric(gateway_url, "gateway_requests_total", step="other") >= 1
    assert metric(gateway_url, "gateway_requests_total", step="step-nobody-configured") == 0


def test_client_disconnect_closes_the_upstream_stream(
    api_key: str, quiet_realistic_emulator_url: str
) -> None:
    upstream = quiet_realistic_emulator_url
    with gateway(upstream) as url:
        body = {
            "model": "claude-opus-4-6",
            "max_tokens": 2000,
            "stream": True,
            "messages": [{"role": "user", "content": "REPLY: " + "word " * 400}],
        }
        with httpx.stream(
            "POST", url + "/v1/messages", json=body, headers={**HEADERS, "x-api-key": api_key}
        ) as response:
            chunks = response.iter_raw()  # held: closing this iterator closes the response
            assert next(chunks).startswith(b"event: message_start")
            assert httpx.get(upstream + "/emulator/state").json()["open_streams"] == 1
        deadline = time.monotonic() + 3
        while httpx.get(upstream + "/emulator/state").json()["open_streams"] and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert httpx.get(upstream + "/emulator/state").json()["open_streams"] == 0
        assert metric(url, "gateway_requests_total", status="client_closed") == 1


def test_unreachable_upstream_is_502_and_slow_one_504(api_key: str, emulator_url: str) -> None:
    body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
    headers = {**HEADERS, "x-api-key": api_key}
    with gateway(f"http://127.0.0.1:{free_port()}") as url:
        response = httpx.post(url + "/v1/messages", json=body, headers=headers)
        assert response.status_code == 502
        assert response.json()["error"]["type"] == "api_error"
        assert api_key not in response.text
    with gateway(emulator_url, env={"GATEWAY_PROVIDERS__ANTHROPIC__TIMEOUT_S": "0.3"}) as url:
        response = httpx.post(
            url + "/v1/messages", json=body, headers={**headers, "x-emulator-fault": "slow;ms=2000"}
        )
        assert response.status_code == 504
        assert response.json()["error"]["type"] == "timeout_error"


def test_relay_is_byte_faithful_and_unbuffered(api_key: str) -> None:
    chunks = [
        b'event: message_start\r\ndata: {"type":"message_start","message":{"usage":',
        b'{"input_tokens":12,"output_tokens":1}}}\r\n\r\n: a comment\n\n',
        b'event: brand_new_event\ndata: {"type":"brand_new_event"}\n\n',
        b'event: content_block_delta\ndata: {"type":"content_block_delta"}\n\n',
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":9}}\n\n',
        b'event: message_stop\ndata: {"type":"message_stop"}\n\n',
    ]
    release = threading.Event()
    with scripted_upstream() as (upstream_url, upstream), gateway(upstream_url) as url:
        upstream.script.chunks = chunks
        upstream.script.pause_before = {3: release}
        received: list[bytes] = []
        with httpx.stream(
            "POST",
            url + "/v1/messages?beta=true",
            json={"model": MODEL, "stream": True},
            headers={
                **HEADERS,
                "x-api-key": api_key,
                "x-gateway-step": "routing",
                "connection": "keep-alive",
                "x-custom-header": "kept",
            },
        ) as response:
            stream = response.iter_raw()
            # Chunks before the pause arrive while upstream still holds the rest back.
            while b"brand_new_event" not in b"".join(received):
                received.append(next(stream))
            release.set()
            received.extend(stream)
        assert b"".join(received) == b"".join(chunks)
        path, sent_headers, _ = upstream.requests[0]
        names = {name for name, _ in sent_headers}
        assert path == "/v1/messages"
        assert (b"x-custom-header", b"kept") in sent_headers
        assert b"x-gateway-step" not in names
        assert (b"x-api-key", api_key.encode()) in sent_headers
        events = SSEDecoder().feed(b"".join(chunks))
        assert [event.event for event in events][1] == "brand_new_event"
        assert metric(url, "gateway_tokens_total", type="output", step="routing") == 9
        assert metric(url, "gateway_tokens_total", type="input", step="routing") == 12


def test_a_json_response_cut_midway_is_a_502_not_half_a_body(
    make_client: ClientFactory, gateway_url: str, api_key: str
) -> None:
    with pytest.raises(anthropic.InternalServerError) as raised:
        make_client(gateway_url, api_key).messages.create(
            model=MODEL,
            max_tokens=5,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-emulator-fault": "cut"},
        )
    assert raised.value.status_code == 502
    assert raised.value.body["error"]["type"] == "api_error"  # type: ignore[index]


def test_json_responses_carry_their_cost(
    make_client: ClientFactory, gateway_url: str, api_key: str
) -> None:
    raw = make_client(gateway_url, api_key).messages.with_raw_response.create(
        model="claude-haiku-4-5",
        max_tokens=50,
        messages=[{"role": "user", "content": "REPLY: priced"}],
    )
    usage = raw.parse().usage
    expected = (usage.input_tokens * 1 + usage.output_tokens * 5) / 1_000_000  # Haiku 4.5: $1/$5
    assert float(raw.headers["x-gateway-cost-usd"]) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    "body",
    [
        {"model": MODEL, "max_tokens": 5, "messages": [1, 2]},
        {"model": MODEL, "max_tokens": 5, "system": [{"text": None}], "messages": []},
        {"model": MODEL, "max_tokens": 5, "tools": "nope", "messages": [{"role": "user"}]},
    ],
)
def test_bodies_the_rewriter_cannot_read_reach_the_provider_unchanged(
    gateway_url: str, api_key: str, body: dict[str, object]
) -> None:
    response = httpx.post(
        gateway_url + "/v1/messages", json=body, headers={**HEADERS, "x-api-key": api_key}
    )
    assert response.status_code == 400
    assert response.json()["request_id"].startswith("req_")  # the provider's verdict, not ours


def test_each_call_is_one_call_log_line_without_prompt_text(
    make_client: ClientFactory, emulator_url: str, api_key: str, tmp_path: Path
) -> None:
    log = tmp_path / "calls.jsonl"
    secret_prompt = "REPLY: the launch code is 0000"
    with gateway(emulator_url, env={"GATEWAY_METERING__CALL_LOG": str(log)}) as url:
        raw = make_client(url, api_key).messages.with_raw_response.create(
            model=MODEL, max_tokens=20, messages=[{"role": "user", "content": secret_prompt}]
        )
        with make_client(url, api_key).messages.stream(
            model=MODEL, max_tokens=20, messages=[{"role": "user", "content": secret_prompt}]
        ) as stream:
            stream.get_final_message()
    lines = [orjson.loads(line) for line in log.read_bytes().splitlines()]
    assert [line["status"] for line in lines] == ["200", "200"]
    assert lines[0]["request_id"] == raw.headers["x-gateway-request-id"]
    assert lines[0]["ttft_ms"] is None
    assert lines[1]["ttft_ms"] > 0
    assert lines[0]["output_tokens"] == raw.parse().usage.output_tokens
    assert "launch code" not in log.read_text()


def test_workers_share_one_metrics_view(emulator_url: str, api_key: str) -> None:
    """`gateway serve --workers 4`: whichever worker answers /metrics reports the sum."""
    port = free_port()
    env = {
        "GATEWAY_SERVER__START_EMULATOR": "false",
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": emulator_url,
        "GATEWAY_METERING__CALL_LOG": "off",
    }
    # Four processes importing the gateway at once on a loaded 2-core machine: a minute.
    serve = ("serve", "--port", str(port), "--workers", "4")
    with gateway_process(*serve, env=env, port=port, ready_path="/healthz", timeout_s=90) as url:
        body = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        with httpx.Client(base_url=url, headers={**HEADERS, "x-api-key": api_key}) as client:
            for _ in range(40):  # new connections, so every worker may serve some
                assert client.post(
                    "/v1/messages", json=body, headers={"connection": "close"}
                ).is_success
        scraped = {metric(url, "gateway_requests_total", status="200") for _ in range(12)}
    assert scraped == {40.0}
