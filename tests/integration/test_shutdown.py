"""Graceful shutdown and the request-head limits, on a real `gateway serve` process.

SIGTERM: the listener closes at once (new connections are refused), a stream already
running finishes within `server.shutdown_grace_s`, and the process exits 0; a stream
longer than the grace is cut and the process exits all the same.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import anthropic
import httpx
import httpx2  # the anthropic SDK's HTTP client
import pytest

from bench.harness import free_port, wait_ready
from tests.integration.conftest import ClientFactory

MODEL = "claude-sonnet-4-6"  # 75 output tokens/s in realistic latency


@pytest.fixture
def slow_emulator_url(quiet_realistic_emulator_url: str) -> str:
    """Sleeps the modelled times: a reply of N words streams for about N/60 seconds."""
    return quiet_realistic_emulator_url


@contextmanager
def gateway_popen(
    upstream: str, grace_s: int, **env: str
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`gateway serve` as a process the test can signal; yields it and its base URL."""
    port = free_port()
    settings = {
        "GATEWAY_SERVER__START_EMULATOR": "false",
        "GATEWAY_PROVIDERS__ANTHROPIC__BASE_URL": upstream,
        "GATEWAY_SERVER__SHUTDOWN_GRACE_S": str(grace_s),
        "GATEWAY_METERING__CALL_LOG": "off",
        **env,
    }
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
    command = [sys.executable, "-m", "gateway", "serve", "--port", str(port)]
    process = subprocess.Popen(
        command, env={**os.environ, **settings}, stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(process, url + "/healthz", log=log)
        yield process, url
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()
        log.close()


def reply_of(words: int) -> list[dict[str, str]]:
    text = " ".join(f"word{i}" for i in range(words))
    return [{"role": "user", "content": f"REPLY: {text}"}]


def refused(url: str) -> bool:
    try:
        httpx.get(url + "/healthz", timeout=2)
    except httpx.ConnectError:
        return True
    return False


def test_sigterm_lets_a_running_stream_finish(
    slow_emulator_url: str, make_client: ClientFactory, api_key: str
) -> None:
    grace_s = 15
    with gateway_popen(slow_emulator_url, grace_s) as (process, url):
        client = make_client(url, api_key, timeout=30)
        with client.messages.stream(model=MODEL, max_tokens=2000, messages=reply_of(150)) as stream:
            events = iter(stream)
            while next(events).type != "text":  # the stream has begun: a token is out
                pass
            process.send_signal(signal.SIGTERM)
            terminated = time.monotonic()
            time.sleep(0.5)
            assert refused(url), "the gateway still accepts connections after SIGTERM"
            for _ in events:
                pass
            message = stream.get_final_message()
        assert message.stop_reason == "end_turn"
        text = "".join(block.text for block in message.content if block.type == "text")
        assert text.split() == [f"word{i}" for i in range(150)]
        assert time.monotonic() - terminated > 1, "the stream was not long enough to prove it"
        assert process.wait(timeout=grace_s) == 0
        assert time.monotonic() - terminated < grace_s


def test_a_stream_longer_than_the_grace_is_cut_and_the_process_exits(
    slow_emulator_url: str, make_client: ClientFactory, api_key: str
) -> None:
    grace_s = 1
    with gateway_popen(slow_emulator_url, grace_s) as (process, url):
        client = make_client(url, api_key, timeout=30)
        with client.messages.stream(model=MODEL, max_tokens=4000, messages=reply_of(600)) as stream:
            events = iter(stream)
            while next(events).type != "text":
                pass
            process.send_signal(signal.SIGTERM)
            terminated = time.monotonic()
            with pytest.raises((anthropic.APIConnectionError, httpx2.TransportError)):
                list(events)  # cut: the stream never reaches message_stop
        assert process.wait(timeout=grace_s + 5) == 0
        assert time.monotonic() - terminated < grace_s + 5


# --- the request head --------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited_gateway_url(emulator_url: str) -> Iterator[str]:
    env = {"GATEWAY_SERVER__MAX_HEADER_BYTES": "8192", "GATEWAY_SERVER__MAX_HEADERS": "20"}
    with gateway_popen(emulator_url, 5, **env) as (_, url):
        yield url


def raw_request(url: str, head: bytes) -> bytes:
    """Sends `head` as is and reads until the server closes or answers."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        with suppress(BrokenPipeError, ConnectionResetError):  # it may close mid-send
            sock.sendall(head)
        return sock.recv(65536)


def test_a_head_over_the_byte_limit_gets_431(limited_gateway_url: str) -> None:
    big = b"x-padding: " + b"a" * 20_000 + b"\r\n"
    answer = raw_request(
        limited_gateway_url, b"GET /healthz HTTP/1.1\r\nhost: a\r\n" + big + b"\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_header_line_that_never_ends_gets_431(limited_gateway_url: str) -> None:
    """No complete header ever arrives: the limit holds on the bytes buffered, not parsed."""
    answer = raw_request(
        limited_gateway_url, b"GET /healthz HTTP/1.1\r\nx-padding: " + b"a" * 50_000
    )
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_too_many_headers_get_431(limited_gateway_url: str) -> None:
    many = b"".join(b"x-h%d: v\r\n" % i for i in range(30))
    answer = raw_request(
        limited_gateway_url, b"GET /healthz HTTP/1.1\r\nhost: a\r\n" + many + b"\r\n"
    )
    assert answer.startswith(b"HTTP/1.1 431 ")


def test_a_head_within_the_limits_is_served(limited_gateway_url: str) -> None:
    some = b"".join(b"x-h%d: %s\r\n" % (i, b"v" * 200) for i in range(15))
    head = b"GET /healthz HTTP/1.1\r\nhost: a\r\n" + some + b"connection: close\r\n\r\n"
    assert raw_request(limited_gateway_url, head).startswith(b"HTTP/1.1 200 ")
    # and an SDK-sized request keeps working on a kept-alive connection
    with httpx.Client(base_url=limited_gateway_url) as client:
        for _ in range(3):
            assert client.get("/healthz", headers={"x-a": "b" * 1000}).status_code == 200
