"""A response's header lines as the relay reads them: the names lowered once, a header's
value, and the client's lines (gateway/relay.py) equal to wire/headers.py's filter."""

from __future__ import annotations

import pytest

from gateway.relay import _start, client_headers
from gateway.upstream.response import Response, lowered
from gateway.wire.headers import client_response_headers

OWN = [(b"x-gateway-request-id", b"req_1"), (b"x-gateway-model", b"m")]
PROVIDER = [
    (b"Content-Type", b"application/json"),
    (b"Anthropic-Ratelimit-Requests-Limit", b"4000"),
    (b"request-id", b"req_011CX"),
    (b"Date", b"Tue, 01 Dec 2026 03:00:00 GMT"),
]

CASES = [
    [],
    PROVIDER,
    [*PROVIDER, (b"Content-Length", b"12")],
    [(b"Content-Length", b"12"), *PROVIDER, (b"content-length", b"12")],
    [*PROVIDER, (b"Transfer-Encoding", b"chunked"), (b"Content-Length", b"1")],
    [*PROVIDER, (b"Connection", b"keep-alive, X-Drop"), (b"x-drop", b"1"), (b"X-Keep", b"2")],
    [*PROVIDER, (b"Connection", b", ,")],
    [*PROVIDER, (b"X-Gateway-Cost-Usd", b"1"), (b"x-gateway-", b"")],
    [(b"xx-gateway-a", b"1"), (b"x-gatewaya", b"2")],
    [(b"Keep-Alive", b"timeout=5"), (b"TE", b"trailers"), (b"Upgrade", b"h2")],
    [(b"odd\nName", b"v"), (b"Content-Length", b"3")],
    [(b"odd\nx-gateway-a", b"v"), (b"A", b"1")],
    [(b"\xc9t\xc9", b"v"), (b"", b"")],
]


@pytest.mark.parametrize("headers", CASES)
def test_the_client_gets_what_the_wire_filter_keeps(headers: list[tuple[bytes, bytes]]) -> None:
    response = Response(200, headers, "anthropic", 1.0)
    expected = client_response_headers(headers, OWN, keep_length=False)
    assert client_headers(response, OWN) == expected
    assert client_headers(response, OWN) == expected  # the lowered names are kept
    start = _start(Response(200, headers, "anthropic", 1.0), OWN)  # the relay's own frame
    assert start == {"type": "http.response.start", "status": 200, "headers": expected}


@pytest.mark.parametrize("headers", CASES)
def test_names_are_lowered_as_one_by_one(headers: list[tuple[bytes, bytes]]) -> None:
    names, values = lowered(headers)
    assert names == [name.lower() for name, _ in headers]
    assert list(values) == [value for _, value in headers]


@pytest.mark.parametrize("headers", CASES)
def test_a_header_is_found_as_httpx_gets_it(headers: list[tuple[bytes, bytes]]) -> None:
    response = Response(200, headers, "anthropic", 1.0)
    for name in (b"content-length", b"content-type", b"x-drop", b"absent", b"odd\nname"):
        found = [value for key, value in headers if key.lower() == name]
        expected = None if not found else b", ".join(found)
        assert response.header(name) == expected
