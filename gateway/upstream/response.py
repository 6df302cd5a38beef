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

    __slots__ = ("headers", "provider", "silence_s", "status_code")

    def __init__(
        self, status_code: int, headers: HeaderLines, provider: str, silence_s: float
    ) -> None:
        self.status_code = status_code
        self.headers = headers  # as received: names in their case, repeats kept
        self.provider = provider
        self.silence_s = silence_s  # the read timeout, for the error that reports it

    @property
    def is_success(self) -> bool:
        return 200 <= self.status_code < 300

    def header(self, name: bytes) -> bytes | None:
        """A header's value (several joined by ", ", as httpx's `get` does); `name` is
        lower case."""
        values = [value for key, value in self.headers if key.lower() == name]
        if not values:
            return None
        return values[0] if len(values) == 1 else b", ".join(values)

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
