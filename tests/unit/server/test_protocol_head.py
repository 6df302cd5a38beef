"""The protocol's header callback: uvicorn's own `on_header` (the same header list and
100-continue state) with the head's line and byte count in front of it."""

from __future__ import annotations

import random
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from gateway.server.protocol import COPIED, EdgeProtocol, HeadTooLarge

NAMES = [b"Host", b"content-type", b"X-Api-Key", b"EXPECT", b"expect", b"Expect", b"x-\xe9"]
VALUES = [b"", b"100-continue", b"100-Continue", b"100-CONTINUE ", b"a b", b"\xff", b"x" * 40]


def edge(max_head_bytes: int = 1 << 20, max_headers: int = 1000) -> Any:
    protocol: Any = object.__new__(EdgeProtocol)
    protocol.headers, protocol.expect_100_continue = [], False
    protocol.head_bytes = protocol.header_count = 0
    protocol.max_head_bytes, protocol.max_headers = max_head_bytes, max_headers
    protocol.head_too_large = False
    return protocol


def uvicorns() -> Any:
    protocol: Any = object.__new__(HttpToolsProtocol)
    protocol.headers, protocol.expect_100_continue = [], False
    return protocol


def test_the_copy_is_the_one_in_use_under_this_uvicorn() -> None:
    assert COPIED


def test_each_line_leaves_what_uvicorns_on_header_leaves() -> None:
    rng = random.Random(7)
    for _ in range(500):
        lines = [(rng.choice(NAMES), rng.choice(VALUES)) for _ in range(rng.randrange(12))]
        ours, theirs = edge(), uvicorns()
        for name, value in lines:
            EdgeProtocol.on_header(ours, name, value)
            HttpToolsProtocol.on_header(theirs, name, value)
            assert (ours.headers, ours.expect_100_continue) == (
                theirs.headers,
                theirs.expect_100_continue,
            )
        assert ours.header_count == len(lines)
        assert ours.head_bytes == sum(len(name) + len(value) + 4 for name, value in lines)


@pytest.mark.parametrize(
    ("max_head_bytes", "max_headers", "refused_at"), [(27, 100, 3), (1000, 3, 4)]
)
def test_a_line_past_either_limit_is_refused(
    max_head_bytes: int, max_headers: int, refused_at: int
) -> None:
    protocol = edge(max_head_bytes, max_headers)
    for line in range(1, refused_at):
        EdgeProtocol.on_header(protocol, b"name", b"value")  # 13 bytes a line
        assert len(protocol.headers) == line
    with pytest.raises(HeadTooLarge):
        EdgeProtocol.on_header(protocol, b"name", b"value")
    assert protocol.head_too_large
    assert len(protocol.headers) == refused_at - 1
