"""Whitespace before a header's value (`name:   value`) is not in the head's count (the
parser skips it; the callbacks never see it), but is in the bytes a head still arriving is
bounded by, which leave 39 bytes for it beyond the method, version and line ends
(HEAD_FRAMING): a few spaces are served however the head arrives; a head at the limit padded
with more is cut with 431 when it arrives in pieces, as docs/limits.md says."""

from __future__ import annotations

import asyncio

import pytest

from tests.unit.server.test_protocol_pieces import AT_LIMIT, URL, fed, loop

__all__ = ["loop"]  # the fixture, used by name


def _padded(spaces: int) -> bytes:
    """test_protocol_pieces.head(AT_LIMIT), its value after `spaces` spaces (counted: none)."""
    start = b"GET " + URL + b" HTTP/1.1\r\nHost: x\r\nx-pad:" + b" " * spaces
    return start + b"p" * AT_LIMIT + b"\r\n\r\n"


@pytest.mark.parametrize("spaces", [1, 40])
def test_a_little_whitespace_is_served_in_any_pieces(
    loop: asyncio.AbstractEventLoop, spaces: int
) -> None:
    for piece in (1, 5, 1 << 20):
        assert fed(loop, _padded(spaces), piece) == b"HTTP/1.1 200 OK"


@pytest.mark.parametrize("spaces", [60, 1000])
def test_more_whitespace_than_the_allowance_is_cut_in_pieces(
    loop: asyncio.AbstractEventLoop, spaces: int
) -> None:
    assert fed(loop, _padded(spaces), 5).startswith(b"HTTP/1.1 431")
