"""The request head's limits against a real `gateway serve`, on raw loopback sockets, to the
exact line and byte: `server.max_headers` header lines and `server.max_header_bytes` of the
URL plus each line's `name: value\\r\\n` are served, one more is 431 and a close; repeated
names and names in any case each count as a line, a flood sent in pieces counts the same as
one sent at once, and the next request on a kept-alive connection starts from nothing.

Every wait is a socket deadline, never a timing assertion."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import suppress

import pytest

from tests.integration.servers import gateway

DEADLINE_S = 30.0
MAX_HEADERS = 12
MAX_HEAD_BYTES = 2048
LIMITS = {
    "GATEWAY_SERVER__MAX_HEADERS": str(MAX_HEADERS),
    "GATEWAY_SERVER__MAX_HEADER_BYTES": str(MAX_HEAD_BYTES),
    "GATEWAY_SERVER__HEAD_TIMEOUT_S": "5",
    "GATEWAY_SERVER__IDLE_TIMEOUT_S": "5",
}
URL = b"/healthz"


@pytest.fixture(scope="module")
def limited_url(emulator_url: str) -> Iterator[str]:
    with gateway(emulator_url, env=LIMITS) as url:
        yield url


def _head(lines: list[tuple[bytes, bytes]], url: bytes = URL) -> bytes:
    return b"GET " + url + b" HTTP/1.1\r\n" + b"".join(n + b": " + v + b"\r\n" for n, v in lines)


def _counted(lines: list[tuple[bytes, bytes]], url: bytes = URL) -> int:
    """The head's bytes as the gateway counts them: the URL, and each line's."""
    return len(url) + sum(len(n) + len(v) + 4 for n, v in lines)


def _status(url: str, data: bytes, piece: int | None = None) -> bytes:
    """The status line of the first answer to `data` (sent at once, or `piece` bytes at a
    time), and whether the gateway then closed."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=DEADLINE_S) as sock:
        with suppress(BrokenPipeError, ConnectionResetError):
            if piece is None:
                sock.sendall(data)
            else:
                for at in range(0, len(data), piece):
                    sock.sendall(data[at : at + piece])
        answer = b""
        with suppress(ConnectionResetError):
            while b"\r\n\r\n" not in answer and (chunk := sock.recv(65536)):
                answer += chunk
    return answer.split(b"\r\n", 1)[0]


def _lines(count: int, name: bytes = b"x-h") -> list[tuple[bytes, bytes]]:
    return [(name + str(i).encode(), b"v") for i in range(count)]


@pytest.mark.parametrize("piece", [None, 1, 7])
def test_the_header_count_is_exact(limited_url: str, piece: int | None) -> None:
    at_limit = [(b"Host", b"x"), *_lines(MAX_HEADERS - 1)]
    assert _status(limited_url, _head(at_limit) + b"\r\n", piece).startswith(b"HTTP/1.1 200")
    over = [*at_limit, (b"x-one-more", b"v")]
    assert _status(limited_url, _head(over) + b"\r\n", piece).startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize(
    "name", [b"x-same", b"X-SAME", b"Host"], ids=["repeated", "capitals", "host"]
)
def test_repeated_names_in_any_case_each_count(limited_url: str, name: bytes) -> None:
    lines = [(b"host", b"x")] + [(name, b"v")] * (MAX_HEADERS - 1)
    status = _status(limited_url, _head(lines) + b"\r\n")
    assert not status.startswith(b"HTTP/1.1 431")
    lines.append((name.swapcase(), b"v"))
    assert _status(limited_url, _head(lines) + b"\r\n").startswith(b"HTTP/1.1 431")


@pytest.mark.parametrize("piece", [None, 5])
def test_the_head_bytes_are_exact(limited_url: str, piece: int | None) -> None:
    base = [(b"Host", b"x")]
    pad = MAX_HEAD_BYTES - _counted(base) - len(b"x-pad") - 4
    at_limit = [*base, (b"x-pad", b"p" * pad)]
    assert _counted(at_limit) == MAX_HEAD_BYTES
    assert _status(limited_url, _head(at_limit) + b"\r\n", piece).startswith(b"HTTP/1.1 200")
    over = [*base, (b"x-pad", b"p" * (pad + 1))]
    assert _status(limited_url, _head(over) + b"\r\n", piece).startswith(b"HTTP/1.1 431")


def test_the_url_counts_against_the_head_bytes(limited_url: str) -> None:
    base = [(b"Host", b"x")]
    query = MAX_HEAD_BYTES - _counted(base) - 1
    at_limit = URL + b"?" + b"q" * query
    assert _counted(base, at_limit) == MAX_HEAD_BYTES
    assert _status(limited_url, _head(base, at_limit) + b"\r\n").startswith(b"HTTP/1.1 200")
    over = at_limit + b"q"
    assert _status(limited_url, _head(base, over) + b"\r\n").startswith(b"HTTP/1.1 431")


def test_a_flood_of_lines_is_refused(limited_url: str) -> None:
    flood = _head([(b"Host", b"x"), *_lines(5000)]) + b"\r\n"
    assert _status(limited_url, flood).startswith(b"HTTP/1.1 431")
    assert _status(limited_url, flood, 3).startswith(b"HTTP/1.1 431")


def test_each_request_on_a_connection_counts_from_nothing(limited_url: str) -> None:
    """Two requests each at the count's limit on one connection: both answered."""
    one = _head([(b"Host", b"x"), *_lines(MAX_HEADERS - 1)]) + b"\r\n"
    host, port = limited_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=DEADLINE_S) as sock:
        sock.sendall(one + one)
        answer = b""
        while answer.count(b"HTTP/1.1 ") < 2 and (chunk := sock.recv(65536)):
            answer += chunk
    assert answer.count(b"HTTP/1.1 200") == 2


def test_blank_lines_after_a_response_start_the_head_clock(limited_url: str) -> None:
    """A blank line after a response (which the parser skips) stops the idle timer, so it
    must start the head's: the kept-alive connection is answered 408 and closed, not held
    (before, it was held past any deadline, for as long as the client sent such lines)."""
    host, port = limited_url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=DEADLINE_S) as sock:
        sock.sendall(_head([(b"Host", b"x")]) + b"\r\n")
        assert _whole_response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"\r\n")
        answer = b""
        with suppress(ConnectionResetError):
            while b"HTTP/1.1 408" not in answer and (chunk := sock.recv(65536)):
                answer += chunk
    assert b"HTTP/1.1 408" in answer


def _whole_response(sock: socket.socket) -> bytes:
    """One response, read to the end of its body (its content-length)."""
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, body = answer.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head
