"""Retries that cannot multiply an outage, and the small things a careful client notices,
through a real gateway and emulator with the official SDKs."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from gateway.cli import emulator_wanted
from gateway.settings import Settings
from tests.integration.conftest import ClientFactory
from tests.integration.scripted_upstream import ScriptedUpstream, scripted_upstream
from tests.integration.servers import gateway, metric

MODEL = "claude-sonnet-4-6"
FALLBACK = "claude-haiku-4-5"
QUESTION: Any = [{"role": "user", "content": "hi"}]
ALWAYS_529 = {"x-emulator-fault": "529"}
HEADERS = {"anthropic-version": "2023-06-01", "content-type": "application/json"}


def faults(emulator_url: str) -> int:
    return sum(httpx.get(emulator_url + "/emulator/state").json()["faults"].values())


STEPS = json.dumps({"backup": {"fallbacks": [FALLBACK]}})  # keeps the model


@pytest.fixture(scope="module")
def cascade_url(emulator_url: str) -> Iterator[str]:
    env = {"GATEWAY_ROUTING__RETRIES__BASE_DELAY_S": "0.01", "GATEWAY_ROUTING__STEPS": STEPS}
    with gateway(emulator_url, env=env) as url:
        yield url


@pytest.fixture(scope="module")
def guarded_url(emulator_url: str) -> Iterator[str]:
    """A gateway whose breakers open after 2 failures in a row, for 30 s."""
    env = {
        "GATEWAY_ROUTING__RETRIES__BASE_DELAY_S": "0.01",
        "GATEWAY_ROUTING__RETRIES__BREAKER_FAILURES": "2",
        "GATEWAY_ROUTING__RETRIES__BREAKER_COOLDOWN_S": "30",
        "GATEWAY_ROUTING__STEPS": STEPS,
    }
    with gateway(emulator_url, env=env) as url:
        yield url


def test_an_open_breaker_answers_anthropics_overloaded_error_at_once(
    make_client: ClientFactory, guarded_url: str, emulator_url: str, api_key: str
) -> None:
    client = make_client(guarded_url, api_key)
    with pytest.raises(anthropic.APIStatusError):  # two attempts fail: the breaker opens
        client.messages.create(
            model=MODEL, max_tokens=5, messages=QUESTION, extra_headers=ALWAYS_529
        )
    before = faults(emulator_url)
    with pytest.raises(anthropic.APIStatusError) as raised:
        client.messages.create(
            model=MODEL, max_tokens=5, messages=QUESTION, extra_headers=ALWAYS_529
        )
    assert faults(emulator_url) == before  # nothing was sent upstream
    error = raised.value
    assert error.status_code == 529
    assert isinstance(error, anthropic.InternalServerError)  # the SDK's OverloadedError
    assert isinstance(error.body, dict)
    assert error.body["error"]["type"] == "overloaded_error"
    assert 1 <= int(error.response.headers["retry-after"]) <= 30
    assert metric(guarded_url, "gateway_circuit_open", provider="anthropic", model=MODEL) == 1
    assert metric(guarded_url, "gateway_circuit_rejections_total", provider="anthropic") >= 1
    # A fallback is still tried while the primary's breaker is open (its own breaker applies).
    raw = client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=5,
        messages=QUESTION,
        extra_headers={"x-gateway-step": "backup", "x-emulator-fault": f"529;model={MODEL}"},
    )
    assert raw.headers["x-gateway-model"].startswith(FALLBACK)


def test_an_open_breaker_answers_openais_503_at_once(guarded_url: str, emulator_url: str) -> None:
    model = "gpt-4.1-mini"
    client = openai.OpenAI(base_url=guarded_url + "/v1", api_key="sk-test", max_retries=0)
    messages: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.APIStatusError):
        client.chat.completions.create(model=model, messages=messages, extra_headers=ALWAYS_529)
    before = faults(emulator_url)
    with pytest.raises(openai.APIStatusError) as raised:
        client.chat.completions.create(model=model, messages=messages, extra_headers=ALWAYS_529)
    assert faults(emulator_url) == before
    assert raised.value.status_code == 503
    assert "retry-after" in raised.value.response.headers
    client.close()


@pytest.mark.parametrize(("count", "attempts"), [("0", 3), ("1", 1)])
def test_a_clients_own_retry_is_sent_upstream_once(
    make_client: ClientFactory, gateway_url: str, emulator_url: str, count: str, attempts: int
) -> None:
    """Before the fix, the gateway retried a client's retry three times more."""
    client = make_client(gateway_url, f"sk-ant-{uuid.uuid4().hex}")
    before = faults(emulator_url)
    with pytest.raises(anthropic.APIStatusError):
        client.messages.create(
            model=MODEL,
            max_tokens=5,
            messages=QUESTION,
            extra_headers={**ALWAYS_529, "x-stainless-retry-count": count},
        )
    assert faults(emulator_url) - before == attempts


