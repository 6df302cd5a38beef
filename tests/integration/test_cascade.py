"""The cascade through a real gateway and emulator, called with the official SDK: routing,
pinning, retries, fallbacks, hedging, canaries and shadows, driven by the emulator's faults."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from bench.harness import free_port
from tests.integration.conftest import ClientFactory
from tests.integration.servers import gateway, metric

SMALL = "claude-haiku-5-5"  # the default small tier
LARGE = "claude-sonnet-5-5"  # the default large tier
FALLBACK = "claude-sonnet-4-6"
QUESTION: Any = [{"role": "user", "content": "hi"}]
STEPS = {
    "routing": {"tier": "small"},
    "synthesis": {"tier": "large", "fallbacks": [FALLBACK]},
    "fast_answer": {
        "tier": "large",
        "ttft_ms": 300,
        "hedge": True,
        "fallbacks": [FALLBACK],
    },
    "review": {"tier": "large", "canary": {"model": FALLBACK, "percent": 50}},
    "classification": {"tier": "small", "shadow": {"model": FALLBACK, "sample": 1.0}},
    "budgeted": {"total_ms": 1},
}


@pytest.fixture(scope="module")
def shadow_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("shadow") / "pairs.jsonl"


@pytest.fixture(scope="module")
def cascade_url(emulator_url: str, shadow_log: Path) -> Iterator[str]:
    env = {
        "GATEWAY_ROUTING__STEPS": json.dumps(STEPS),
        "GATEWAY_ROUTING__SHADOW_LOG": str(shadow_log),
        # Short backoff: the tests count attempts, not seconds.
        "GATEWAY_ROUTING__RETRIES__BASE_DELAY_S": "0.05",
    }
    with gateway(emulator_url, env=env) as url:
        yield url


def fault(kind: str, **params: object) -> dict[str, str]:
    """A fault header; `count` faults are given an id of their own, so tests never share one."""
    if "count" in params:
        params.setdefault("id", uuid.uuid4().hex)
    value = ";".join([kind, *(f"{name}={value}" for name, value in params.items())])
    return {"x-emulator-fault": value}


def create(
    client: anthropic.Anthropic, step: str | None, model: str = FALLBACK, **headers: str
) -> Any:
    extra = {"x-gateway-step": step} if step else {}
    return client.messages.with_raw_response.create(
        model=model,
        max_tokens=20,
        messages=QUESTION,
        extra_headers={**extra, **headers},
    )


# --- routing and pinning --------------------------------------------------------------


def test_a_step_with_a_tier_replaces_the_model(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    raw = create(make_client(cascade_url, api_key), "routing", model="claude-opus-4-6")
    assert raw.headers["x-gateway-model"] == SMALL
    assert raw.parse().model == SMALL
    assert "route" in raw.headers["x-gateway-rewrites"].split(",")


def test_route_off_keeps_the_clients_model_but_still_pins_it(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    client = make_client(cascade_url, api_key)
    raw = create(client, "routing", model="claude-haiku-4-5", **{"x-gateway-route": "off"})
    assert raw.headers["x-gateway-model"] == "claude-haiku-4-5-20251001"
    assert raw.headers["x-gateway-rewrites"].split(",")[0] == "pin"


def test_a_model_can_name_a_tier(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    client = make_client(cascade_url, api_key)
    assert create(client, None, model="tier:large").headers["x-gateway-model"] == LARGE
    with pytest.raises(anthropic.BadRequestError, match="known tiers: tier:small, tier:large"):
        create(client, None, model="tier:huge")


def test_an_unlabelled_call_keeps_its_model(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    raw = create(make_client(cascade_url, api_key), None, model="claude-opus-4-6")
    assert raw.headers["x-gateway-model"] == "claude-opus-4-6"
    assert "route" not in raw.headers.get("x-gateway-rewrites", "")


def test_reject_policy_names_the_snapshot_to_use(
    make_client: ClientFactory, emulator_url: str, api_key: str
) -> None:
    with gateway(emulator_url, env={"GATEWAY_ROUTING__PIN_POLICY": "reject"}) as url:
        client = make_client(url, api_key)
        with pytest.raises(anthropic.BadRequestError, match="claude-haiku-4-5-20251001") as raised:
            create(client, None, model="claude-haiku-4-5")
        assert raised.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
        assert create(client, None, model="claude-haiku-4-5-20251001").parse().content


# --- retries and fallbacks ------------------------------------------------------------


def test_a_529_then_success_is_retried_transparently(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    before = metric(cascade_url, "gateway_retries_total", provider="anthropic")
    raw = create(make_client(cascade_url, api_key), None, **fault("529", count=1))
    assert raw.status_code == 200
    assert raw.headers["x-gateway-model"] == FALLBACK
    assert metric(cascade_url, "gateway_retries_total", provider="anthropic") == before + 1


def test_a_429_waits_as_long_as_retry_after_says(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    began = time.monotonic()
    raw = create(make_client(cascade_url, api_key), None, **fault("429", count=1, after=1))
    assert raw.status_code == 200
    assert time.monotonic() - began >= 1.0


def test_a_json_body_cut_midway_is_retried_before_the_client_has_a_byte(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    # Found by bench/soak.py: a cut JSON body reached the client as a 502, while nothing of
    # it had been sent, so the gateway could still retry it.
    before = metric(cascade_url, "gateway_upstream_errors_total", status="cut")
    client = make_client(cascade_url, api_key, max_retries=0)  # the SDK would hide a 502
    raw = create(client, None, **fault("cut", count=1))
    assert raw.status_code == 200
    assert raw.parse().usage.output_tokens > 0
    assert metric(cascade_url, "gateway_upstream_errors_total", status="cut") == before + 1


def test_a_persistent_529_falls_back_to_the_next_model(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    before = metric(cascade_url, "gateway_retries_total", provider="anthropic")
    raw = create(make_client(cascade_url, api_key), "synthesis", **fault("529", model=LARGE))
    assert raw.status_code == 200
    assert raw.headers["x-gateway-model"] == FALLBACK  # which model served it
    assert raw.parse().model == FALLBACK
    # Three attempts on the step's model, then the fallback: three requests more than one.
    assert metric(cascade_url, "gateway_retries_total", provider="anthropic") == before + 3


def test_when_every_attempt_fails_the_sdk_is_told_not_to_retry(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    before = metric(cascade_url, "gateway_requests_total", status="529")
    client = make_client(cascade_url, api_key, max_retries=2)
    with pytest.raises(anthropic.APIStatusError) as raised:
        create(client, None, **fault("529"))
    assert raised.value.status_code == 529
    assert raised.value.response.headers["x-should-retry"] == "false"
    # One client request reached the gateway: the SDK did not multiply the gateway's attempts.
    assert metric(cascade_url, "gateway_requests_total", status="529") == before + 1


def test_a_400_is_not_retried(make_client: ClientFactory, cascade_url: str, api_key: str) -> None:
    before = metric(cascade_url, "gateway_retries_total", provider="anthropic")
    with pytest.raises(anthropic.BadRequestError) as raised:
        create(make_client(cascade_url, api_key), "synthesis", **fault("400"))
    assert "x-should-retry" not in raised.value.response.headers
    assert metric(cascade_url, "gateway_retries_total", provider="anthropic") == before


def test_a_failure_after_the_first_byte_ends_the_stream_and_is_not_retried(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    before = metric(cascade_url, "gateway_retries_total", provider="anthropic")
    text: list[str] = []
    with (
        pytest.raises(anthropic.APIStatusError, match="mid-stream"),
        make_client(cascade_url, api_key).messages.stream(
            model=FALLBACK, max_tokens=60, messages=QUESTION, extra_headers=fault("cut")
        ) as stream,
    ):
        text.extend(stream.text_stream)
    assert text  # the client had tokens before the cut
    assert metric(cascade_url, "gateway_retries_total", provider="anthropic") == before


# --- hedging --------------------------------------------------------------------------


def test_a_hedge_wins_when_the_first_token_is_slow(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    before = metric(cascade_url, "gateway_hedged_calls_total", step="other", winner="hedge")
    with make_client(cascade_url, api_key).messages.stream(
        model=LARGE,
        max_tokens=20,
        messages=QUESTION,
        extra_headers={"x-gateway-step": "fast_answer", **fault("slow", ms=3000, model=LARGE)},
    ) as stream:
        message = stream.get_final_message()
    assert message.model == FALLBACK  # the hedge answered, not the primary slowed by 3 s
    # fast_answer is not a bounded step label: it is counted as "other".
    after = metric(cascade_url, "gateway_hedged_calls_total", step="other", winner="hedge")
    assert after == before + 1


def test_no_hedge_when_the_first_token_is_in_time(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    with make_client(cascade_url, api_key).messages.stream(
        model=LARGE,
        max_tokens=20,
        messages=QUESTION,
        extra_headers={"x-gateway-step": "fast_answer"},
    ) as stream:
        assert stream.get_final_message().model == LARGE


# --- canary and shadow ----------------------------------------------------------------


def test_a_canary_conversation_never_changes_model(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    client = make_client(cascade_url, api_key)
    served: dict[int, set[str]] = {}
    for conversation in range(16):
        messages: Any = [{"role": "user", "content": f"Conversation {conversation}: hello"}]
        for turn in range(4):
            raw = client.messages.with_raw_response.create(
                model=LARGE,
                max_tokens=10,
                messages=messages,
                extra_headers={"x-gateway-step": "review"},
            )
            served.setdefault(conversation, set()).add(raw.headers["x-gateway-model"])
            reply = raw.parse().content[0]
            assert reply.type == "text"
            messages += [
                {"role": "assistant", "content": reply.text},
                {"role": "user", "content": f"Turn {turn + 1}"},
            ]
    assert all(len(models) == 1 for models in served.values()), served
    assert {model for models in served.values() for model in models} == {LARGE, FALLBACK}


def test_a_shadow_writes_its_pair_without_slowing_the_client(
    make_client: ClientFactory, cascade_url: str, api_key: str, shadow_log: Path
) -> None:
    marker = uuid.uuid4().hex
    began = time.monotonic()
    # The shadow model answers after 2 s; the client must not wait for it.
    raw = make_client(cascade_url, api_key).messages.with_raw_response.create(
        model=LARGE,
        max_tokens=20,
        messages=[{"role": "user", "content": f"classify {marker}"}],
        extra_headers={
            "x-gateway-step": "classification",
            **fault("slow", ms=2000, model=FALLBACK),
        },
    )
    assert time.monotonic() - began < 1.5
    assert raw.headers["x-gateway-model"] == SMALL
    request_id = raw.headers["x-gateway-request-id"]
    deadline = time.monotonic() + 10
    pair = None
    while pair is None:
        assert time.monotonic() < deadline, "no shadow pair was written"
        time.sleep(0.1)
        lines = shadow_log.read_bytes().splitlines() if shadow_log.exists() else []
        pair = next((p for p in map(orjson.loads, lines) if p["request_id"] == request_id), None)
    assert pair["step"] == "classification"
    assert pair["primary"]["model"] == SMALL
    assert pair["shadow"]["model"] == FALLBACK
    assert pair["primary"]["text"]
    assert pair["shadow"]["text"]
    assert pair["shadow"]["latency_ms"] >= 2000
    assert pair["shadow"]["usage"]["input"] > 0
    assert pair["shadow"]["cost_usd"] > 0
    assert metric(cascade_url, "gateway_shadow_cost_usd_total", model=FALLBACK) > 0


# --- budgets --------------------------------------------------------------------------


def test_a_latency_budget_breach_is_counted(
    make_client: ClientFactory, cascade_url: str, api_key: str
) -> None:
    labels = {"step": "other", "phase": "total"}
    before = metric(cascade_url, "gateway_latency_budget_breaches_total", **labels)
    create(make_client(cascade_url, api_key), "budgeted")
    assert metric(cascade_url, "gateway_latency_budget_breaches_total", **labels) == before + 1


def test_an_unreachable_provider_is_retried_then_a_502_says_not_to_retry(
    make_client: ClientFactory, api_key: str
) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with gateway(nowhere, env={"GATEWAY_ROUTING__RETRIES__BASE_DELAY_S": "0.01"}) as url:
        with pytest.raises(anthropic.APIStatusError) as raised:
            create(make_client(url, api_key, max_retries=2), None)
        assert raised.value.status_code == 502
        assert raised.value.response.headers["x-should-retry"] == "false"
        assert metric(url, "gateway_retries_total", provider="anthropic") == 2
        assert metric(url, "gateway_requests_total", status="502") == 1


# --- lifecycle ------------------------------------------------------------------------


@pytest.mark.parametrize("refresh", [False, True])
def test_retirement_dates_are_refreshed_from_the_providers_models_list(
    make_client: ClientFactory, emulator_url: str, api_key: str, refresh: bool
) -> None:
    """The gateway's catalog says claude-opus-5 retired in 2020; the provider's list (the
    emulator's) says nothing of the kind. With a key of its own the gateway asks, and
    believes the provider."""
    env = {
        "GATEWAY_MODELS": json.dumps([{"id": "claude-opus-5", "retires_at": "2020-01-01"}]),
        "GATEWAY_PROVIDERS__ANTHROPIC__API_KEY": "sk-ant-gateway-own-key",
        "GATEWAY_ROUTING__REFRESH_LIFECYCLE": str(refresh).lower(),
    }
    with gateway(emulator_url, env=env) as url:
        time.sleep(0.5)  # the refresh runs beside startup
        create(make_client(url, api_key), None, model="claude-opus-5")
        days = metric(url, "gateway_model_retirement_days", model="claude-opus-5")
        retired = (
            'gateway_model_retirement_days{model="claude-opus-5"}'
            in httpx.get(url + "/metrics").text
        )
    assert retired is not refresh
    if retired:
        assert days < -2000  # 2020-01-01 is years ago
