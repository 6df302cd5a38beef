"""Ways past a key's budget, through `gateway serve`, the emulator and a real redis-server:
a stream left (or cut) before its final usage event, or a call answered without usage, is
charged its reservation, never $0."""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest

from tests.integration.redis_server import RedisServer, needs_redis, redis_server
from tests.integration.scripted_upstream import Script, scripted_upstream
from tests.integration.servers import gateway
from tests.integration.test_key_enforcement import new_key, recorded_spend, wait_for_spend
from tests.integration.test_shared_state import state_env

MODEL = "claude-haiku-4-5"
MAX_TOKENS = 4000
# claude-haiku-4-5 bills output at $5 / MTok: the reservation is at least max_tokens of it.
LEAST_RESERVED = MAX_TOKENS * 5e-6
DEADLINE_S = 30.0  # bounded waits on a loaded machine


@pytest.fixture
def paced_emulator_url(quiet_realistic_emulator_url: str) -> str:
    """Streams paced as a provider's are: a client can leave before the end."""
    return quiet_realistic_emulator_url


@pytest.fixture
def own_redis() -> Iterator[RedisServer | str]:
    with redis_server() as server:
        yield server


def _url(server: RedisServer | str) -> str:
    return server.url if isinstance(server, RedisServer) else server


def stream_request(key: str, extra: str = "") -> bytes:
    body = orjson.dumps(
        {
            "model": MODEL,
            "max_tokens": MAX_TOKENS,
            "stream": True,
            "messages": [{"role": "user", "content": "REPLY: " + "word " * 3000}],
        }
    )
    return (
        b"POST /v1/messages HTTP/1.1\r\nhost: gateway\r\nconnection: close\r\n"
        b"content-type: application/json\r\n"
        + f"x-api-key: {key}\r\nanthropic-version: 2023-06-01\r\n{extra}".encode()
        + f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )


def read_until(url: str, request: bytes, deltas: int | None) -> bytes:
    """Sends `request` and reads until `deltas` content events came (then leaves, closing the
    socket), or, with None, until the server ends the response."""
    parts = urlsplit(url)
    seen = b""
    with socket.create_connection((parts.hostname, parts.port), timeout=DEADLINE_S) as sock:
        sock.sendall(request)
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            seen += chunk
            if deltas is not None and seen.count(b"event: content_block_delta") >= deltas:
                break
            if deltas is None and b"event: error" in seen:
                break
    return seen


def wait_for_spend_above(redis_url: str, prefix: str, name: str, least: float) -> float:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        spent = recorded_spend(redis_url, prefix, name)
        if spent >= least or time.monotonic() > deadline:
            return spent
        time.sleep(0.05)


@needs_redis
@pytest.mark.parametrize("how", ["client_leaves", "provider_cuts"])
def test_a_stream_without_its_final_usage_is_charged_its_reservation(
    paced_emulator_url: str, own_redis: RedisServer | str, how: str
) -> None:
    redis_url = _url(own_redis)
    prefix = f"unseen-{uuid.uuid4().hex[:8]}:"
    env = state_env(redis_url, prefix)
    name, key = new_key(env, "--daily-budget-usd", "5")
    with gateway(paced_emulator_url, env=env) as url:
        if how == "client_leaves":
            seen = read_until(url, stream_request(key), deltas=20)
            assert seen.startswith(b"HTTP/1.1 200"), seen[:200]
            assert b"message_delta" not in seen  # left before the final usage
        else:
            fault = "x-emulator-fault: cut;no-retry\r\n"
            seen = read_until(url, stream_request(key, fault), deltas=None)
            assert seen.startswith(b"HTTP/1.1 200"), seen[:200]
            assert b"message_delta" not in seen
        spent = wait_for_spend_above(redis_url, prefix, name, LEAST_RESERVED)
        assert spent >= LEAST_RESERVED, spent
        assert spent <= 5  # within the budget it was admitted under


@needs_redis
def test_an_upstream_error_status_is_not_charged(
    paced_emulator_url: str, own_redis: RedisServer | str
) -> None:
    redis_url = _url(own_redis)
    prefix = f"unseen-{uuid.uuid4().hex[:8]}:"
    env = state_env(redis_url, prefix)
    name, key = new_key(env, "--daily-budget-usd", "5")
    with gateway(paced_emulator_url, env=env) as url:
        seen = read_until(url, stream_request(key, "x-emulator-fault: 400\r\n"), deltas=None)
        assert seen.startswith(b"HTTP/1.1 400"), seen[:200]
        # Then a call that is charged: once its charge lands, the spend is its cost alone.
        cheap = {"model": MODEL, "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]}
        headers = {"x-api-key": key, "anthropic-version": "2023-06-01"}
        answer = httpx.post(f"{url}/v1/messages", json=cheap, headers=headers, timeout=60)
        assert answer.status_code == 200, answer.text
        cost = float(answer.headers["x-gateway-cost-usd"])
        # Until its charge lands, the call's reservation is what the spend holds: wait
        # (bounded) for the settle, then the spend is this call's cost and nothing of the 400.
        spent = wait_for_spend(redis_url, prefix, name, cost)
        assert spent == pytest.approx(cost, abs=2e-6)


@needs_redis
def test_a_background_call_answered_without_usage_is_charged_its_reservation(
    own_redis: RedisServer | str,
) -> None:
    """`background: true`: the provider answers `queued`, without usage; the gateway does not
    follow the response, so the call is charged what it reserved."""
    redis_url = _url(own_redis)
    prefix = f"unseen-{uuid.uuid4().hex[:8]}:"
    env = {**state_env(redis_url, prefix), "GATEWAY_PROVIDERS__OPENAI__API_KEY": "sk-held"}
    name, key = new_key(env, "--daily-budget-usd", "5")
    queued = {"id": "resp_1", "object": "response", "status": "queued", "model": "gpt-5.6-terra"}
    body = {
        "model": "gpt-5.6-terra",
        "input": "hi",
        "background": True,
        "max_output_tokens": MAX_TOKENS,
    }
    with scripted_upstream() as (upstream_url, upstream):
        upstream.script = Script(
            headers=[(b"content-type", b"application/json")], chunks=[orjson.dumps(queued)]
        )
        with gateway(upstream_url, env=env) as url:
            answer = httpx.post(
                f"{url}/v1/responses",
                json=body,
                headers={"authorization": f"Bearer {key}"},
                timeout=60,
            )
        assert answer.status_code == 200, answer.text
    least = MAX_TOKENS * 12e-6  # gpt-5.6-terra's output: $12 / MTok
    spent = wait_for_spend_above(redis_url, prefix, name, least)
    assert spent >= least, spent
