"""A real redis-server for the shared-state tests: REDIS_URL if set, else one of our own
on a free port (no persistence), which a test may stop and start again on the same port."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import redis

from tests.integration.servers import free_port

REDIS_SERVER = shutil.which("redis-server")
needs_redis = pytest.mark.skipif(
    not REDIS_SERVER and not os.environ.get("REDIS_URL"),
    reason="needs redis-server (Debian package redis-server; .ci/run installs it) or REDIS_URL",
)


class RedisServer:
    """One redis-server process on a fixed port: `stop()` and `start()` simulate an outage."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.directory = tempfile.TemporaryDirectory(prefix="tollgate-redis-")
        self.url = f"redis://127.0.0.1:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", self.directory.name]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()

    def stop(self, save: bool = False) -> None:
        """Stops the server; with `save`, its data is back when it starts again."""
        if self.process is None:
            return
        if save:
            client = redis.Redis.from_url(self.url)
            with contextlib.suppress(redis.ConnectionError):
                client.shutdown(save=True)
            client.close()
        else:
            self.process.terminate()
        self.process.wait(timeout=10)
        self.process = None


@contextmanager
def redis_server() -> Iterator[RedisServer | str]:
    """Our own server (stoppable), or REDIS_URL's (as a URL string: never stopped)."""
    if url := os.environ.get("REDIS_URL"):
        yield url
        return
    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.directory.cleanup()