# --- Content-Length on every JSON path ----------------------------------------


def post(url: str, headers: dict[str, str], **body: Any) -> httpx.Response:
    payload = {"model": MODEL, "max_tokens": 5, "messages": QUESTION, **body}
    key = {"x-api-key": f"sk-ant-{uuid.uuid4().hex}"}
    return httpx.post(
        url + "/v1/messages", content=orjson.dumps(payload), headers={**HEADERS, **key, **headers}
    )


@pytest.mark.parametrize(
    "headers",
    [
        {},  # plain
        {"x-emulator-fault": "529;count=1"},  # retried, then answered
        {"x-gateway-step": "backup", "x-emulator-fault": f"529;model={MODEL}"},  # fallen back
    ],
    ids=["plain", "retried", "fallback"],
)
def test_a_json_answer_keeps_its_content_length(cascade_url: str, headers: dict[str, str]) -> None:
    if "count" in headers.get("x-emulator-fault", ""):
        headers = {
            **headers,
            "x-emulator-fault": headers["x-emulator-fault"] + f";id={uuid.uuid4()}",
        }
    response = post(cascade_url, headers)
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))
    assert "transfer-encoding" not in response.headers


def test_a_hedged_json_answer_keeps_its_content_length(emulator_url: str) -> None:
    steps = {"fast": {"tier": "large", "ttft_ms": 1, "hedge": True, "fallbacks": [FALLBACK]}}
    with gateway(emulator_url, env={"GATEWAY_ROUTING__STEPS": json.dumps(steps)}) as url:
        response = post(url, {"x-gateway-step": "fast", "x-emulator-fault": "slow;ms=300"})
    assert response.status_code == 200
    assert response.headers["content-length"] == str(len(response.content))


@pytest.fixture(scope="module")
def chunking_gateway() -> Iterator[tuple[str, ScriptedUpstream]]:
    with scripted_upstream() as (upstream_url, upstream), gateway(upstream_url) as url:
        yield url, upstream


def test_a_json_answer_upstream_sent_chunked_gets_a_content_length(
    chunking_gateway: tuple[str, ScriptedUpstream],
) -> None:
    """Before the fix, a JSON body the upstream sent without Content-Length reached the client
    chunked."""
    url, upstream = chunking_gateway
    body = orjson.dumps({"type": "message", "model": MODEL, "content": [], "role": "assistant"})
    upstream.script.headers = [(b"content-type", b"application/json")]
    upstream.script.chunks = [body[:10], body[10:]]
    response = post(url, {})
    assert response.status_code == 200
    assert response.content == body
    assert response.headers["content-length"] == str(len(body))


# --- no empty x-gateway-rewrites --------------------------------------------


def test_nothing_rewritten_sends_no_rewrites_header(gateway_url: str) -> None:
    key = {"x-api-key": f"sk-ant-{uuid.uuid4().hex}"}
    response = httpx.post(
        gateway_url + "/v1/messages/count_tokens",
        content=orjson.dumps({"model": MODEL, "messages": QUESTION}),
        headers={**HEADERS, **key},
    )
    assert response.status_code == 200
    assert "x-gateway-rewrites" not in response.headers


# --- the emulator starts only when a provider points at it ---------------------


@pytest.mark.parametrize(
    ("anthropic_url", "openai_url", "wanted"),
    [
        ("http://127.0.0.1:8090", "http://127.0.0.1:8090", True),  # the defaults
        ("https://api.anthropic.com", "http://127.0.0.1:8090/", True),
        ("https://api.anthropic.com", "https://api.openai.com", False),
        ("http://127.0.0.1:9999", "http://localhost:8091", False),
    ],
)
def test_serve_starts_the_emulator_only_for_a_provider_pointing_at_it(
    anthropic_url: str, openai_url: str, wanted: bool
) -> None:
    settings = Settings(
        providers={"anthropic": {"base_url": anthropic_url}, "openai": {"base_url": openai_url}}
    )
    assert emulator_wanted(settings) is wanted
    off = Settings(server={"start_emulator": False})
    assert not emulator_wanted(off)
