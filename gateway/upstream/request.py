"""What goes to a provider: the request's header lines, and each target's parsed URL.

The header lines are those httpx's `Request(..., content=body)` sends, in its order, built
without it (httpx's way re-parses every header twice more, ~15 µs a call): Host first,
the caller's headers, `accept-encoding: identity` (usage is read from the bytes), then the
body's Content-Length; a bodiless POST, PUT or PATCH gets `Content-Length: 0` after Host.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from gateway.wire.headers import RawHeaders
from gateway.wire.splice import Body

MAX_CACHED_URLS = 1024
MAX_CACHED_TARGET_CHARS = 512  # a path with a long query string is parsed, not kept
IDENTITY = (b"accept-encoding", b"identity")

_SENDING = frozenset({"POST", "PUT", "PATCH"})  # httpx sends Content-Length: 0 for these
_FRAMING = frozenset({b"host", b"content-length", b"transfer-encoding"})
_FRAMING_LENGTHS = frozenset(len(name) for name in _FRAMING)  # only these names are lowered

Url = TypeVar("Url")


def request_head(method: str, netloc: bytes, headers: RawHeaders, body: Body) -> RawHeaders:
    """The header lines of a request for `body` to the origin at `netloc`."""
    given = {name.lower() for name, _ in headers if len(name) in _FRAMING_LENGTHS} & _FRAMING
    first = [] if b"host" in given else [(b"Host", netloc)]
    last = []
    if body:
        if b"content-length" not in given:
            last = [(b"Content-Length", str(len(body)).encode())]
    elif method in _SENDING and not given & {b"content-length", b"transfer-encoding"}:
        first.append((b"Content-Length", b"0"))
    return [*first, *headers, IDENTITY, *last]


class Urls(Generic[Url]):
    """Each provider's URL for a target, parsed once: clients call a handful of paths over
    and over, and a parse costs tens of µs."""

    def __init__(self, origins: dict[str, str], parse: Callable[[str], Url]) -> None:
        self._origins = origins
        self._parse = parse
        self._known: dict[tuple[str, str], Url] = {}

    def get(self, provider: str, target: str) -> Url:
        key = (provider, target)
        url = self._known.get(key)
        if url is None:
            url = self._parse(self._origins[provider] + target)
            if len(self._known) < MAX_CACHED_URLS and len(target) <= MAX_CACHED_TARGET_CHARS:
                self._known[key] = url
        return url
