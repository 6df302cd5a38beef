"""A misbehaving upstream, against a real `gateway serve`.

The upstream is tests/integration/hostile_upstream.py: raw bytes on a socket, one mode at a
time. The gateway runs with small limits so each case is quick: a 3 s read timeout, an 8 s
call and a 4 s stream deadline, 1 MiB of JSON and 64 KiB of one SSE event held at most.
Whatever the upstream does, the client gets either the relayed response or the gateway's
own error in the provider's envelope (never a text/plain 500 or a dropped connection), and
no mode is retried past the policy.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gateway.wire.sse import SSEDecoder
from tests.integration.hostile_upstream import (
    HostileUpstream,
    chat_stream_with_usage,
    hostile_upstream,
)
from tests.integration.servers import gateway

ANTHROPIC_HEADERS = {"x-api-key": "sk-ant-test-hostile", "anthropic-version": "2023-06-01"}
OPENAI_HEADERS = {"authorization": "Bearer sk-test-hostile"}
MESSAGE = {
    "model": "claude-haiku-4-5",
    "max_tokens": 10,
    "messages": [{"role": "user", "content": "hi"}],
}
CHAT = {"model": "gpt-5.6-luna", "messages": [{"role": "user", "content": "hi"}]}
CLIENT_TIMEOUT = httpx.Timeout(60.0)  # far past every limit below: a hang fails, not blocks
ATTEMPTS = 3  # routing.retries.attempts_per_model, the default
LIMITS = {
    "TIMEOUT_S": "3",
    "TOTAL_TIMEOUT_S": "8",
    "STREAM_TIMEOUT_S": "4",
    "MAX_RESPONSE_BYTES": str(1024 * 1024),
    "MAX_EVENT_BYTES": str(64 * 1024),
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[HostileUpstream]:
    with hostile_upstream() as server:
        yield server


@pytest.fixture(scope="module")
def call_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hostile") / "calls.jsonl"


@pytest.fixture(scope="module")
def gateway_url(upstream: HostileUpstream, call_log: Path) -> Iterator[str]:
    env = {
        f"GATEWAY_PROVIDERS__{provider}__{name}": value
        for provider in ("ANTHROPIC", "OPENAI")
        for name, value in LIMITS.items()
    }
    env.update(
        {
            "GATEWAY_ROUTING__RETRIES__BASE_DELAY_S": "0.01",
            "GATEWAY_ROUTING__RETRIES__MAX_DELAY_S": "0.05",
            "GATEWAY_ROUTING__REFRESH_LIFECYCLE": "false",
            # One step with a time limit of its own, shorter than the provider's.
            "GATEWAY_ROUTING__STEPS": json.dumps({"quick": {"timeout_s": 1.5}}),
            "GATEWAY_METERING__CALL_LOG": str(call_log),
        }
    )
    with gateway(upstream.url, env=env) as url:
        yield url


@pytest.fixture
def hostile(upstream: HostileUpstream) -> Iterator[HostileUpstream]:
    """The shared upstream, reset for one test."""
    upstream.requests = 0
    upstream.size = 8 * 1024 * 1024
    upstream.seconds = 20.0
    yield upstream
    upstream.mode = "ok_json"


def post(url: str, path: str = "/v1/messages", **extra: Any) -> httpx.Response:
    openai = path != "/v1/messages"
    body = {**(CHAT if openai else MESSAGE), **extra.pop("body", {})}
    headers = {**(OPENAI_HEADERS if openai else ANTHROPIC_HEADERS), **extra.pop("headers", {})}
    return httpx.post(url + path, json=body, headers=headers, timeout=CLIENT_TIMEOUT)


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str) -> str:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["type"] == "error"
    assert body["error"]["type"] == error_type
    assert response.headers["x-gateway-request-id"].startswith("gw_")
    message: str = body["error"]["message"]
    return message


def events(raw: bytes) -> list[tuple[str, str]]:
    return [(event.event, event.data) for event in SSEDecoder().feed(raw)]


# Item 10: what comes back is not a valid HTTP response.

MALFORMED = [
    "not_http",
    "huge_header",
    "many_headers",
    "body_on_204",
    "body_on_304",
    "status_999",
    "status_600",
]


@pytest.mark.parametrize("mode", MALFORMED)
def test_a_malformed_response_is_a_502_in_the_anthropic_envelope(
    gateway_url: str, hostile: HostileUpstream, mode: str
) -> None:
    hostile.mode = mode
    response = post(gateway_url)
    assert_anthropic_error(response, 502, "api_error")
    assert 1 <= hostile.requests <= ATTEMPTS  # retried per policy, then given up
    assert response.headers["x-should-retry"] == "false"


@pytest.mark.parametrize("mode", ["not_http", "status_999"])
def test_a_malformed_response_is_a_502_in_the_openai_envelope(
    gateway_url: str, hostile: HostileUpstream, mode: str
) -> None:
    hostile.mode = mode
    response = post(gateway_url, "/v1/chat/completions")
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "server_error"  # OpenAI's type for a 5xx
    assert response.headers["x-request-id"].startswith("gw_")


# Item 6: responses over what the gateway holds.


@pytest.mark.parametrize("mode", ["huge_json", "huge_chunked_json"])
def test_a_json_response_over_the_cap_is_a_502_and_not_retried(
    gateway_url: str, hostile: HostileUpstream, mode: str
) -> None:
    hostile.mode = mode
    message = assert_anthropic_error(post(gateway_url), 502, "api_error")
    assert str(1024 * 1024) in message
    assert hostile.requests == 1


def test_an_sse_event_over_the_cap_is_relayed_and_the_stream_still_metered(
    gateway_url: str, hostile: HostileUpstream, call_log: Path
) -> None:
    hostile.mode = "huge_event_sse"
    hostile.size = 1024 * 1024  # 16 times max_event_bytes
    response = post(gateway_url, body={"stream": True})
    assert response.status_code == 200
    assert len(response.content) > hostile.size  # every byte relayed
    assert events(response.content)[-1][0] == "message_stop"
    request_id = response.headers["x-gateway-request-id"]
    (line,) = logged(call_log, request_id)
    assert line["output_tokens"] == 7  # read after the skipped event


def logged(call_log: Path, request_id: str) -> list[dict[str, Any]]:
    """The call log's lines for `request_id`, once there are any: a thread of the gateway writes
    a call's line after its last byte went out, so on a loaded machine the client reads first."""
    deadline = time.monotonic() + 30
    while not (
        lines := [json.loads(x) for x in call_log.read_text().splitlines() if request_id in x]
    ):
        assert time.monotonic() < deadline, f"no call log line for {request_id}"
        time.sleep(0.05)
    return lines


