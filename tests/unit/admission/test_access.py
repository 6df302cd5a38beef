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

from gateway.admission import Gate, credential_of
from gateway.admission.caller import provider_key
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
from gateway.state.health import StateHealth, StoreBusy, StoreSlow, StoreUnreachable
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
    """As the endpoint asks: authenticate, authorize the model, admit."""
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


# Item 1: the state store's health, judged apart from one call's slowness.


def health_with(**options: Any) -> tuple[StateHealth, Counter]:
    errors = Counter("errors", "", ["operation"], registry=CollectorRegistry())
    return StateHealth(errors, **{"timeout_s": 0.05, "log_interval_s": 3600, **options}), errors


def test_a_write_on_a_reset_connection_is_an_outage_not_a_crash() -> None:
    """redis-py writing on a connection the store reset gets uvloop's RuntimeError: the
    store is unreachable (the caller's outage policy applies), not a 500."""
    health, errors = health_with()

    async def reset() -> None:
        raise RuntimeError(
            "unable to perform operation on <TCPTransport closed=True reading=False 0x5>; "
            "the handler is closed"
        )

    async def bug() -> None:
        raise RuntimeError("something else")

    with pytest.raises(StoreUnreachable):
        asyncio.run(health.run("admit", reset))
    assert health.degraded
    assert errors.labels("admit")._value.get() == 1
    health._probe_at = 0
    with pytest.raises(RuntimeError, match="something else"):
        asyncio.run(health.run("admit", bug))


def test_the_wait_for_a_pooled_connection_is_not_the_call_deadline() -> None:
    """A pool of one connection (a lock, as redis-py's pool holds it): twenty calls of
    50 ms each take a second in all, but none takes the 0.5 s deadline once it has its
    connection (450 ms of slack for a loaded machine's scheduler)."""
    health, errors = health_with(max_connections=1, pool_wait_s=30, timeout_s=0.5)
    connection = asyncio.Lock()

    async def redis_call() -> str:
        async with connection:
            await asyncio.sleep(0.05)
        return "ok"

    async def burst() -> list[str]:
        return await asyncio.gather(*(health.run("admit", redis_call) for _ in range(20)))

    assert asyncio.run(burst()) == ["ok"] * 20
    assert errors.labels("admit")._value.get() == 0


def test_a_full_pool_past_its_wait_is_busy_not_an_outage() -> None:
    health, _ = health_with(max_connections=1, pool_wait_s=0.05)

    async def work() -> None:
        release = asyncio.Event()

        async def held() -> None:
            await release.wait()

        holder = asyncio.create_task(health.run("admit", held))
        await asyncio.sleep(0)
        with pytest.raises(StoreBusy):
            await health.run("admit", held)
        release.set()
        await holder

    health.timeout_s = 30  # the holder is not slow, it holds the connection
    asyncio.run(work())
    assert not health.degraded


def test_slow_calls_are_not_an_outage_until_none_succeeds_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health, _ = health_with(outage_after_s=0.2)

    async def slow() -> str:
        await asyncio.sleep(1)
        return "late"

    async def fast() -> str:
        return "pong"

    async def work() -> None:
        for _ in range(2):
            with pytest.raises(StoreSlow):  # the caller may try again; no fail_open
                await health.run("admit", slow)
        assert not health.degraded
        assert await health.run("admit", fast) == "pong"  # tried, not skipped
        for _ in range(20):  # 50 ms each: judged unreachable after 0.2 s of failures
            with pytest.raises(StoreUnreachable):
                await health.run("admit", slow)
            if health.degraded:
                break
        assert health.degraded

    with caplog.at_level(logging.WARNING, logger="gateway.state"):
        asyncio.run(work())
    assert ["timed out" in r.getMessage() for r in caplog.records] == [True]


def test_back_after_an_outage_that_began_during_the_call_is_never_negative(
    caplog: pytest.LogCaptureFixture,
) -> None:
    health, _ = health_with(timeout_s=5)

    async def work() -> None:
        outage = asyncio.Event()

        async def slow_success() -> str:
            await outage.wait()
            return "ok"

        async def refused() -> None:
            raise RedisConnectionError("refused")

        pending = asyncio.create_task(health.run("admit", slow_success))
        await asyncio.sleep(0.01)
        with pytest.raises(StoreUnreachable):
            await health.run("settle", refused)
        outage.set()
        assert await pending == "ok"

    with caplog.at_level(logging.WARNING, logger="gateway.state"):
        asyncio.run(work())
    back = caplog.records[-1].getMessage()
    assert "reachable again after" in back
    assert float(back.split("after ")[1].split(" s")[0]) >= 0, back


