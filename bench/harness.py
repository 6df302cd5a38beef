"""Real servers on loopback ports, shared by the benchmarks and the integration tests.

Bench scripts run as `.venv/bin/python bench/x.py` import it as `harness` (their folder is on
sys.path); the tests import it as `bench.harness` (pytest puts the repository root on it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx
import redis

HOST = "127.0.0.1"
REDIS_SERVER = shutil.which("redis-server")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def wait_ready(
    process: subprocess.Popen[bytes],
    ready_url: str,
    timeout_s: float = 20,
    log: IO[bytes] | None = None,
) -> None:
    """Returns once `ready_url` answers 2xx-4xx; raises if `process` exits first (with what
    it wrote to `log`) or `timeout_s` passes."""
    args = process.args
    command = " ".join(map(str, args)) if isinstance(args, list) else str(args)
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            output = ""
            if log is not None:
                log.seek(0)
                output = log.read().decode(errors="replace")
            raise RuntimeError(f"{command} exited early:\n{output}")
        try:
            if httpx.get(ready_url, timeout=1).status_code < 500:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{command} did not become ready")
        time.sleep(0.05)


@contextmanager
def started(
    command: list[str], ready_url: str, env: dict[str, str] | None = None, timeout_s: float = 20
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs `command` until the block ends; yields its process once `ready_url` answers
    2xx-4xx (within `timeout_s`)."""
    # A file, not a pipe: a server that logs a lot must never block on a full pipe.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - outlives this statement; closed below
    process = subprocess.Popen(
        command, env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_ready(process, ready_url, timeout_s, log)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


@contextmanager
def server_process(
    command: list[str],
    base_url: str,
    ready_path: str,
    env: dict[str, str] | None = None,
    timeout_s: float = 20,
) -> Iterator[str]:
    """Runs `command` until the block ends; yields `base_url` once `ready_path` answers 2xx-4xx."""
    with started(command, base_url + ready_path, env, timeout_s):
        yield base_url


@contextmanager
def gateway_process(
    *args: str,
    port: int,
    env: dict[str, str] | None = None,
    ready_path: str = "/emulator/state",
    timeout_s: float = 20,
) -> Iterator[str]:
    """Runs `python -m gateway ARGS` until the block ends; yields its base URL once it answers."""
    command = [sys.executable, "-m", "gateway", *args]
    with server_process(command, f"http://{HOST}:{port}", ready_path, env, timeout_s) as url:
        yield url


class RedisServer:
    """One redis-server process on a fixed port, keeping nothing on disk: `stop()` and
    `start()` simulate an outage."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.directory = tempfile.TemporaryDirectory(prefix="tollgate-redis-")
        self.url = f"redis://{HOST}:{port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        assert REDIS_SERVER
        command = [REDIS_SERVER, "--port", str(self.port), "--bind", HOST]
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
def redis_server() -> Iterator[RedisServer]:
    """A redis-server of our own on a free port, until the block ends."""
    server = RedisServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        server.directory.cleanup()


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of /proc/PID/status, in KiB (VmRSS: resident now; VmHWM: its peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for pid {pid}")
