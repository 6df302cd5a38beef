"""The ledger's semantics, the same for both implementations: the Lua scripts against a
real redis-server, and the in-memory ledger. Plus the Redis store's outage behaviour."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter
from pydantic import SecretStr

from gateway.settings import StateSettings, TeamBudgetSettings
from gateway.state.health import StoreUnreachable
from gateway.state.keys import GatewayKey, KeyExists, digest, new_secret
from gateway.state.ledger import Period
from gateway.state.stores import State, open_state
from tests.integration.redis_server import RedisServer, needs_redis, redis_server

NOW = 1_800_000_000.0 + 10  # 10 s into a minute


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    with redis_server() as server:
        yield server.url if isinstance(server, RedisServer) else server


@pytest.fixture(params=["memory", "redis"])
def make_state(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[..., State]:
    def make(**settings: Any) -> State:
        if request.param == "redis":
            url = request.getfixturevalue("redis_url")
            settings |= {"redis_url": SecretStr(url), "key_prefix": f"t{uuid.uuid4().hex}:"}
        else:
            settings |= {"redis_url": None, "keys_file": str(tmp_path / "keys.json")}
        # Not about timeouts: a generous deadline for a loaded machine.
        return open_state(StateSettings(**{"timeout_ms": 2000, **settings}))

    return make


def run(work: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(work())


async def new_key(state: State, **limits: Any) -> tuple[str, GatewayKey]:
    secret = new_secret()
    key = GatewayKey(name=f"k{uuid.uuid4().hex[:8]}", digest=digest(secret), **limits)
    await state.keys.create(key)
    return digest(secret), key


pytestmark = needs_redis


def test_unknown_and_revoked_keys(make_state: Callable[..., State]) -> None:
    async def work() -> None:
        state = make_state()
        assert (await state.ledger.admit(digest(new_secret()), NOW)).refused == "unknown_key"
        key_digest, key = await new_key(state)
        assert (await state.ledger.admit(key_digest, NOW)).key == key
        with pytest.raises(KeyExists):
            await state.keys.create(key)
        assert [k.name for k in await state.keys.list()] == [key.name]
        assert await state.keys.revoke(key.name)
        assert not await state.keys.revoke(key.name)
        assert (await state.ledger.admit(key_digest, NOW + 2)).refused == "unknown_key"
        await state.aclose()

    run(work)


def test_budget_reserves_then_settles_the_real_cost(make_state: Callable[..., State]) -> None:
    async def work() -> None:
        state = make_state()
        key_digest, key = await new_key(state, daily_budget_usd=0.05)
        first = await state.ledger.admit(key_digest, NOW, reserve_nano=10_000_000)
        assert first.refused is None
        assert first.reserved_nano == 10_000_000
        assert first.period == Period.at(NOW)
        spent = await state.ledger.settle(
            key, first.period, first.reserved_nano, 20_000_000, 0, NOW
        )
        assert spent[0] == 20_000_000  # the reservation is gone, the real cost is there
        second = await state.ledger.admit(key_digest, NOW, reserve_nano=25_000_000)
        assert second.reserved_nano == 25_000_000  # what the caller asked to reserve
        assert second.spent_nano[0] == 20_000_000
        # 45 of 50 spent or reserved: a call that may cost 10 does not fit, one of 5 does.
        refused = await state.ledger.admit(key_digest, NOW, reserve_nano=10_000_000)
        assert refused.refused == "spend_limit"
        assert refused.reason == "daily"
        assert refused.spent_nano[0] == 45_000_000
        assert (await state.ledger.admit(key_digest, NOW, reserve_nano=5_000_000)).refused is None
        spent_out = await state.ledger.admit(key_digest, NOW)  # 50 of 50: even a free one
        assert spent_out.refused == "spend_limit"
        # A released reservation makes room again.
        await state.ledger.settle(key, first.period, 25_000_000, 0, 0, NOW)
        again = await state.ledger.admit(key_digest, NOW, reserve_nano=10_000_000)
        assert again.refused is None
        # The next UTC day starts from nothing.
        assert (await state.ledger.admit(key_digest, NOW + 86_400)).spent_nano[0] == 0
        await state.aclose()

    run(work)


def test_a_named_call_is_reserved_and_settled_once(make_state: Callable[..., State]) -> None:
    """A retry whose first reply was late (the same call id) changes nothing twice, and a
    settle swaps the reservation the ledger holds for the call, whatever the caller thinks
    it is (0 for a call admitted while the store seemed away)."""

    async def work() -> None:
        state = make_state()
        key_digest, key = await new_key(state, daily_budget_usd=0.05, rpm=2)
        first = await state.ledger.admit(key_digest, NOW, reserve_nano=10_000_000, call_id="c1")
        again = await state.ledger.admit(key_digest, NOW, reserve_nano=10_000_000, call_id="c1")
        assert again.refused is None
        assert again.reserved_nano == 10_000_000
        assert again.spent_nano[0] == 10_000_000  # not reserved twice
        assert first.period is not None
        spent = await state.ledger.settle(key, first.period, 0, 3_000_000, 0, NOW, "c1")
        assert spent[0] == 3_000_000  # the held reservation was swapped, not the caller's 0
        spent = await state.ledger.settle(key, first.period, 0, 3_000_000, 0, NOW, "c1")
        assert spent[0] == 3_000_000  # settled once
        # Counted once against the rpm of 2: one more call fits.
        assert (await state.ledger.admit(key_digest, NOW, call_id="c2")).refused is None
        await state.aclose()

    run(work)


def test_team_budget_spans_its_keys(make_state: Callable[..., State]) -> None:
    async def work() -> None:
        state = make_state(teams={"search": TeamBudgetSettings(monthly_budget_usd=0.03)})
        a_digest, a = await new_key(state, team="search")
        b_digest, _ = await new_key(state, team="search")
        admitted = await state.ledger.admit(a_digest, NOW)
        assert admitted.period is not None
        await state.ledger.settle(a, admitted.period, admitted.reserved_nano, 30_000_000, 0, NOW)
        refused = await state.ledger.admit(b_digest, NOW)
        assert refused.refused == "spend_limit"
        assert refused.reason == "team_monthly"
        await state.aclose()

    run(work)


def test_requests_per_minute_slide(make_state: Callable[..., State]) -> None:
    async def work() -> None:
        state = make_state()
        key_digest, _ = await new_key(state, rpm=3)
        results = [await state.ledger.admit(key_digest, NOW) for _ in range(4)]
        assert [r.refused for r in results] == [None, None, None, "rate_limit"]
        assert results[3].reason == "requests per minute"
        # 10 s into this minute, all 3 in it: free again once the next minute's weighted
        # share of them is under 2, i.e. a third of the way into it: 50 + 20 = 70 s.
        assert results[3].retry_after_s == 70
        # Half-way through the next minute, half of the 3 still count: 1.5 + 1 <= 3.
        later = await state.ledger.admit(key_digest, NOW + 80)
        assert later.refused is None
        await state.aclose()

    run(work)


def test_tokens_per_minute_count_on_settle(make_state: Callable[..., State]) -> None:
    async def work() -> None:
        state = make_state()
        key_digest, key = await new_key(state, tpm=1000)
        admitted = await state.ledger.admit(key_digest, NOW)
        assert admitted.period is not None
        await state.ledger.settle(key, admitted.period, admitted.reserved_nano, 1, 1000, NOW)
        refused = await state.ledger.admit(key_digest, NOW + 1)
        assert refused.refused == "rate_limit"
        assert refused.reason == "tokens per minute"
        assert refused.retry_after_s is not None
        assert refused.retry_after_s >= 1
        await state.aclose()

    run(work)


@pytest.mark.parametrize("make_state", ["redis"], indirect=True)
def test_concurrent_admissions_never_overcount(make_state: Callable[..., State]) -> None:
    """Two clients (two replicas' pools) racing: exactly rpm calls get through."""

    async def work() -> None:
        one, two = make_state(), make_state()
        two.ledger.prefix = one.ledger.prefix  # type: ignore[attr-defined]  # same namespace
        two.keys.prefix = one.keys.prefix  # type: ignore[attr-defined]
        key_digest, _ = await new_key(one, rpm=10)
        results = await asyncio.gather(
            *(state.ledger.admit(key_digest, NOW) for state in [one, two] * 20)
        )
        assert sum(r.refused is None for r in results) == 10
        await one.aclose()
        await two.aclose()

    run(work)


def test_an_outage_fails_fast_counts_and_recovers() -> None:
    with redis_server() as server:
        if not isinstance(server, RedisServer):
            pytest.skip("REDIS_URL is not ours to stop")
        errors = Counter("state_errors", "", ["operation"], registry=CollectorRegistry())

        async def work() -> None:
            state = open_state(StateSettings(redis_url=SecretStr(server.url)), errors)
            key_digest, _ = await new_key(state)
            assert (await state.ledger.admit(key_digest, time.time())).refused is None
            server.stop()
            started = time.monotonic()
            for _ in range(5):
                with pytest.raises(StoreUnreachable):
                    await state.ledger.admit(key_digest, time.time())
            assert time.monotonic() - started < 0.5
            assert state.health is not None
            assert state.health.degraded
            assert not await state.usable()
            server.start()  # empty: no keys, but answering
            await asyncio.sleep(1.1)  # past the probe interval
            assert await state.usable()
            assert not state.health.degraded
            assert (await state.ledger.admit(key_digest, time.time())).refused == "unknown_key"
            await state.aclose()

        run(work)
        assert errors.labels("admit")._value.get() == 5
