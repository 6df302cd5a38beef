"""Admission with the in-memory ledger: keys, pass-through, refusals as the caller sees them."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr
from redis.exceptions import ConnectionError as RedisConnectionError

from gateway.access import Gate, credential_of
from gateway.errors import (
    AuthenticationFailed,
    GatewayError,
    PermissionDenied,
    RateLimited,
    SpendLimitReached,
    render_anthropic,
)
from gateway.metering.metrics import Metrics
from gateway.settings import StateSettings, TeamBudgetSettings
from gateway.state.health import StateHealth, StoreUnreachable
from gateway.state.keys import GatewayKey, MemoryKeyStore, digest, new_secret
from gateway.state.ledger import MemoryLedger, window_wait
from gateway.wire.headers import with_credential


def gate_with(tmp_path: Path, *keys: GatewayKey, **settings: Any) -> Gate:
    store = MemoryKeyStore(tmp_path / "keys.json")
    for key in keys:
        asyncio.run(store.create(key))
    state = StateSettings(redis_url=None, **settings)
    ledger = MemoryLedger(store, {})
    provider = {"anthropic": SecretStr("sk-ant-held")}
    return Gate(ledger, state, provider, Metrics(CollectorRegistry()))


def a_key(**limits: Any) -> tuple[str, GatewayKey]:
    secret = new_secret()
    return secret, GatewayKey(name="agent", digest=digest(secret), **limits)


def admit(gate: Gate, secret: str, model: str = "m", step: str | None = None) -> Any:
    """As the relay asks: authenticate, authorize the model, admit."""
    headers = [(b"x-api-key", secret.encode())]

    async def ask() -> Any:
        caller = await gate.authenticate(headers, step)
        if caller is not None:
            gate.authorize(caller, model, ())
        return await gate.admit(caller, "anthropic", [model])

    return asyncio.run(ask())


def test_provider_keys_pass_through_unless_a_gateway_key_is_required(tmp_path: Path) -> None:
    assert admit(gate_with(tmp_path), "sk-ant-own") is None
    with pytest.raises(AuthenticationFailed):
        admit(gate_with(tmp_path, require_gateway_key=True), "sk-ant-own")


def test_a_gateway_key_goes_out_as_the_provider_key(tmp_path: Path) -> None:
    secret, key = a_key()
    gate = gate_with(tmp_path, key)
    admitted = admit(gate, secret)
    assert admitted.key == key
    assert admitted.credential == b"sk-ant-held"
    assert "sk-ant-held" not in repr(admitted)
    with pytest.raises(AuthenticationFailed):
        admit(gate, new_secret())


def test_the_keys_file_holds_digests_only(tmp_path: Path) -> None:
    secret, key = a_key(models=("claude-*",), daily_budget_usd=2.5)
    gate_with(tmp_path, key)
    stored = (tmp_path / "keys.json").read_text()
    assert secret not in stored
    assert MemoryKeyStore(tmp_path / "keys.json").get(key.digest) == key


def test_models_and_steps_a_key_allows(tmp_path: Path) -> None:
    secret, key = a_key(models=("claude-haiku-*",), steps=("routing",))
    gate = gate_with(tmp_path, key)
    assert admit(gate, secret, "claude-haiku-5-5", "routing") is not None
    with pytest.raises(PermissionDenied):
        admit(gate, secret, "claude-opus-5", "routing")
    with pytest.raises(PermissionDenied):
        admit(gate, secret, "claude-haiku-5-5", "synthesis")


def test_refusals_render_as_the_api_renders_them(tmp_path: Path) -> None:
    secret, key = a_key(daily_budget_usd=0.001, rpm=1)
    gate = gate_with(tmp_path, key, first_call_reserve_usd=0.001)
    admit(gate, secret)  # reserves 0.001: the whole budget
    with pytest.raises(SpendLimitReached) as spent:
        admit(gate, secret)
    body = orjson.loads(render_anthropic(spent.value, "req_1"))
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["details"] == {"error_code": "enforced_spend_limit_reached"}
    assert (b"retry-after", b"60") not in spent.value.headers
    assert (b"x-should-retry", b"false") in spent.value.headers
    secret, key = a_key(rpm=1)
    gate = gate_with(tmp_path / "other", key)
    admit(gate, secret)
    with pytest.raises(RateLimited) as limited:
        admit(gate, secret)
    assert dict(limited.value.headers)[b"retry-after"].isdigit()
    assert "details" not in orjson.loads(render_anthropic(limited.value, "req_2"))["error"]


def test_credentials_are_swapped_in_the_header_the_client_used() -> None:
    assert credential_of([(b"authorization", b"Bearer tg-abc")]) == b"tg-abc"
    assert with_credential([(b"x-api-key", b"tg-1"), (b"a", b"b")], b"sk") == [
        (b"x-api-key", b"sk"),
        (b"a", b"b"),
    ]
    assert with_credential([(b"authorization", b"Bearer tg-1")], b"sk") == [
        (b"authorization", b"Bearer sk")
    ]
    assert with_credential([], b"sk") == [(b"x-api-key", b"sk")]


@pytest.mark.parametrize(
    ("previous", "current", "elapsed", "room", "wait"),
    [
        (0, 2, 0.5, 2, 0.0),  # room now
        (4, 0, 0.25, 2, 0.25),  # the previous minute's share falls to 2 at 0.5
        (0, 3, 0.5, 2, 0.5 + 1 / 3),  # into the next minute, where 3 becomes the previous
        (0, 3, 0.0, 0, 2.0),  # no room at all: both windows must pass
    ],
)
def test_window_wait(
    previous: float, current: float, elapsed: float, room: float, wait: float
) -> None:
    assert window_wait(previous, current, elapsed, room) == pytest.approx(wait)


def test_an_outage_is_logged_once_per_interval_and_fails_fast(
    caplog: pytest.LogCaptureFixture,
) -> None:
    errors = Counter("errors", "", ["operation"], registry=CollectorRegistry())
    health = StateHealth(errors, timeout_s=0.05, log_interval_s=3600)

    async def down() -> None:
        raise RedisConnectionError("refused")

    async def up() -> str:
        return "pong"

    async def work() -> None:
        for _ in range(5):
            with pytest.raises(StoreUnreachable):
                await health.run("admit", down)
        assert health.degraded

    with caplog.at_level(logging.WARNING, logger="gateway.state"):
        asyncio.run(work())
        assert len(caplog.records) == 1
        assert "unreachable" in caplog.records[0].getMessage()
        health._probe_at = 0  # the probe interval has passed
        assert asyncio.run(health.run("ping", up)) == "pong"
    assert not health.degraded
    assert "reachable again" in caplog.records[-1].getMessage()
    assert errors.labels("admit")._value.get() == 5


def test_gateway_errors_carry_no_headers_by_default() -> None:
    assert GatewayError("x").headers == ()


def test_budget_ratios_by_key_and_team_and_free_calls_leave_them(tmp_path: Path) -> None:
    secret, key = a_key(daily_budget_usd=0.04, team="search")
    gate = gate_with(tmp_path, key, teams={"search": TeamBudgetSettings(daily_budget_usd=0.08)})
    gate.ledger.teams = gate.teams  # type: ignore[attr-defined]  # the ledger built without them
    admit(gate, secret)  # reserves 0.01
    admit(gate, secret)  # sees 0.01 spent or reserved
    free = gate.free_calls()
    headers = [(b"x-api-key", secret.encode())]
    asyncio.run(free.admit(asyncio.run(free.authenticate(headers, None)), "anthropic"))
    ratio = gate.metrics.budget_used_ratio
    assert ratio.labels("agent", "daily")._value.get() == pytest.approx(0.25)
    assert ratio.labels("team:search", "daily")._value.get() == pytest.approx(0.125)
