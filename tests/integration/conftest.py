"""Fixtures: the emulator configurations most tests share, and a fresh API key per test.

Each server here starts once per session (a `gateway serve` or `gateway emulate` process
takes about a second of CPU to start); what a test learns on it is kept apart by the
fresh key, and the emulator's prompt caches are per key too."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import anthropic
import httpx
import pytest

from tests.integration.servers import emulator, gateway


@pytest.fixture(scope="session")
def emulator_url() -> Iterator[str]:
    """The emulator as tests use it most: no latency, virtual clock available."""
    with emulator("--virtual-clock") as url:
        yield url


@pytest.fixture(scope="session")
def simulated_emulator_url() -> Iterator[str]:
    """Modelled latency without sleeping, on the virtual clock: for timing-dependent rules."""
    with emulator("--latency", "simulated", "--virtual-clock") as url:
        yield url


@pytest.fixture(scope="session")
def realistic_emulator_url() -> Iterator[str]:
    """Sleeps the modelled times: streams take as long as a provider's, so a client can
    leave before the end."""
    with emulator("--latency", "realistic") as url:
        yield url


@pytest.fixture
def quiet_realistic_emulator_url(realistic_emulator_url: str) -> str:
    """The realistic emulator once no stream is open on it, as a fresh one would be: a test
    that left mid-stream lets the emulator go on until its next write finds the client gone."""
    deadline = time.monotonic() + 30
    while httpx.get(realistic_emulator_url + "/emulator/state").json()["open_streams"]:
        assert time.monotonic() < deadline, "a stream of an earlier test never ended"
        time.sleep(0.05)
    return realistic_emulator_url


@pytest.fixture
def api_key() -> str:
    """A fresh key per test: caches are per workspace (per key), so tests never share one."""
    return f"sk-ant-test-{uuid.uuid4().hex}"


@pytest.fixture(scope="session")
def gateway_url(emulator_url: str) -> Iterator[str]:
    """The gateway in front of the shared emulator, with a small body limit to test it."""
    with gateway(emulator_url, env={"GATEWAY_SERVER__MAX_BODY_BYTES": "200000"}) as url:
        yield url


ClientFactory = Callable[..., anthropic.Anthropic]


@pytest.fixture
def make_client() -> Iterator[ClientFactory]:
    """`make_client(base_url, api_key, **options)`: SDK clients, closed when the test ends."""
    made: list[anthropic.Anthropic] = []

    def make(base_url: str, api_key: str, **options: Any) -> anthropic.Anthropic:
        made.append(
            anthropic.Anthropic(base_url=base_url, api_key=api_key, **{"max_retries": 0, **options})
        )
        return made[-1]

    yield make
    for client in made:
        client.close()
