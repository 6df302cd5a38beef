"""A naive client loop gets cache reads through the gateway where direct it gets none.

One test per anti-pattern, each with the official SDK against the emulator: the same
calls go once straight to the emulator and once through the gateway.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from typing import Any

import anthropic
import pytest

from tests.integration.conftest import ClientFactory
from tests.integration.servers import gateway, metric

MODEL = "claude-sonnet-4-6"
POLICY = "Refunds within 30 days. Escalate fraud to a human. Never share card numbers.\n" * 70
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def no_cache_control(turn: int) -> dict[str, Any]:
    return {"system": POLICY}


def timestamp_in_system(turn: int) -> dict[str, Any]:
    """The time as a client's clock gives it (the gateway moves a stamp near its own)."""
    now = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=turn)
    return {"system": f"Current time: {now:%Y-%m-%dT%H:%M:%SZ}\n{POLICY}"}


def whitespace_drift(turn: int) -> dict[str, Any]:
    text = POLICY.replace("\n", " " * turn + "\n")  # each build pads lines differently
    return {"system": [{"type": "text", "text": text, "cache_control": {"type": "ephemeral"}}]}


def unstable_tool_json(turn: int) -> dict[str, Any]:
    tool: dict[str, Any] = dict(reversed(list(WEATHER.items()))) if turn % 2 else dict(WEATHER)
    return {"system": POLICY, "tools": [{**tool, "cache_control": {"type": "ephemeral"}}]}


@pytest.mark.parametrize(
    ("pattern", "expected_rule"),
    [
        (no_cache_control, "cache_breakpoints"),
        (timestamp_in_system, "volatile_moved"),
        (whitespace_drift, "whitespace"),
        (unstable_tool_json, "tool_json"),
    ],
)
def test_naive_loop_reads_cache_only_through_the_gateway(
    make_client: ClientFactory,
    emulator_url: str,
    gateway_url: str,
    api_key: str,
    pattern: Callable[[int], dict[str, Any]],
    expected_rule: str,
) -> None:
    def loop(base_url: str, key: str) -> tuple[int, set[str]]:
        client = make_client(base_url, key)
        read, rules = 0, set()
        for turn in range(1, 4):
            raw = client.messages.with_raw_response.create(
                model=MODEL,
                max_tokens=10,
                messages=[{"role": "user", "content": "Can I get a refund?"}],
                **pattern(turn),
            )
            read += raw.parse().usage.cache_read_input_tokens or 0
            rules |= set(filter(None, raw.headers.get("x-gateway-rewrites", "").split(",")))
        return read, rules

    direct_read, _ = loop(emulator_url, api_key + "-direct")
    gateway_read, rules = loop(gateway_url, api_key)
    assert direct_read == 0
    assert gateway_read > 2 * 1024  # two of three calls read the policy prefix
    assert expected_rule in rules


def test_miss_causes_reach_the_metrics(
    make_client: ClientFactory, gateway_url: str, api_key: str
) -> None:
    client = make_client(gateway_url, api_key)
    question = [{"role": "user", "content": f"Where is my order? ({api_key})"}]

    def call(system: str, model: str = MODEL) -> None:
        client.messages.create(
            model=model,
            max_tokens=5,
            system=system,
            messages=question,  # type: ignore[arg-type]
            extra_headers={"x-gateway-step": "planning"},
        )

    before = {
        cause: metric(gateway_url, "gateway_cache_miss_cause_total", cause=cause, step="planning")
        for cause in ("cold", "system_changed", "model_changed")
    }
    # A family of its own (first line): lines that vary across a family's requests would
    # otherwise be learned as per-user content and moved, and the system not "changed".
    desk = f"You are the order desk {api_key}.\n{POLICY}"
    call(desk)
    call(desk + "A new rule.")
    call(desk + "A new rule.", model="claude-opus-4-8")
    for cause in before:
        after = metric(gateway_url, "gateway_cache_miss_cause_total", cause=cause, step="planning")
        assert after == before[cause] + 1, cause
    missed = metric(gateway_url, "gateway_cache_missed_tokens_total", cause="system_changed")
    assert missed > 1024


