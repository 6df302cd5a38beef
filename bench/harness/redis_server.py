"""A redis-server of our own for the shared-state tests and benchmarks."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from .ports import HOST, free_port
from .process import START_TIMEOUT_S, pinned

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """One redis-server process on a fixed port, keeping nothing on disk: `stop()` and
    `start()` simulate an outage. With `core`, it runs pinned to that CPU core."""

    def __init__(self, port: int, core: int | None = None) -> None:
        self.port = port
        self.core = core
        self.directory = tempfile.TemporaryDirectory(prefix="tollgate-redis-")
        self.url = f"redis://{HOST}:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST]
        command += ["--save", "", "--appendonly", "no", "--dir", self.directory.name]
        if self.core is not None:
            command = pinned(self.core, command)
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        client = redis.Redis.from_url(self.url)
        deadline = time.monotonic() + START_TIMEOUT_S
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
def redis_server(core: int | None = None) -> Iterator[RedisServer]:
    """A redis-server of our own on a free port (pinned to `core` if given), until the block
    ends."""
    server = RedisServer(free_port(), core)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.directory.cleanup()
