"""Key enforcement as an adversary tries it, through `gateway serve` and the emulator: bursts
on a tiny budget, dear calls after a cheap one, a model allow-list against routing, a
revoked or spent key while the real redis-server is frozen (SIGSTOP) or stopped, and an
unauthenticated request that must never reach the rewrite pipeline."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from tests.integration.redis_server import RedisServer, needs_redis, redis_server
from tests.integration.servers import gateway
from tests.integration.test_shared_state import PROVIDER_KEY, create_key, keys_cli, state_env

MODEL = "claude-sonnet-4-6"
BURST = 100
DEADLINE_S = 20.0  # a bounded wait for background settles, on a loaded machine


def body(text: str, max_tokens: int = 20, model: str = MODEL) -> dict[str, Any]:
    return {
        "model": model,
        "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": f"REPLY: ok\n{text}"}],
    }


def headers(key: str, **extra: str) -> dict[str, str]:
    return {"x-api-key": key, "anthropic-version": "2023-06-01", **extra}


async def burst(url: str, key: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    """All at once: every call is in flight before the first is answered."""
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        return await asyncio.gather(
            *(client.post("/v1/messages", json=b, headers=headers(key)) for b in bodies)
        )


def served_costs(responses: list[httpx.Response]) -> list[float]:
    """What the calls served cost. The others were refused: 429 (the budget), or 503 with
    retry-after (Redis could not answer in time on a loaded machine: never fail_open)."""
    statuses = {r.status_code for r in responses}
    assert statuses <= {200, 429, 503}, statuses
    return [float(r.headers["x-gateway-cost-usd"]) for r in responses if r.status_code == 200]


def recorded_spend(server_url: str, prefix: str, key_name: str) -> float:
    day = time.strftime("d%Y%m%d", time.gmtime())
    with redis.Redis.from_url(server_url) as client:
        value = client.get(f"{prefix}spend:key:{key_name}:{day}")
    return int(value or 0) / 1e9


def wait_for_spend(server_url: str, prefix: str, key_name: str, expected: float) -> float:
    """The spend Redis holds once the background settles have landed (bounded wait)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        spent = recorded_spend(server_url, prefix, key_name)
        if abs(spent - expected) < 1e-5 or time.monotonic() > deadline:
            return spent
        time.sleep(0.05)


def new_key(env: dict[str, str], *flags: str) -> tuple[str, str]:
    name = f"k-{uuid.uuid4().hex[:8]}"
    done = keys_cli(env, "create", "--name", name, *flags)
    assert done.returncode == 0, done.stderr
    return name, done.stdout.strip().splitlines()[-1]


@pytest.fixture
def own_redis() -> Iterator[RedisServer]:
    with redis_server() as server:
        if not isinstance(server, RedisServer):
            pytest.skip("REDIS_URL is not ours to stop")
        yield server


# Item 1: a burst on a fresh key, Redis healthy (a small pool makes calls queue for it).


@needs_redis
def test_a_burst_on_a_fresh_key_queues_for_redis_and_never_fails_open(
    emulator_url: str, own_redis: RedisServer
) -> None:
    prefix = f"burst-{uuid.uuid4().hex[:8]}:"
    env = {**state_env(own_redis.url, prefix), "GATEWAY_STATE__MAX_CONNECTIONS": "2"}
    budget = 0.002
    name, key = new_key(env, "--daily-budget-usd", str(budget))
    with gateway(emulator_url, env=env) as url:
        bodies = [body(f"burst {n} {uuid.uuid4().hex}") for n in range(BURST)]
        costs = served_costs(asyncio.run(burst(url, key, bodies)))
        assert costs, "no call was served"
        assert sum(costs) <= budget + max(costs), (len(costs), sum(costs))
        # Every call served is charged: what Redis holds is what was served.
        assert wait_for_spend(own_redis.url, prefix, name, sum(costs)) == pytest.approx(
            sum(costs), abs=1e-6 * len(costs)
        )


# Item 4: a cheap call, then a burst of dear ones on a $0.01 budget.


