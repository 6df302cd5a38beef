"""Two `gateway serve` processes sharing one redis-server, through the official SDK:
budgets, rate limits and the prefix registry hold across both; an outage of Redis costs
no request; and `gateway keys` manages the keys both read."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from tests.integration.conftest import ClientFactory
from tests.integration.redis_server import RedisServer, needs_redis, redis_server
from tests.integration.servers import gateway, metric

pytestmark = needs_redis
MODEL = "claude-sonnet-4-6"
PROVIDER_KEY = "sk-ant-gateway-held-" + uuid.uuid4().hex


def keys_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", "keys", *args],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=30,
    )


def create_key(env: dict[str, str], *flags: str) -> str:
    done = keys_cli(env, "create", "--name", f"k-{uuid.uuid4().hex[:8]}", *flags)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]  # the key alone on the last line


def state_env(redis_url: str, prefix: str) -> dict[str, str]:
    return {
        "GATEWAY_STATE__REDIS_URL": redis_url,
        "GATEWAY_STATE__KEY_PREFIX": prefix,
        "GATEWAY_STATE__FIRST_CALL_RESERVE_USD": "0.0002",
        "GATEWAY_PROVIDERS__ANTHROPIC__API_KEY": PROVIDER_KEY,
        "GATEWAY_METERING__CALL_LOG": "off",
    }


@pytest.fixture(scope="module")
def shared_redis() -> Iterator[str]:
    with redis_server() as server:
        yield server.url if isinstance(server, RedisServer) else server


@pytest.fixture(scope="module")
def env(shared_redis: str) -> dict[str, str]:
    return state_env(shared_redis, f"test-{uuid.uuid4().hex[:8]}:")


@pytest.fixture(scope="module")
def pair(emulator_url: str, env: dict[str, str]) -> Iterator[tuple[str, str]]:
    with gateway(emulator_url, env=env) as one, gateway(emulator_url, env=env) as two:
        yield one, two


def ask(client: anthropic.Anthropic, text: str, **kwargs: Any) -> Any:
    return client.messages.with_raw_response.create(
        model=MODEL,
        max_tokens=20,
        messages=[{"role": "user", "content": f"REPLY: ok\n{text}"}],
        **kwargs,
    )


def test_the_provider_key_replaces_the_gateway_key(
    make_client: ClientFactory, pair: tuple[str, str], env: dict[str, str], emulator_url: str
) -> None:
    key = create_key(env)
    raw = ask(make_client(pair[0], key), uuid.uuid4().hex)
    assert raw.status_code == 200
    # The emulator caches per API key: the gateway's key made the call, not the client's.
    state = httpx.get(emulator_url + "/emulator/state").json()
    assert key not in str(state)
    with pytest.raises(anthropic.AuthenticationError):
        ask(make_client(pair[1], "tg-" + "x" * 43), "unknown key")


def test_a_budget_spent_through_one_is_enforced_by_the_other(
    make_client: ClientFactory, pair: tuple[str, str], env: dict[str, str]
) -> None:
    # Each call reserves the most it can cost (~$0.0004: its input and max_tokens=20).
    key = create_key(env, "--daily-budget-usd", "0.002")
    clients = [make_client(url, key) for url in pair]
    costs: list[float] = []
    refused: anthropic.RateLimitError | None = None
    for turn in range(40):
        try:
            raw = ask(clients[turn % 2], f"call {turn} {uuid.uuid4().hex}")
        except anthropic.RateLimitError as error:
            refused = error
            break
        costs.append(float(raw.headers["x-gateway-cost-usd"]))
        time.sleep(0.01)  # an agent's next step; lets the cost settle
    assert refused is not None, "the budget was never enforced"
    assert len(costs) >= 2
    assert sum(costs) <= 0.002
    assert type(refused).__name__ == "EnforcedSpendLimitReachedError"
    assert refused.response.headers.get("retry-after") is None
    body = refused.response.json()
    assert body["error"]["type"] == "rate_limit_error"
    assert body["error"]["details"]["error_code"] == "enforced_spend_limit_reached"
    for client in clients:  # both replicas refuse it now
        with pytest.raises(anthropic.RateLimitError):
            ask(client, "again")
    assert metric(pair[0], "gateway_budget_used_ratio") > 0


def test_concurrent_calls_through_both_overspend_by_at_most_one(
    make_client: ClientFactory, pair: tuple[str, str], env: dict[str, str]
) -> None:
    budget = 0.001
    key = create_key(env, "--daily-budget-usd", str(budget))
    clients = [make_client(url, key) for url in pair]

    def call(n: int) -> float | None:
        try:
            raw = ask(clients[n % 2], f"parallel {n} {uuid.uuid4().hex}")
        except anthropic.RateLimitError:
            return None
        return float(raw.headers["x-gateway-cost-usd"])

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(call, range(60)))
    costs = [cost for cost in results if cost is not None]
    assert None in results, "the budget was never enforced"
    assert sum(costs) <= budget + max(costs), (sum(costs), len(costs), max(costs), min(costs))


def test_rate_limits_hold_across_both(
    make_client: ClientFactory, pair: tuple[str, str], env: dict[str, str]
) -> None:
    key = create_key(env, "--rpm", "4")
    clients = [make_client(url, key) for url in pair]
    statuses: list[int] = []
    retry_after: str | None = None
    for turn in range(8):
        try:
            statuses.append(ask(clients[turn % 2], f"rate {turn}").status_code)
        except anthropic.RateLimitError as error:
            statuses.append(429)
            retry_after = error.response.headers.get("retry-after")
    assert statuses.count(200) == 4
    assert retry_after is not None
    assert int(retry_after) >= 1


def test_a_conversation_alternating_between_them_gets_its_miss_causes(
    make_client: ClientFactory, pair: tuple[str, str], env: dict[str, str]
) -> None:
    """Turn 2 on the second replica is compared with turn 1 on the first, and turn 3 back
    on the first with turn 2: alone, each replica would name the wrong cause."""
    key = create_key(env)
    one, two = (make_client(url, key) for url in pair)
    system = "You are a careful assistant. " + " ".join(
        f"Rule {i}: answer precisely and cite the rule." for i in range(200)
    )
    tools = [{"name": "lookup", "description": "Look up", "input_schema": {"type": "object"}}]
    other_tools = [{**tools[0], "description": "Look something up"}]
    history: list[dict[str, Any]] = [{"role": "user", "content": f"REPLY: one {uuid.uuid4()}"}]
    before = {
        url: {c: metric(url, "gateway_cache_miss_cause_total", cause=c) for c in CAUSES}
        for url in pair
    }

    def turn(client: anthropic.Anthropic, model: str, turn_tools: list[Any], text: str) -> None:
        reply = client.messages.create(
            model=model, max_tokens=20, system=system, tools=turn_tools, messages=history
        )
        history.extend(
            [
                {"role": "assistant", "content": reply.content[0].text},  # type: ignore[union-attr]
                {"role": "user", "content": f"REPLY: {text}"},
            ]
        )
        time.sleep(0.05)  # the agent thinks; the replica's write-behind lands meanwhile

    turn(one, MODEL, tools, "two")
    turn(two, "claude-opus-4-1-20250805", tools, "three")  # model changed
    turn(one, "claude-opus-4-1-20250805", other_tools, "four")  # tools changed
    after = {
        url: {c: metric(url, "gateway_cache_miss_cause_total", cause=c) for c in CAUSES}
        for url in pair
    }
    delta = {url: {c: after[url][c] - before[url][c] for c in CAUSES} for url in pair}
    assert delta[pair[1]]["model_changed"] == 1, delta
    assert delta[pair[1]]["cold"] == 0, delta
    assert delta[pair[0]]["tools_changed"] == 1, delta
    assert delta[pair[0]]["model_changed"] == 0, delta


CAUSES = ("cold", "model_changed", "tools_changed", "system_changed", "messages_changed")


def test_an_outage_loses_no_request_and_enforcement_resumes(
    emulator_url: str, make_client: ClientFactory, tmp_path: Path
) -> None:
    with redis_server() as server:
        if not isinstance(server, RedisServer):
            pytest.skip("REDIS_URL is not ours to stop")
        env = state_env(server.url, "outage:")
        # A limit the load never reaches (a few hundred calls a second for seconds).
        open_key = create_key(env, "--rpm", "1000000")
        limited = create_key(env, "--rpm", "3")
        closed = create_key(env, "--on-outage", "fail_closed")
        with gateway(emulator_url, env=env) as url:
            for key in (open_key, limited, closed):  # the replica has seen each key
                assert ask(make_client(url, key), "before").status_code == 200
            statuses: list[int] = []
            stop = threading.Event()

            def load() -> None:
                client = make_client(url, open_key, timeout=5)
                while not stop.is_set():
                    try:
                        statuses.append(ask(client, "load").status_code)
                    except anthropic.APIStatusError as error:
                        statuses.append(error.status_code)

            workers = [threading.Thread(target=load) for _ in range(3)]
            for worker in workers:
                worker.start()
            time.sleep(0.3)
            server.stop(save=True)
            time.sleep(1.0)
            ready = httpx.get(url + "/readyz")
            assert ready.status_code == 200
            assert ready.json()["status"] == "degraded"
            # Unchecked, as the keys' policies say: fail_open goes, fail_closed does not.
            for _ in range(5):
                assert ask(make_client(url, limited), "outage").status_code == 200
            with pytest.raises(anthropic.APIStatusError) as refused:
                ask(make_client(url, closed), "outage")
            assert refused.value.status_code == 503
            assert metric(url, "gateway_state_errors_total", operation="admit") > 0
            server.start()
            time.sleep(1.5)  # past the probe interval
            stop.set()
            for worker in workers:
                worker.join()
            assert statuses
            assert set(statuses) == {200}, "a request failed during the outage"
            assert httpx.get(url + "/readyz").json()["status"] == "ready"
            # Enforced again, without a restart: the limited key runs out within 3 calls.
            after: list[int] = []
            for _ in range(4):
                try:
                    after.append(ask(make_client(url, limited), "after").status_code)
                except anthropic.RateLimitError:
                    after.append(429)
            assert 429 in after, after


def test_keys_cli_with_the_keys_file(
    emulator_url: str, make_client: ClientFactory, tmp_path: Path
) -> None:
    """No Redis: the keys file, which a running single-process gateway re-reads."""
    env = {
        "REDIS_URL": "",
        "GATEWAY_STATE__KEYS_FILE": str(tmp_path / "keys.json"),
        "GATEWAY_PROVIDERS__ANTHROPIC__API_KEY": PROVIDER_KEY,
        "GATEWAY_METERING__CALL_LOG": "off",
    }
    created = keys_cli(env, "create", "--name", "ci", "--team", "platform", "--rpm", "60")
    assert created.returncode == 0, created.stderr
    assert "only a single-process gateway" in created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("tg-")
    assert len(key) > 40
    assert "tg-" not in (tmp_path / "keys.json").read_text()  # stored hashed
    assert keys_cli(env, "create", "--name", "ci").returncode == 1  # names are unique
    listing = keys_cli(env, "list").stdout
    assert "ci\tplatform" in listing
    with gateway(emulator_url, env=env) as url:
        assert ask(make_client(url, key), "hello").status_code == 200
        assert keys_cli(env, "revoke", "ci").returncode == 0
        time.sleep(1.2)  # re-read within a second
        with pytest.raises(anthropic.AuthenticationError):
            ask(make_client(url, key), "revoked")
        # Provider keys still pass through.
        assert ask(make_client(url, "sk-ant-passthrough"), "hi").status_code == 200
    assert keys_cli(env, "revoke", "ci").returncode == 1