def test_a_stream_without_line_ends_is_relayed_to_its_end(
    gateway_url: str, hostile: HostileUpstream
) -> None:
    hostile.mode = "no_line_ends_sse"
    hostile.size = 2 * 1024 * 1024
    response = post(gateway_url, body={"stream": True})
    assert response.status_code == 200
    assert response.content.endswith(b"x" * 1000)
    assert len(response.content) > hostile.size


# Items 7 and 12: time limits.


def test_a_hung_upstream_is_a_504_after_one_read_timeout(
    gateway_url: str, hostile: HostileUpstream
) -> None:
    hostile.mode = "hang"
    assert_anthropic_error(post(gateway_url), 504, "timeout_error")
    assert hostile.requests == 1  # silence after the request is not retried


def test_a_json_body_that_stops_midway_is_a_504_not_a_502(
    gateway_url: str, hostile: HostileUpstream
) -> None:
    hostile.mode = "hang_mid_json"
    assert_anthropic_error(post(gateway_url), 504, "timeout_error")


def test_a_dripping_json_body_is_cut_at_the_call_deadline(
    gateway_url: str, hostile: HostileUpstream
) -> None:
    hostile.mode = "slow_drip"  # a byte every 0.2 s: each read well within the read timeout
    message = assert_anthropic_error(post(gateway_url), 504, "timeout_error")
    assert "8 s" in message
    assert hostile.requests == 1


