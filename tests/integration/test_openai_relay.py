"""The official openai SDK through `gateway serve` → `gateway emulate`: chat and responses."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.integration.openai_tools import TOOLS
from tests.integration.servers import gateway, metric

MODEL = "gpt-4.1"
NEW_MODEL = "gpt-5.6-terra"
NOW = 1_795_000_000.0
# Chat and response ids, and the gateway's own request ids, differ per call: all else must not.
IDS = re.compile(rb'"(chatcmpl-|resp_|msg_|fc_|call_)[A-Za-z0-9_]+')
POLICIES = "## Policies\n" + "Answer politely and cite the policy you apply. " * 200
# Statuses as the SDK raises them; the gateway retries 429 and 5xx before relaying them.
OPENAI_EXCEPTIONS: list[tuple[str, int, type[openai.APIStatusError]]] = [
    ("400", 400, openai.BadRequestError),
    ("401", 401, openai.AuthenticationError),
    ("403", 403, openai.PermissionDeniedError),
    ("404", 404, openai.NotFoundError),
    ("409", 409, openai.ConflictError),
    ("429", 429, openai.RateLimitError),
    ("500", 500, openai.InternalServerError),
    ("529", 503, openai.InternalServerError),  # OpenAI has no 529: overloaded is a 503
]


@pytest.fixture(scope="module")
def openai_gateway(emulator_url: str) -> Iterator[str]:
    """A gateway that retries quickly, with a small body limit."""
    env = {
        "GATEWAY_SERVER__MAX_BODY_BYTES": "200000",
        "GATEWAY_ROUTING__RETRIES__BASE_DELAY_S": "0.01",
        "GATEWAY_ROUTING__RETRIES__MAX_DELAY_S": "0.05",
    }
    with gateway(emulator_url, env=env) as url:
        yield url


@pytest.fixture
def key() -> str:
    return f"sk-openai-test-{uuid.uuid4().hex}"


@pytest.fixture
def client(openai_gateway: str, key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=openai_gateway + "/v1", api_key=key, max_retries=0) as sdk:
        yield sdk


@pytest.fixture
def direct(emulator_url: str, key: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=emulator_url + "/v1", api_key=key + "-direct", max_retries=0
    ) as sdk:
        yield sdk


def _raw_stream(url: str, key: str, body: dict[str, Any]) -> bytes:
    headers = {"authorization": f"Bearer {key}", "x-emulator-now": str(NOW)}
    with httpx.stream("POST", url, json=body, headers=headers) as response:
        assert response.status_code == 200
        return b"".join(response.iter_raw())


def test_chat_create_matches_direct(client: openai.OpenAI, direct: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "REPLY: through the gateway"}],
    }
    relayed = client.chat.completions.with_raw_response.create(**kwargs)
    completion, expected = relayed.parse(), direct.chat.completions.create(**kwargs)
    assert completion.choices[0].message == expected.choices[0].message
    assert completion.usage == expected.usage
    assert completion.model == "gpt-4.1-2025-04-14"
    assert completion._request_id is not None
    assert completion._request_id.startswith("req_")
    assert relayed.headers["x-ratelimit-limit-requests"] == "10000"  # upstream's, visible
    assert relayed.headers["x-ratelimit-remaining-tokens"]
    assert relayed.headers["x-gateway-request-id"].startswith("gw_")
    assert relayed.headers["x-gateway-model"] == "gpt-4.1-2025-04-14"
    assert "pin" in relayed.headers["x-gateway-rewrites"].split(",")
    assert float(relayed.headers["x-gateway-cost-usd"]) > 0


@pytest.mark.parametrize("include_usage", [False, True])
def test_chat_stream_is_the_direct_stream(
    emulator_url: str, openai_gateway: str, key: str, include_usage: bool
) -> None:
    """Byte for byte but the ids: the usage chunk the gateway asked for never shows."""
    body: dict[str, Any] = {
        "model": "gpt-4.1-2025-04-14",  # pinned already: the body differs only as the gateway must
        "messages": [{"role": "user", "content": "REPLY: one two three four"}],
        "stream": True,
    }
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    expected = _raw_stream(emulator_url + "/v1/chat/completions", key + "-direct", body)
    before = metric(openai_gateway, "gateway_tokens_total", provider="openai", type="output")
    relayed = _raw_stream(openai_gateway + "/v1/chat/completions", key, body)
    assert IDS.sub(b"ID", relayed) == IDS.sub(b"ID", expected)
    assert (b'"usage":{' in relayed) is include_usage
    assert (b'"usage":null' in relayed) is include_usage
    # Metered either way: the gateway read the usage chunk it asked for.
    after = metric(openai_gateway, "gateway_tokens_total", provider="openai", type="output")
    assert after > before


def test_chat_stream_through_the_sdk(client: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "messages": [{"role": "user", "content": "REPLY: streamed here"}],
        "stream": True,
    }
    plain = list(client.chat.completions.create(**kwargs))
    assert all(chunk.usage is None for chunk in plain)
    assert "".join(c.choices[0].delta.content or "" for c in plain) == "streamed here"
    counted = list(client.chat.completions.create(**kwargs, stream_options={"include_usage": True}))
    assert len(counted) == len(plain) + 1
    assert counted[-1].usage is not None
    assert counted[-1].usage.completion_tokens > 0


def test_responses_create_and_stream(client: openai.OpenAI) -> None:
    raw = client.responses.with_raw_response.create(model=NEW_MODEL, input="REPLY: from responses")
    response = raw.parse()
    assert response.output_text == "from responses"
    assert response.usage is not None
    assert response.usage.output_tokens > 0
    assert raw.headers["x-gateway-model"] == NEW_MODEL
    assert float(raw.headers["x-gateway-cost-usd"]) > 0
    with client.responses.stream(model=NEW_MODEL, input="REPLY: streamed words") as stream:
        text = "".join(e.delta for e in stream if e.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text == "streamed words"


def test_responses_stream_is_the_direct_stream(
    emulator_url: str, openai_gateway: str, key: str
) -> None:
    body = {"model": NEW_MODEL, "input": "REPLY: same bytes", "stream": True}
    expected = _raw_stream(emulator_url + "/v1/responses", key + "-direct", body)
    relayed = _raw_stream(openai_gateway + "/v1/responses", key, body)
    # The gateway added a prompt_cache_key, which the response echoes: the client, which
    # sent none, gets the stream it gets direct.
    assert b"tollgate-" not in relayed
    assert IDS.sub(b"ID", relayed) == IDS.sub(b"ID", expected)


@pytest.mark.parametrize("sent", [None, "my-key"])
def test_a_responses_json_echoes_only_the_clients_own_prompt_cache_key(
    openai_gateway: str, key: str, sent: str | None
) -> None:
    """Before the fix, the key the gateway injected came back to a client that never sent one."""
    body: dict[str, Any] = {"model": NEW_MODEL, "input": "REPLY: json"}
    if sent is not None:
        body["prompt_cache_key"] = sent
    response = httpx.post(
        openai_gateway + "/v1/responses", json=body, headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    assert response.json()["prompt_cache_key"] == sent
    assert response.headers["content-length"] == str(len(response.content))
    if sent is None:
        assert "prompt_cache_key" in response.headers["x-gateway-rewrites"]


def test_tool_calls(client: openai.OpenAI) -> None:
    kwargs: dict[str, Any] = {
        "model": MODEL,
        "tools": TOOLS,
        "messages": [{"role": "user", "content": "USE_TOOL: get_weather"}],
    }
    call = client.chat.completions.create(**kwargs).choices[0].message.tool_calls
    assert call
    assert call[0].function.name == "get_weather"
    with client.chat.completions.stream(**kwargs) as stream:
        final = stream.get_final_completion()
    streamed = final.choices[0].message.tool_calls
    assert streamed
    assert streamed[0].function.arguments == call[0].function.arguments
    flat: Any = [{"type": "function", **TOOLS[0]["function"]}]
    response = client.responses.create(model=NEW_MODEL, input="USE_TOOL: get_weather", tools=flat)
    assert response.output[0].type == "function_call"


@pytest.mark.parametrize(("fault", "status", "exception"), OPENAI_EXCEPTIONS)
def test_every_error_status_is_the_sdks_exception(
    client: openai.OpenAI, fault: str, status: int, exception: type[openai.APIStatusError]
) -> None:
    raw = client.with_options(max_retries=2).chat.completions.with_raw_response
    began = time.monotonic()
    with pytest.raises(exception) as raised:
        raw.create(
            model=MODEL,
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-emulator-fault": fault},
        )
    assert raised.value.status_code == status
    assert raised.value.request_id is not None
    assert raised.value.request_id.startswith("req_")
    body: Any = raised.value.body
    assert set(body) == {"message", "type", "param", "code"}
    retried = status in (409, 429) or status >= 500  # as the SDK would retry them
    headers = raised.value.response.headers
    # Retried by the gateway already: the SDK is told not to multiply the attempts.
    assert (headers.get("x-should-retry") == "false") is retried
    if status == 429:
        assert headers["retry-after"] == "1"
    assert time.monotonic() - began < 8


def test_a_retried_fault_is_invisible(client: openai.OpenAI, openai_gateway: str) -> None:
    before = metric(openai_gateway, "gateway_retries_total", provider="openai")
    completion = client.chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "REPLY: fine"}],
        extra_headers={"x-emulator-fault": f"500;count=1;id={uuid.uuid4().hex}"},
    )
    assert completion.choices[0].message.content == "fine"
    assert metric(openai_gateway, "gateway_retries_total", provider="openai") == before + 1


def test_gateway_errors_use_the_openai_envelope(openai_gateway: str, key: str) -> None:
    url = openai_gateway + "/v1/chat/completions"
    auth = {"authorization": f"Bearer {key}"}
    bad = httpx.post(url, content=b"{nope", headers={**auth, "content-type": "application/json"})
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert "JSON" in error["message"]
    assert bad.headers["x-request-id"] == bad.headers["x-gateway-request-id"]
    media = httpx.post(url, content=b"{}", headers={**auth, "content-type": "text/plain"})
    assert media.status_code == 415
    assert "error" in media.json()
    with (
        openai.OpenAI(base_url=openai_gateway + "/v1", api_key=key, max_retries=0) as sdk,
        pytest.raises(openai.APIStatusError) as raised,
    ):
        sdk.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": "x" * 300_000}]
        )
    assert raised.value.status_code == 413
    assert raised.value.request_id is not None
    assert raised.value.request_id.startswith("gw_")


def test_gateway_keys_refuse_in_openais_envelope(emulator_url: str, key: str) -> None:
    env = {"GATEWAY_STATE__REQUIRE_GATEWAY_KEY": "true"}
    with (
        gateway(emulator_url, env=env) as url,
        openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as sdk,
        pytest.raises(openai.AuthenticationError) as raised,
    ):
        sdk.responses.create(model=NEW_MODEL, input="hi")
    assert raised.value.body["type"] == "invalid_request_error"  # type: ignore[index]


def test_mid_stream_failures(client: openai.OpenAI, openai_gateway: str) -> None:
    with pytest.raises(openai.APIError, match="mid-stream"):
        list(
            client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "REPLY: " + "word " * 50}],
                stream=True,
                extra_headers={"x-emulator-fault": "cut"},
            )
        )
    events = list(
        client.responses.create(
            model=MODEL,
            input="REPLY: " + "word " * 50,
            stream=True,
            extra_headers={"x-emulator-fault": "cut"},
        )
    )
    assert events[-1].type == "error"
    assert "mid-stream" in events[-1].message  # type: ignore[union-attr]
    failed = list(
        client.responses.create(
            model=MODEL, input="hi", stream=True, extra_headers={"x-emulator-fault": "stream-error"}
        )
    )
    assert [e.type for e in failed[-2:]] == ["error", "response.failed"]
    assert metric(openai_gateway, "gateway_requests_total", provider="openai", status="cut") >= 2


def test_models_list_goes_to_the_clients_provider(
    client: openai.OpenAI, openai_gateway: str, key: str
) -> None:
    ids = {model.id for model in client.models.list()}
    assert "gpt-4.1" in ids
    assert not any(i.startswith("claude") for i in ids)
    claude = httpx.get(
        openai_gateway + "/v1/models",
        headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
    ).json()
    assert all(model["id"].startswith("claude") for model in claude["data"])


def _ask(sdk: openai.OpenAI, model: str, at: float, question: str) -> Any:
    # The client's clock reads the real time (the gateway takes a stamp near its own clock
    # for a "now" stamp); the emulator's cache runs on the virtual `at`.
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + at - NOW))
    system = f"You are the support assistant.\nCurrent time: {stamp}\n\n{POLICIES}"
    return sdk.chat.completions.with_raw_response.create(
        model=model,
        messages=[{"role": "system", "content": system}, {"role": "user", "content": question}],
        extra_headers={"x-emulator-now": str(at), "x-gateway-step": "chat"},
    )


@pytest.mark.parametrize("model", [MODEL, NEW_MODEL])
def test_a_family_meets_on_one_cache(
    client: openai.OpenAI, direct: openai.OpenAI, openai_gateway: str, model: str
) -> None:
    """The date moves out of the prefix and the family gets one prompt_cache_key: the
    second conversation reads the policies the first one cached; direct, nothing is read."""
    first = _ask(client, model, NOW, "REPLY: first")
    rules = first.headers["x-gateway-rewrites"].split(",")
    assert {"volatile_moved", "prompt_cache_key"} <= set(rules)
    assert first.parse().choices[0].message.content == "first"
    second = _ask(client, model, NOW + 61, "REPLY: second").parse()
    assert second.usage.prompt_tokens_details.cached_tokens > 2000
    _ask(direct, model, NOW, "REPLY: first")
    unchanged = _ask(direct, model, NOW + 61, "REPLY: second").parse()
    assert unchanged.usage.prompt_tokens_details.cached_tokens == 0
    assert metric(openai_gateway, "gateway_tokens_total", provider="openai", type="cache_read") > 0


def test_cache_retention_per_step(emulator_url: str, key: str) -> None:
    env = {
        "GATEWAY_REWRITE__OPENAI_CACHE_RETENTION": '{"*": "in_memory"}',
        "GATEWAY_REWRITE__OPENAI_CACHE_TTL": '{"synthesis": "12h"}',
    }
    with (
        gateway(emulator_url, env=env) as url,
        openai.OpenAI(base_url=url + "/v1", api_key=key, max_retries=0) as sdk,
    ):
        old = sdk.chat.completions.with_raw_response.create(
            model=MODEL, messages=[{"role": "user", "content": "hi"}]
        )
        assert "prompt_cache_retention" in old.headers["x-gateway-rewrites"]
        new = sdk.responses.with_raw_response.create(
            model=NEW_MODEL, input="hi", extra_headers={"x-gateway-step": "synthesis"}
        )
        assert "prompt_cache_options" in new.headers["x-gateway-rewrites"]
