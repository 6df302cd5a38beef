"""A provider's response as the gateway reads it, whichever client fetched it.

The relay needs a status, the raw header lines and the body's bytes as they come: no more
than that crosses from upstream/ to the relay and the cascade. The body is the response
itself, an async iterator of chunks; a body that breaks off raises the gateway's own error
(UpstreamSilent past the read timeout, UpstreamUnavailable for a cut), never a client's.
"""

from __future__ import annotations

from collections.abc import Sequence

from gateway.errors import GatewayError, UpstreamSilent, UpstreamUnavailable

# The most one read of a body returns: aiohttp's read(n) returns what is buffered, up to n, and
# never waits to fill it, so a larger n only means fewer reads (and relayed sends) per body.
CHUNK_BYTES = 64 * 1024

HeaderLines = Sequence[tuple[bytes, bytes]]


class Response:
    """Status, header lines and a one-pass body; `aclose` gives the connection back."""

    __slots__ = (
        "_names",
        "_values",
        "headers",
        "is_success",
        "provider",
        "silence_s",
        "status_code",
    )

    def __init__(
        self, status_code: int, headers: HeaderLines, provider: str, silence_s: float
    ) -> None:
        self.status_code = status_code
        # Read four times a call: kept, not a property's call each time.
        self.is_success = 200 <= status_code < 300
        self.headers = headers  # as received: names in their case, repeats kept
        self.provider = provider
        self.silence_s = silence_s  # the read timeout, for the error that reports it
        self._names: list[bytes] | None = None  # lower case, made on first use
        self._values: tuple[bytes, ...] = ()

    def lowered(self) -> tuple[list[bytes], tuple[bytes, ...]]:
        """The header names in lower case, and the values, in order."""
        names = self._names
        if names is None:
            names, self._values = lowered(self.headers)
            self._names = names
        return names, self._values

    def header(self, name: bytes) -> bytes | None:
        """A header's value (several joined by ", ", as httpx's `get` does); `name` is
        lower case."""
        names, values = self.lowered()
        count = names.count(name)
        if count == 0:
            return None
        if count == 1:
            return values[names.index(name)]
        return b", ".join([value for key, value in zip(names, values, strict=True) if key == name])

    def drained(self) -> bool:
        """Whether the body is known to be over, all of it read (the next read would end
        it): a client that cannot tell says False, and the next read does."""
        return False

    def __aiter__(self) -> Response:
        return self

    async def __anext__(self) -> bytes:
        raise NotImplementedError

    async def aclose(self) -> None:
        raise NotImplementedError

    def broke(self, timed_out: bool) -> GatewayError:
        """What a body that stopped means: silence past the read timeout, or a cut."""
        if timed_out:
            return UpstreamSilent(
                f"{self.provider} stopped sending its response for {self.silence_s:g} s."
            )
        return UpstreamUnavailable(f"{self.provider} closed the connection mid-response")


BodyBroken = (UpstreamSilent, UpstreamUnavailable)  # what iterating a body may raise


def lowered(headers: HeaderLines) -> tuple[list[bytes], tuple[bytes, ...]]:
    """`[name.lower() for name, _ in headers]` and the values: one lower() for all the names
    joined by a newline, which no name from an HTTP parser holds (one that does is lowered
    on its own)."""
    if not headers:
        return [], ()
    names, values = zip(*headers, strict=True)
    joined = b"\n".join(names).lower().split(b"\n")
    if len(joined) != len(names):
        joined = [name.lower() for name in names]
    return joined, values