@needs_redis
def test_dear_calls_after_a_cheap_one_overspend_by_at_most_one(
    emulator_url: str, own_redis: RedisServer
) -> None:
    prefix = f"dear-{uuid.uuid4().hex[:8]}:"
    env = state_env(own_redis.url, prefix)
    budget = 0.01
    name, key = new_key(env, "--daily-budget-usd", str(budget))
    with gateway(emulator_url, env=env) as url:
        cheap = served_costs(asyncio.run(burst(url, key, [body("cheap")])))
        assert len(cheap) == 1
        time.sleep(0.2)  # an agent's next step: the cheap call's cost settles
        # ~2,000 input tokens each: about $0.006 a call, 60 times the cheap one.
        dear = [body("x " * 4000 + uuid.uuid4().hex) for _ in range(BURST)]
        costs = served_costs(asyncio.run(burst(url, key, dear)))
        spent = sum(cheap) + sum(costs)
        assert spent <= budget + max(costs, default=0), (len(costs), spent)
        assert wait_for_spend(own_redis.url, prefix, name, spent) == pytest.approx(
            spent, abs=1e-6 * (len(costs) + 1)
        )


# Item 2: a key's models, judged after routing, fallbacks, hedges and shadows included.

SMALL = "claude-haiku-5-5"
FALLBACK = "claude-sonnet-4-6"
STEPS = {
    "routing": {"tier": "small"},
    "synthesis": {"tier": "large"},
    "guarded": {"tier": "small", "fallbacks": [FALLBACK]},
    "watched": {"tier": "small", "shadow": {"model": FALLBACK, "sample": 1.0}},
}


@dataclass(frozen=True)
class Routed:
    url: str
    pairs: Path  # the shadow log
    keys: dict[str, str]  # made before the gateway starts: it reads the keys file once a second


@pytest.fixture(scope="module")
def routed(emulator_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Routed]:
    directory = tmp_path_factory.mktemp("routed")
    env = {
        "REDIS_URL": "",
        "GATEWAY_STATE__KEYS_FILE": str(directory / "keys.json"),
        "GATEWAY_PROVIDERS__ANTHROPIC__API_KEY": PROVIDER_KEY,
        "GATEWAY_METERING__CALL_LOG": "off",
        "GATEWAY_ROUTING__STEPS": json.dumps(STEPS),
        "GATEWAY_ROUTING__SHADOW_LOG": str(directory / "pairs.jsonl"),
        "GATEWAY_ROUTING__RETRIES__BASE_DELAY_S": "0.01",
    }
    keys = {
        "haiku": create_key(env, "--models", "claude-haiku-*"),
        "alias": create_key(env, "--models", "claude-haiku-4-5"),
        "steps": create_key(env, "--steps", "routing"),
        "anyone": create_key(env),
    }
    with gateway(emulator_url, env=env) as url:
        yield Routed(url, directory / "pairs.jsonl", keys)


def call(url: str, key: str, model: str, step: str | None, **extra: str) -> httpx.Response:
    sent = headers(key, **extra) | ({"x-gateway-step": step} if step else {})
    return httpx.post(f"{url}/v1/messages", json=body("hi", model=model), headers=sent, timeout=30)


def test_a_model_allow_list_judges_the_routed_model(routed: Routed) -> None:
    url, haiku = routed.url, routed.keys["haiku"]
    # The client names a model the key allows; the step routes it to one it does not.
    refused = call(url, haiku, "claude-haiku-4-5", "synthesis")
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["type"] == "permission_error"
    served = call(url, haiku, "claude-haiku-4-5", "routing")
    assert served.status_code == 200
    assert served.headers["x-gateway-model"] == SMALL
    # An alias the key names allows the snapshot it is pinned to.
    assert call(url, routed.keys["alias"], "claude-haiku-4-5", None).status_code == 200


def test_a_key_limited_to_steps_cannot_leave_them(routed: Routed) -> None:
    url, key = routed.url, routed.keys["steps"]
    off = {"x-gateway-route": "off"}
    assert call(url, key, "claude-opus-4-1", "routing", **off).status_code == 403
    assert call(url, key, "tier:large", "routing").status_code == 403
    assert call(url, key, SMALL, "routing", **off).status_code == 200
    assert call(url, key, "claude-opus-4-1", "routing").status_code == 200  # routed to small