# Item 1: an answered call is charged, if not now then when the store is back.


class FlakyLedger:
    """The in-memory ledger behind a switch: off, every call is unreachable."""

    def __init__(self, ledger: MemoryLedger) -> None:
        self.ledger = ledger
        self.up = True
        self.settled: list[int] = []

    async def admit(self, key_digest: str, now: float, **options: Any) -> Any:
        if not self.up:
            raise StoreUnreachable("admit")
        return await self.ledger.admit(key_digest, now, **options)

    async def settle(
        self, key: GatewayKey, period: Any, reserved: int, cost: int, *rest: Any
    ) -> Any:
        if not self.up:
            raise StoreUnreachable("settle")
        self.settled.append(cost)
        return await self.ledger.settle(key, period, reserved, cost, *rest)

    async def spent(self, key: GatewayKey, now: float) -> Any:
        return await self.ledger.spent(key, now)


def flaky_gate(tmp_path: Path, key: GatewayKey, **settings: Any) -> tuple[Gate, FlakyLedger]:
    gate = gate_with(tmp_path, key, **settings)
    flaky = FlakyLedger(gate.ledger)  # type: ignore[arg-type]  # the memory ledger
    gate.ledger = flaky
    return gate, flaky


def test_charges_the_store_missed_are_settled_when_it_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.admission.settle.PROBE_EVERY_S", 0.01)
    secret, key = a_key(daily_budget_usd=1.0)
    gate, flaky = flaky_gate(tmp_path, key, settle_backlog_max=2)
    headers = [(b"x-api-key", secret.encode())]

    async def work() -> None:
        caller = await gate.authenticate(headers, None)
        admitted = [await gate.admit(caller, "anthropic", ["m"]) for _ in range(3)]
        flaky.up = False
        for n, one in enumerate(admitted):
            assert one is not None
            gate.settle(one, 0.001 * (n + 1), None)
        await asyncio.sleep(0.05)
        assert gate.backlog == 2  # bounded: the oldest charge was dropped, and counted
        assert gate.metrics.settle_dropped._value.get() == 1
        flaky.up = True
        for _ in range(500):  # bounded: 5 s at most
            if not gate.backlog:
                break
            await asyncio.sleep(0.01)
        assert gate.backlog == 0
        await gate.drain()

    asyncio.run(work())
    assert flaky.settled == [2_000_000, 3_000_000]


# Item 3: the last known state wins over fail_open.


def test_revoked_and_spent_keys_stay_refused_while_the_store_is_away(tmp_path: Path) -> None:
    secret, key = a_key(daily_budget_usd=0.02)
    gate, flaky = flaky_gate(tmp_path, key, first_call_reserve_usd=0.01)
    headers = [(b"x-api-key", secret.encode())]

    async def ask() -> Any:
        caller = await gate.authenticate(headers, None)
        return await gate.admit(caller, "anthropic", ["m"])

    async def work() -> None:
        assert await ask() is not None  # 0.01 of 0.02 reserved
        flaky.up = False
        assert await ask() is not None  # fail_open, counted here: 0.02 of 0.02
        with pytest.raises(SpendLimitReached):
            await ask()  # this replica's count says it is spent
        flaky.up = True
        await gate.ledger.ledger.keys.revoke(key.name)  # type: ignore[attr-defined]
        gate.ledger.ledger.keys._checked = 0  # type: ignore[attr-defined]  # re-read now
        with pytest.raises(AuthenticationFailed):
            await ask()
        flaky.up = False
        with pytest.raises(AuthenticationFailed):
            await ask()
        # Last known, not forever: a store that knows the key again (restored) is believed.
        flaky.up = True
        await gate.ledger.ledger.keys.create(key)  # type: ignore[attr-defined]
        gate.ledger.ledger.keys._checked = 0  # type: ignore[attr-defined]
        assert await ask() is not None  # the store's spend: 0.01 of 0.02

    asyncio.run(work())


