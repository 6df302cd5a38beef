"""Fixtures: the emulator configurations most tests share, and a fresh API key per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from tests.integration.servers import emulator


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


@pytest.fixture
def api_key() -> str:
    """A fresh key per test: caches are per workspace (per key), so tests never share one."""
    return f"sk-ant-test-{uuid.uuid4().hex}"