def test_fallbacks_and_shadows_a_key_may_not_call_are_dropped(routed: Routed) -> None:
    url, pairs = routed.url, routed.pairs
    haiku, anyone = routed.keys["haiku"], routed.keys["anyone"]
    failing = {"x-emulator-fault": f"529;model={SMALL}"}
    # Unrestricted, the step's fallback serves when its model fails...
    assert call(url, anyone, SMALL, "guarded", **failing).headers["x-gateway-model"] == FALLBACK
    # ... but not for a key that may not call the fallback: the call fails instead.
    assert call(url, haiku, SMALL, "guarded", **failing).status_code == 529
    # The shadow is not called for it either: its pair never appears, while the next
    # (unrestricted) call's does, and pairs are written in order of their shadows' end.
    mine = call(url, haiku, SMALL, "watched")
    assert mine.status_code == 200
    control = call(url, anyone, SMALL, "watched").headers["x-gateway-request-id"]
    deadline = time.monotonic() + DEADLINE_S
    written: list[str] = []
    while control not in written:
        assert time.monotonic() < deadline, "the control pair was never written"
        time.sleep(0.05)
        lines = pairs.read_bytes().splitlines() if pairs.exists() else []
        written = [json.loads(line)["request_id"] for line in lines]
    assert mine.headers["x-gateway-request-id"] not in written


# Item 3: revocation and a spent budget win over fail_open while Redis is away.


@needs_redis
def test_a_revoked_or_spent_key_stays_refused_while_redis_is_frozen_or_stopped(
    emulator_url: str, own_redis: RedisServer
) -> None:
    prefix = f"away-{uuid.uuid4().hex[:8]}:"
    env = state_env(own_redis.url, prefix)
    revoked_name, revoked = new_key(env)
    _, spent = new_key(env, "--daily-budget-usd", "0.0005")  # one call reserves ~$0.0004
    open_name, still_open = new_key(env)
    with gateway(emulator_url, env=env) as url:

        def status(key: str) -> int:
            sent = headers(key)
            response = httpx.post(f"{url}/v1/messages", json=body("away"), headers=sent, timeout=30)
            return response.status_code

        assert status(revoked) == 200
        assert status(still_open) == 200
        assert keys_cli(env, "revoke", revoked_name).returncode == 0
        assert status(revoked) == 401
        statuses: list[int] = []
        while 429 not in statuses:  # spent to its last reservation
            assert len(statuses) < 20, statuses
            statuses.append(status(spent))
        deadline = time.monotonic() + DEADLINE_S
        while (before := recorded_spend(own_redis.url, prefix, open_name)) == 0:
            assert time.monotonic() < deadline, "the first call was never charged"
            time.sleep(0.05)
        assert own_redis.process is not None
        pid = own_redis.process.pid

        def judged_by_last_known_state() -> None:
            for _ in range(3):
                assert status(revoked) == 401
                assert status(spent) == 429
            # A key in good standing: 503 while Redis is only slow, then (no answer for
            # outage_after_ms) judged unreachable: fail_open.
            assert until_served(status, still_open) == 200

        os.kill(pid, signal.SIGSTOP)  # frozen: connections open, no answer
        try:
            judged_by_last_known_state()
        finally:
            os.kill(pid, signal.SIGCONT)
        own_redis.stop(save=True)  # stopped: connections refused
        try:
            judged_by_last_known_state()
        finally:
            own_redis.start()
        # The calls let through while Redis was away are charged once it is back.
        deadline = time.monotonic() + DEADLINE_S
        while recorded_spend(own_redis.url, prefix, open_name) < before * 3 - 1e-9:
            assert time.monotonic() < deadline, "the outage's calls were never charged"
            time.sleep(0.1)


def until_served(status: Callable[[str], int], key: str) -> int:
    """The key's status once it is not 503 (bounded: 20 s)."""
    deadline = time.monotonic() + DEADLINE_S
    while (answer := status(key)) == 503 and time.monotonic() < deadline:
        time.sleep(0.1)
    return answer


# Item 5 (first half): an unauthenticated request never reaches the rewrite pipeline.


def test_an_unauthenticated_request_is_refused_before_any_stage_runs(
    emulator_url: str, tmp_path: Path
) -> None:
    env = {
        "REDIS_URL": "",
        "GATEWAY_STATE__KEYS_FILE": str(tmp_path / "keys.json"),
        "GATEWAY_STATE__REQUIRE_GATEWAY_KEY": "true",
        "GATEWAY_METERING__CALL_LOG": "off",
    }
    with gateway(emulator_url, env=env) as url:
        for key in ("sk-ant-not-a-gateway-key", "tg-" + "x" * 43):
            # The route stage refuses an unknown tier (400): it must not run before the 401.
            response = call(url, key, "tier:no-such-tier", None)
            assert response.status_code == 401, response.text
            assert response.json()["error"]["type"] == "authentication_error"
            # Nor does the body's parser.
            broken = httpx.post(
                f"{url}/v1/messages",
                content=b"{not json",
                headers={**headers(key), "content-type": "application/json"},
            )
            assert broken.status_code == 401