def test_charges_unsettled_at_shutdown_are_kept_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gateway.admission.settle.DRAIN_S", 0.05)
    monkeypatch.setattr("gateway.admission.settle.PROBE_EVERY_S", 0.01)
    secret, key = a_key(daily_budget_usd=1.0)
    kept = tmp_path / "backlog.jsonl"
    gate, flaky = flaky_gate(tmp_path, key, settle_backlog_file=str(kept))
    headers = [(b"x-api-key", secret.encode())]

    async def first_run() -> None:
        admitted = await gate.admit(await gate.authenticate(headers, None), "anthropic", ["m"])
        assert admitted is not None
        flaky.up = False
        gate.settle(admitted, 0.004, None)
        await gate.drain()  # the store never came back

    asyncio.run(first_run())
    assert gate.metrics.settle_dropped._value.get() == 0
    assert secret not in kept.read_text()
    assert len(kept.read_bytes().splitlines()) == 1
    flaky.up = True
    next_run = gate_with(tmp_path / "next", key, settle_backlog_file=str(kept))
    next_run.ledger = flaky

    async def second_run() -> None:
        await next_run.resume()
        for _ in range(500):  # bounded: 5 s at most
            if not next_run.backlog:
                break
            await asyncio.sleep(0.01)

    asyncio.run(second_run())
    assert flaky.settled == [4_000_000]
    assert not kept.exists()


def test_a_call_to_a_model_with_no_price_is_charged_what_it_reserved(tmp_path: Path) -> None:
    """Metered at cost 0, it would never count against the budget: the reservation is the
    charge instead (no price, so first_call_reserve_usd is what it reserved)."""
    secret, key = a_key(daily_budget_usd=0.05)
    gate = gate_with(tmp_path, key, first_call_reserve_usd=0.02)

    async def calls() -> list[str]:
        outcomes = []
        for _ in range(4):  # bounded: the budget is spent by the third
            try:
                settled = await admit_async(gate, secret, "no-price-model")
            except SpendLimitReached:
                outcomes.append("refused")
                continue
            assert settled is not None
            gate.settle(settled, 0.0, None, at_least_reserved=True)
            await gate.drain()
            outcomes.append("served")
        return outcomes

    outcomes = asyncio.run(calls())
    # $0.02 reserved and charged a call: two fit in $0.05, a third's reservation does not.
    assert outcomes == ["served", "served", "refused", "refused"]


async def admit_async(gate: Gate, secret: str, model: str) -> Any:
    caller = await gate.authenticate([(b"x-api-key", secret.encode())], None)
    if caller is not None:
        gate.authorize(caller, model, ())
    return await gate.admit(caller, "anthropic", [model])


def test_a_keys_own_secret_goes_to_its_own_provider_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A key made with --provider-key-env holding an Anthropic secret: an OpenAI call
    goes out with the OpenAI provider key, never with that secret."""
    shared = {"anthropic": SecretStr("sk-ant-shared"), "openai": SecretStr("sk-shared")}
    monkeypatch.setenv("TEAM_ANTHROPIC", "sk-ant-team")
    monkeypatch.setenv("TEAM_OPENAI", "sk-team")
    _, bare = a_key(provider_key_env="TEAM_ANTHROPIC")
    assert provider_key(bare, "anthropic", shared) == b"sk-ant-team"
    assert provider_key(bare, "openai", shared) == b"sk-shared"
    _, named = a_key(provider_key_env="anthropic=TEAM_ANTHROPIC, openai=TEAM_OPENAI")
    assert provider_key(named, "anthropic", shared) == b"sk-ant-team"
    assert provider_key(named, "openai", shared) == b"sk-team"
    _, one = a_key(provider_key_env="openai=TEAM_OPENAI")
    assert provider_key(one, "anthropic", shared) == b"sk-ant-shared"


def test_a_keys_provider_key_variable_unset_is_an_error_not_the_shared_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    shared = {"anthropic": SecretStr("sk-ant-shared")}
    monkeypatch.delenv("TEAM_ANTHROPIC", raising=False)
    _, key = a_key(provider_key_env="TEAM_ANTHROPIC")
    with pytest.raises(GatewayError, match=r"\$TEAM_ANTHROPIC"):
        provider_key(key, "anthropic", shared)
