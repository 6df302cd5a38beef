"""Slow and abusive clients against a real `gateway serve`, on raw loopback sockets.

The gateway runs with short client-edge timeouts (2 s) so each case is quick; every wait in
the tests is a generous socket deadline (30 s), never a timing assertion: a case fails if
the gateway never answers or never closes, not if it is slow to. Also here: the gateway's
and the web framework's own errors in the provider's envelope, model names that cannot be
echoed into a header, a Content-Type in capitals, and which headers cross the gateway.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from contextlib import suppress

import httpx
import pytest

from tests.integration.scripted_upstream import ScriptedUpstream, scripted_upstream
from tests.integration.servers import gateway

DEADLINE_S = 30.0  # what a socket waits for the gateway before the case fails
SHORT = {
    "GATEWAY_SERVER__HEAD_TIMEOUT_S": "2",
    "GATEWAY_SERVER__BODY_TIMEOUT_S": "2",
    "GATEWAY_SERVER__IDLE_TIMEOUT_S": "2",
    "GATEWAY_SERVER__MAX_BODY_BYTES": "1000000",
}
ANTHROPIC = {"x-api-key": "sk-ant-abuse", "anthropic-version": "2023-06-01"}
MODEL = "claude-haiku-4-5"
MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def edge_url(emulator_url: str) -> Iterator[str]:
    with gateway(emulator_url, env=SHORT) as url:
        yield url


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=DEADLINE_S)
    return sock


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the gateway sends until it closes the connection (a hang: socket.timeout)."""
    answer = b""
    with suppress(ConnectionResetError):
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def split(answer: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *lines = head.split(b"\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def assert_anthropic_error(body: bytes, error_type: str | None = None) -> None:
    error = json.loads(body)
    assert error["type"] == "error", error
    assert error["request_id"].startswith("gw_")
    assert isinstance(error["error"]["message"], str)
    if error_type is not None:
        assert error["error"]["type"] == error_type, error


def assert_openai_error(body: bytes) -> None:
    error = json.loads(body)["error"]
    assert isinstance(error["message"], str)
    assert isinstance(error["type"], str)


# --- timeouts and sizes ------------------------------------------------------------------


def test_a_slowloris_head_gets_408_and_is_closed(edge_url: str) -> None:
    """Header bytes trickle in forever: the head timeout runs from the first byte."""
    with connect(edge_url) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: a\r\n")
        sock.settimeout(0.5)
        answer = b""
        for i in range(int(DEADLINE_S / 0.5)):  # a byte every half second, up to the deadline
            try:
                sock.sendall(b"x-slow-%d: a\r\n" % i)
            except (BrokenPipeError, ConnectionResetError):
                break
            try:
                answer = sock.recv(65536)
                break
            except TimeoutError:
                continue
        sock.settimeout(DEADLINE_S)
        answer += read_until_closed(sock)
    status, headers, body = split(answer)
    assert status.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert headers[b"connection"] == b"close"
    assert_anthropic_error(body, "timeout_error")


def test_a_withheld_last_body_byte_gets_408_and_is_closed(edge_url: str) -> None:
    body = json.dumps({"model": MODEL, "max_tokens": 5, "messages": MESSAGES}).encode()
    body += b" " * (200_000 - len(body))
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: a\r\nauthorization: Bearer sk-abuse\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    with connect(edge_url) as sock:
        sock.sendall(head + body[:-1])
        answer = read_until_closed(sock)
    status, headers, payload = split(answer)
    assert status.startswith(b"HTTP/1.1 408 "), answer[:200]
    assert headers[b"connection"] == b"close"
    assert_openai_error(payload)  # in the envelope of the path's provider


def test_a_declared_length_over_the_limit_is_refused_before_reading(edge_url: str) -> None:
    head = (
        b"POST /v1/messages HTTP/1.1\r\nhost: a\r\nx-api-key: sk-ant-abuse\r\n"
        b"content-type: application/json\r\ncontent-length: 1000000000000\r\n\r\n"
    )
    with connect(edge_url) as sock:
        sock.sendall(head)
        answer = read_until_closed(sock)
    status, headers, body = split(answer)
    # A 408 would mean the gateway waited for the body, past the body timeout.
    assert status.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert headers[b"connection"] == b"close"
    assert_anthropic_error(body, "request_too_large")


def test_a_client_still_sending_its_body_reads_the_413_not_a_reset(edge_url: str) -> None:
    """The gateway refuses at the head and lingers: what the client still sends is read
    and dropped, so its sends succeed and the answer is there to read."""
    body = b" " * 16_000_000  # over the 1 MB limit, and more than socket buffers hold
    head = (
        b"POST /v1/messages HTTP/1.1\r\nhost: a\r\nx-api-key: sk-ant-abuse\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    with connect(edge_url) as sock:
        sock.sendall(head + body)
        answer = read_until_closed(sock)
    status, _, payload = split(answer)
    assert status.startswith(b"HTTP/1.1 413 "), answer[:200]
    assert_anthropic_error(payload, "request_too_large")


def test_a_connection_that_never_sends_a_request_is_closed(edge_url: str) -> None:
    with connect(edge_url) as sock:
        assert read_until_closed(sock) == b""


def test_a_kept_alive_connection_is_closed_once_idle(edge_url: str) -> None:
    with connect(edge_url) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: a\r\n\r\n")
        answer = read_until_closed(sock)  # the response, then the close of the idle connection
    assert answer.startswith(b"HTTP/1.1 200 ")
    assert answer.endswith(b'{"status":"ok"}')


@pytest.fixture(scope="module")
def capped_url(emulator_url: str) -> Iterator[str]:
    """A gateway with small caps and long timeouts: held connections stay held."""
    env = {
        "GATEWAY_SERVER__MAX_CONNECTIONS": "3",
        "GATEWAY_SERVER__MAX_INCOMING_BODY_BYTES": "300000",
        "GATEWAY_SERVER__IDLE_TIMEOUT_S": "60",
        "GATEWAY_SERVER__BODY_TIMEOUT_S": "60",
    }
    with gateway(emulator_url, env=env) as url:
        yield url


def wait_until_served(url: str) -> None:
    """Once what a test held is gone, requests are served again."""
    deadline = time.monotonic() + DEADLINE_S
    while httpx.get(url + "/healthz", headers={"connection": "close"}).status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_connections_past_the_cap_get_503_in_the_envelope(capped_url: str) -> None:
    held = [connect(capped_url) for _ in range(3)]
    try:
        with connect(capped_url) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: a\r\n\r\n")
            answer = read_until_closed(sock)
        status, _, body = split(answer)
        assert status.startswith(b"HTTP/1.1 503 "), answer[:200]
        assert_anthropic_error(body, "overloaded_error")
    finally:
        for sock in held:
            sock.close()
    wait_until_served(capped_url)


def test_bodies_past_the_incoming_total_get_503_at_once(capped_url: str) -> None:
    """One slow upload holds 200 kB of the 300 kB being received: the next 200 kB one waits
    for nothing, it is refused (and the first still completes)."""
    body = json.dumps({"model": MODEL, "max_tokens": 5, "messages": MESSAGES}).encode()
    body += b" " * (200_000 - len(body))
    head = (
        b"POST /v1/messages HTTP/1.1\r\nhost: a\r\nx-api-key: sk-ant-abuse\r\n"
        b"anthropic-version: 2023-06-01\r\nconnection: close\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body)
    )
    with connect(capped_url) as slow:
        slow.sendall(head + body[:1000])
        # The gateway counts the slow body once it has its head: a second request that does
        # not fit is refused; retried until the first is counted (bounded by the deadline).
        deadline = time.monotonic() + DEADLINE_S
        while True:
            with connect(capped_url) as sock:
                sock.sendall(head + body)
                status, _, answer = split(read_until_closed(sock))
            if status.startswith(b"HTTP/1.1 503 "):
                break
            assert time.monotonic() < deadline, status
        assert_anthropic_error(answer, "overloaded_error")
        slow.sendall(body[1000:])
        status, _, _ = split(read_until_closed(slow))
    assert status.startswith(b"HTTP/1.1 200 "), status
    wait_until_served(capped_url)


# --- errors of the server and the framework, in the envelope ------------------------------


def test_framework_errors_are_in_the_paths_envelope(edge_url: str) -> None:
    with httpx.Client(base_url=edge_url, headers={"connection": "close"}) as client:
        missing = client.get("/nope", headers=ANTHROPIC)
        assert missing.status_code == 404
        assert_anthropic_error(missing.content, "not_found_error")
        wrong_method = client.post("/healthz")
        assert wrong_method.status_code == 405
        assert wrong_method.headers["allow"] == "GET"
        assert_anthropic_error(wrong_method.content)
        openai = client.get("/v1/embeddings", headers={"authorization": "Bearer sk-abuse"})
        assert openai.status_code == 404
        assert_openai_error(openai.content)
        assert openai.headers["x-request-id"].startswith("gw_")


def test_the_servers_own_400_and_431_are_in_the_envelope(edge_url: str) -> None:
    with connect(edge_url) as sock:
        sock.sendall(b"BREW /v1/messages HTCPCP/1.0\r\n\r\n")
        status, _, body = split(read_until_closed(sock))
    assert status.startswith(b"HTTP/1.1 400 ")
    assert_anthropic_error(body, "invalid_request_error")
    with connect(edge_url) as sock:
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(b"GET /v1/responses HTTP/1.1\r\nx-pad: " + b"a" * 100_000 + b"\r\n\r\n")
        status, _, body = split(read_until_closed(sock))
    assert status.startswith(b"HTTP/1.1 431 ")
    assert_openai_error(body)


# --- what reaches a response header ------------------------------------------------------


@pytest.mark.parametrize(
    "model", [MODEL + "\u0000", MODEL + "\r\nx-injected: 1", MODEL + "\u007f", "claude-haïku", ""]
)
@pytest.mark.parametrize("path", ["/v1/messages", "/v1/chat/completions"])
def test_a_model_name_unfit_for_a_header_gets_400(edge_url: str, model: str, path: str) -> None:
    body = {"model": model, "max_tokens": 5, "messages": MESSAGES}
    headers = {**ANTHROPIC, "authorization": "Bearer sk-abuse", "connection": "close"}
    response = httpx.post(edge_url + path, json=body, headers=headers, timeout=DEADLINE_S)
    assert response.status_code == 400, response.text
    assert "x-injected" not in response.headers
    if path == "/v1/messages":
        assert_anthropic_error(response.content, "invalid_request_error")
    else:
        assert_openai_error(response.content)


def test_content_type_is_matched_case_insensitively(edge_url: str) -> None:
    body = json.dumps({"model": MODEL, "max_tokens": 5, "messages": MESSAGES})
    for content_type in ("APPLICATION/JSON", "Application/Json; Charset=UTF-8"):
        headers = {**ANTHROPIC, "content-type": content_type, "connection": "close"}
        response = httpx.post(edge_url + "/v1/messages", content=body, headers=headers)
        assert response.status_code == 200, (content_type, response.text)
    headers = {**ANTHROPIC, "content-type": "application/jsonx", "connection": "close"}
    response = httpx.post(edge_url + "/v1/messages", content=body, headers=headers)
    assert response.status_code == 415


def sent_model(upstream: ScriptedUpstream) -> str:
    model: str = json.loads(upstream.requests[-1][2])["model"]
    return model


def test_headers_that_must_not_cross_the_gateway() -> None:
    """An upstream that is not the emulator: no x-emulator-* reaches it, no field a
    Connection header names crosses either way, and its own x-gateway-* stay behind."""
    reply = json.dumps({"id": "msg_1", "type": "message", "model": MODEL, "content": []})
    env = {"GATEWAY_PROVIDERS__ANTHROPIC__EMULATOR": "false"}
    with scripted_upstream() as (upstream_url, upstream), gateway(upstream_url, env=env) as url:
        upstream.script.headers = [
            (b"content-type", b"application/json"),
            (b"connection", b"x-upstream-hop"),
            (b"x-upstream-hop", b"1"),
            (b"x-gateway-model", b"upstream-says-so"),
            (b"x-gateway-cost-usd", b"0.000000"),
            (b"request-id", b"req_1"),
        ]
        upstream.script.chunks = [reply.encode()]
        headers = {
            **ANTHROPIC,
            "x-emulator-fault": "529",
            "connection": "keep-alive, x-client-hop",
            "x-client-hop": "1",
        }
        body = {"model": MODEL, "max_tokens": 5, "messages": MESSAGES}
        response = httpx.post(url + "/v1/messages", json=body, headers=headers)
    assert response.status_code == 200, response.text
    _, sent, _ = upstream.requests[-1]
    names = {name for name, _ in sent}
    assert not any(name.startswith(b"x-emulator-") for name in names), names
    assert b"x-client-hop" not in names
    assert "x-upstream-hop" not in response.headers
    assert response.headers.get_list("x-gateway-model") == [sent_model(upstream)]
    assert "x-gateway-cost-usd" not in response.headers  # the reply had no usage to price
    assert response.headers["request-id"] == "req_1"


# The budget review, F: an answer from the head alone closes, and the linger is bounded.


@pytest.fixture(scope="module")
def lingering_url(emulator_url: str) -> Iterator[str]:
    """A long linger, bounded in bytes: the bytes, not the time, end it."""
    env = {"GATEWAY_SERVER__LINGER_S": "60", "GATEWAY_SERVER__LINGER_MAX_BYTES": "1000000"}
    with gateway(emulator_url, env=env) as url:
        yield url


@pytest.mark.parametrize("path", [b"/v1/nowhere", b"/v1/messages"])
def test_an_answer_before_the_body_says_close_and_stops_reading_past_a_bound(
    lingering_url: str, path: bytes
) -> None:
    """404 (no such route) and 401 (a gateway key no one issued) are answered from the head;
    a client declaring a 10**12-byte body may not keep the gateway reading it."""
    head = (
        b"POST %s HTTP/1.1\r\nhost: a\r\nx-api-key: tg-no-such-key\r\n"
        b"content-type: application/json\r\ncontent-length: 1000000000000\r\n\r\n" % path
    )
    chunk = b" " * 65536
    sent = 0
    answer = b""
    with connect(lingering_url) as sock:
        sock.sendall(head)
        answer = sock.recv(65536)  # the answer comes before any of the body
        with suppress(BrokenPipeError, ConnectionResetError):
            while sent < 200_000_000:  # bounded: a gateway reading it all fails the case
                sock.sendall(chunk)
                sent += len(chunk)
    status, headers, _ = split(answer)
    assert status.split()[1] in (b"401", b"404"), answer[:200]
    assert headers[b"connection"] == b"close"
    # 1 MB dropped, and what the socket buffers held on the way.
    assert sent < 50_000_000, sent