def test_an_endless_stream_ends_with_an_error_event_at_its_deadline(
    gateway_url: str, hostile: HostileUpstream
) -> None:
    hostile.mode = "endless_stream"
    response = post(gateway_url, body={"stream": True})
    assert response.status_code == 200
    got = events(response.content)
    assert sum(kind == "content_block_delta" for kind, _ in got) > 20
    kind, data = got[-1]
    assert kind == "error"
    assert "4 s" in json.loads(data)["error"]["message"]


def test_a_steps_time_limit_replaces_the_providers(
    gateway_url: str, hostile: HostileUpstream
) -> None:
    hostile.mode = "slow_drip_stream"
    response = post(gateway_url, body={"stream": True}, headers={"x-gateway-step": "quick"})
    kind, data = events(response.content)[-1]
    assert kind == "error"
    assert "1.5 s" in json.loads(data)["error"]["message"]


def test_a_slow_json_call_on_a_step_is_a_504_at_the_steps_limit(
    gateway_url: str, hostile: HostileUpstream
) -> None:
    hostile.mode = "hang"  # silent for longer than the step's 1.5 s, shorter than timeout_s
    message = assert_anthropic_error(
        post(gateway_url, headers={"x-gateway-step": "quick"}), 504, "timeout_error"
    )
    assert "1.5 s" in message


# Item 11: Content-Length.


def test_a_filtered_chat_stream_does_not_keep_upstreams_content_length(
    gateway_url: str, hostile: HostileUpstream
) -> None:
    hostile.mode = "content_length_stream"
    response = post(gateway_url, "/v1/chat/completions", body={"stream": True})
    assert response.status_code == 200
    assert "content-length" not in response.headers
    data = [data for _, data in events(response.content)]
    assert data[-1] == "[DONE]"
    assert all('"usage"' not in chunk for chunk in data)  # the gateway asked; it took it out
    assert len(response.content) < len(chat_stream_with_usage())


def test_an_unchanged_json_body_keeps_upstreams_content_length(
    gateway_url: str, hostile: HostileUpstream
) -> None:
    hostile.mode = "ok_json"
    response = post(gateway_url)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))
    assert response.json()["id"] == "msg_hostile"


# Item 12: deeply nested JSON, against the real emulator.


def test_deeply_nested_json_is_a_400_not_a_retried_500(emulator_url: str) -> None:
    with gateway(emulator_url) as url:
        for depth in (300, 600, 1000):
            nested_json_is_refused(url, depth)


def nested_json_is_refused(url: str, depth: int) -> None:
    nested: object = 1
    for _ in range(depth):
        nested = {"a": nested}
    # The stdlib's json stops at ~1000 levels of recursion; orjson writes these, up to 254.
    text = json.dumps(nested) if depth < 900 else '{"a":' * depth + "1" + "}" * depth
    body = json.dumps({**MESSAGE, "tools": [{"name": "t", "input_schema": "NESTED"}]})
    chat = json.dumps(
        {
            **CHAT,
            "stream": True,
            "tools": [{"type": "function", "function": {"name": "t", "parameters": "NESTED"}}],
        }
    )
    for path, raw, headers in (
        ("/v1/messages", body, ANTHROPIC_HEADERS),
        ("/v1/chat/completions", chat, OPENAI_HEADERS),
    ):
        response = httpx.post(
            url + path,
            content=raw.replace('"NESTED"', text),
            headers={**headers, "content-type": "application/json"},
            timeout=CLIENT_TIMEOUT,
        )
        assert response.status_code == 400, (path, depth, response.text[:200])
        assert "invalid_request_error" in response.text
