"""The request's header lines as sent (request_head, as_sent) and a response's header
lookup, against the former code over a grid of header lists: the same lines, the same
merged map (names, order, values, encoding), the same value."""

from __future__ import annotations

import itertools

import pytest
from multidict import CIMultiDict

from gateway.upstream.direct import as_sent
from gateway.upstream.request import request_head
from gateway.upstream.response import Response
from gateway.wire.headers import RawHeaders
from gateway.wire.splice import Body

_FRAMING = frozenset({b"host", b"content-length", b"transfer-encoding"})
_SENDING = frozenset({"POST", "PUT", "PATCH"})
IDENTITY = (b"accept-encoding", b"identity")


def former_request_head(method: str, netloc: bytes, headers: RawHeaders, body: Body) -> RawHeaders:
    given = {key for key in (name.lower() for name, _ in headers) if key in _FRAMING}
    first = [] if b"host" in given else [(b"Host", netloc)]
    last = []
    if body:
        if b"content-length" not in given:
            last = [(b"Content-Length", str(len(body)).encode())]
    elif method in _SENDING and not given & {b"content-length", b"transfer-encoding"}:
        first.append((b"Content-Length", b"0"))
    return [*first, *headers, IDENTITY, *last]


def former_merged(head: RawHeaders, encoding: str) -> CIMultiDict[str]:
    pairs = [(name.lower().decode(encoding), value.decode(encoding)) for name, value in head]
    merged = dict(pairs)
    if len(merged) < len(pairs):
        merged = {}
        for key, text in pairs:
            merged[key] = text if key not in merged else f"{merged[key]}, {text}"
    return CIMultiDict(merged)


def former_as_sent(head: RawHeaders) -> CIMultiDict[str]:
    try:
        return former_merged(head, "utf-8")
    except UnicodeDecodeError:
        return former_merged(head, "latin-1")


LINES = [
    (b"Host", b"example.com"),
    (b"HOST", b"other"),
    (b"Content-Length", b"12"),
    (b"transfer-encoding", b"chunked"),
    (b"Anthropic-Version", b"2023-06-01"),
    (b"anthropic-version", b"2024-01-01"),
    (b"x-api-key", b"k\xc3\xa9"),  # UTF-8
    (b"X-Tag", b"caf\xe9"),  # not UTF-8: every line is Latin-1
    (b"X-Name\xe9", b"v"),
    (b"accept", b""),
]
HEADER_LISTS = [list(combo) for size in range(4) for combo in itertools.permutations(LINES, size)]


@pytest.mark.parametrize("headers", HEADER_LISTS[::7] + HEADER_LISTS[:40])
def test_request_head_as_before(headers: RawHeaders) -> None:
    for method, body in itertools.product(
        ["GET", "POST", "PUT", "DELETE"], [b"", b"{}", [b"a", b"bc"]]
    ):
        assert request_head(method, b"h:1", headers, body) == former_request_head(
            method, b"h:1", headers, body
        )


def test_as_sent_as_before() -> None:
    for headers in HEADER_LISTS:
        got, expected = as_sent(headers), former_as_sent(headers)
        assert list(got.items()) == list(expected.items())


class Fixed(Response):
    __slots__ = ()


def former_header(headers: RawHeaders, name: bytes) -> bytes | None:
    names = [key.lower() for key, _ in headers]
    values = [value for _, value in headers]
    if name not in names:
        return None
    if names.count(name) == 1:
        return values[names.index(name)]
    return b", ".join([value for key, value in zip(names, values, strict=True) if key == name])


def test_response_header_as_before() -> None:
    wanted = [b"host", b"content-length", b"anthropic-version", b"x-tag", b"absent"]
    for headers in HEADER_LISTS:
        response = Fixed(200, headers, "anthropic", 1.0)
        for name in wanted:
            assert response.header(name) == former_header(headers, name)


def test_is_success_is_a_2xx_status() -> None:
    for status in (100, 199, 200, 204, 299, 300, 404, 529):
        assert Fixed(status, [], "anthropic", 1.0).is_success == (200 <= status < 300)