def test_parallel_calls_on_a_cold_prefix_write_it_once(
    api_key: str, quiet_realistic_emulator_url: str
) -> None:
    async def fan_out(url: str, step: str) -> list[Any]:
        async with anthropic.AsyncAnthropic(base_url=url, api_key=api_key + step) as client:
            calls = [
                client.messages.create(
                    model=MODEL,
                    max_tokens=5,
                    system=POLICY + step,
                    messages=[{"role": "user", "content": f"Sub-question {i}"}],
                    extra_headers={"x-gateway-step": step},
                )
                for i in range(5)
            ]
            return [message.usage for message in await asyncio.gather(*calls)]

    env = {"GATEWAY_REWRITE__COALESCE_STEPS": '["search"]'}
    with gateway(quiet_realistic_emulator_url, env=env) as url:
        coalesced = asyncio.run(fan_out(url, "search"))
        uncoalesced = asyncio.run(fan_out(url, "fetch"))
        waited = metric(url, "gateway_coalesced_total", step="search")

    def prefix_writes(usages: list[Any]) -> int:  # each call also writes its own short tail
        return sum(1 for usage in usages if usage.cache_creation_input_tokens > 1024)

    assert prefix_writes(coalesced) == 1
    assert sum(1 for usage in coalesced if usage.cache_read_input_tokens) == 4
    assert waited == 4
    assert prefix_writes(uncoalesced) == 5


def test_the_providers_own_diagnosis_names_the_cause(api_key: str, emulator_url: str) -> None:
    """With provider_diagnostics on, the gateway asks the emulator and takes its word."""
    env = {"GATEWAY_REWRITE__PROVIDER_DIAGNOSTICS": "true"}
    question = [{"role": "user", "content": "Where is my parcel?"}]
    with gateway(emulator_url, env=env) as url:
        client = anthropic.Anthropic(base_url=url, api_key=api_key, max_retries=0)
        with client:
            client.messages.create(model=MODEL, max_tokens=5, system=POLICY, messages=question)  # type: ignore[arg-type]
            raw = client.messages.with_raw_response.create(
                model=MODEL,
                max_tokens=5,
                system=POLICY + "Changed.",
                messages=question,  # type: ignore[arg-type]
            )
        assert "cache_diagnostics" in raw.headers["x-gateway-rewrites"]
        diagnosis = raw.parse().diagnostics
        assert diagnosis is not None
        assert diagnosis.cache_miss_reason is not None
        assert diagnosis.cache_miss_reason.type == "system_changed"
        assert metric(url, "gateway_cache_miss_cause_total", cause="system_changed") == 1


def test_a_call_the_provider_refuses_teaches_the_gateway_nothing(
    make_client: ClientFactory, gateway_url: str, api_key: str
) -> None:
    """What a stage learns (here a tool's first-seen form) is kept only once the
    provider has accepted the call, so refused calls pin nothing and poison nothing."""
    client = make_client(gateway_url, api_key)
    first: Any = dict(WEATHER)
    reordered: Any = dict(reversed(list(WEATHER.items())))
    question: Any = [{"role": "user", "content": "Weather?"}]
    with pytest.raises(anthropic.BadRequestError):  # refused: max_tokens is out of range
        client.messages.create(model=MODEL, max_tokens=-1, messages=question, tools=[first])
    raw = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=5, messages=question, tools=[reordered]
    )
    assert "tool_json" not in raw.headers.get("x-gateway-rewrites", "")  # its own first form
    again = client.messages.with_raw_response.create(
        model=MODEL, max_tokens=5, messages=question, tools=[first]
    )
    assert "tool_json" in again.headers["x-gateway-rewrites"]  # the accepted form is kept
