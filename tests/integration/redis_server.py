"""A real redis-server for the shared-state tests: REDIS_URL if set, else one of our own
on a free port (no persistence), which a test may stop and start again on the same port."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from bench import harness
from bench.harness import REDIS_SERVER, RedisServer

needs_redis = pytest.mark.skipif(
    not REDIS_SERVER and not os.environ.get("REDIS_URL"),
    reason="needs redis-server (Debian package redis-server; .ci/run installs it) or REDIS_URL",
)


@contextmanager
def redis_server() -> Iterator[RedisServer | str]:
    """Our own server (stoppable), or REDIS_URL's (as a URL string: never stopped)."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    with harness.redis_server() as server:
        yield server
