"""A body with a duplicated top-level key, through `gateway serve` with a gateway key: the
provider gets the body the gateway judged (the last value, as orjson parses), never the
first value a provider's parser might take."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import httpx
import pytest

from tests.integration.redis_server import RedisServer, needs_redis, redis_server
from tests.integration.scripted_upstream import Script, scripted_upstream
from tests.integration.servers import gateway
from tests.integration.test_key_enforcement import new_key
from tests.integration.test_shared_state import state_env

MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5-20251001",
    "content": [{"type": "text", "text": "ok"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 5, "output_tokens": 1},
}


@pytest.fixture
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url if isinstance(server, RedisServer) else server


@needs_redis
def test_a_duplicated_model_reaches_the_provider_as_judged(redis_url: str) -> None:
    env = state_env(redis_url, f"dup-{uuid.uuid4().hex[:8]}:")
    _, key = new_key(env, "--models", "claude-haiku-*", "--daily-budget-usd", "1")
    raw = (
        b'{"model":"claude-opus-4-6","max_tokens":64000,'
        b'"messages":[{"role":"user","content":"hi"}],'
        b'"model":"claude-haiku-4-5-20251001","max_tokens":16}'
    )
    with scripted_upstream() as (upstream_url, upstream):
        upstream.script = Script(
            headers=[(b"content-type", b"application/json")],
            chunks=[json.dumps(MESSAGE).encode()],
        )
        with gateway(upstream_url, env=env) as url:
            answer = httpx.post(
                f"{url}/v1/messages",
                content=raw,
                headers={
                    "x-api-key": key,
                    "anthropic-version": "2023-06-01",
                    "content-type": "application/json",
                },
                timeout=60,
            )
        assert answer.status_code == 200, answer.text
        sent = next(body for path, _, body in upstream.requests if path == "/v1/messages")
    assert b"claude-opus" not in sent  # a first-wins parser sees only what was judged
    assert json.loads(sent)["model"] == "claude-haiku-4-5-20251001"
    assert json.loads(sent)["max_tokens"] == 16
