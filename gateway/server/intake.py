"""Request bodies as they arrive: each within a size and a time, all of them within a total.

A body is held whole in memory (it is parsed, rewritten, and kept for retries), so what a
client can pin is bounded three ways: one body by `server.max_body_bytes` (a declared
`Content-Length` over it is refused before a byte is read), its arrival by
`server.body_timeout_s` (a client that withholds its last byte is answered 408 and what it
sent is dropped), and the bodies being received at once by `server.max_incoming_body_bytes`
(a request that would go past it is answered 503 at once, its declared length counted
before it arrives). Past any of them the connection is closed: the rest of the body is
never read.

A server may offer `BODY_READY` in the scope's extensions (the gateway's own protocol does,
server/protocol.py): whether a chunk of the body is waiting, so `receive` returns at once.
A body that arrived whole with its head (any small one) is then taken without a timer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import Receive

from gateway.errors import Overloaded, PayloadTooLarge, RequestTimeout
from gateway.wire.headers import header_value

# scope["extensions"][BODY_READY]() -> bool: a chunk of the body (or its end) is waiting.
BODY_READY = "tollgate.body_ready"


class Intake:
    def __init__(
        self,
        max_body_bytes: int,
        body_timeout_s: float | None = None,
        max_incoming_bytes: int | None = None,
    ) -> None:
        self.max_body_bytes = max_body_bytes
        self.body_timeout_s = body_timeout_s
        self.max_incoming_bytes = max_incoming_bytes
        self.incoming = 0  # bytes reserved by the bodies being received now

    async def read(
        self,
        headers: list[tuple[bytes, bytes]],
        receive: Receive,
        ready: Callable[[], bool] | None = None,  # the server's word: a chunk is waiting
    ) -> bytes:
        """The whole body, within the limits, or the GatewayError that says which one."""
        declared = header_value(headers, b"content-length")
        # The HTTP server has checked it is digits; a length past the limit is never waited for.
        expected = int(declared) if declared is not None and declared.isdigit() else 0
        if expected > self.max_body_bytes:
            raise self._too_large()
        reserved = 0
        try:
            reserved = self._reserve(expected, 0)
            chunks: list[bytes] = []
            size = 0
            if ready is not None and ready():
                # What has arrived (most often the whole body) is received without waiting:
                # no timer for it. The rest, if any, is timed from here.
                message = await receive()
                chunk: bytes = message.get("body", b"")
                size = len(chunk)
                reserved = self._grow(size, reserved)
                if not message.get("more_body", False):
                    return chunk
                chunks.append(chunk)
            async with asyncio.timeout(self.body_timeout_s):
                while True:
                    message = await receive()
                    chunk = message.get("body", b"")
                    size += len(chunk)
                    reserved = self._grow(size, reserved)
                    chunks.append(chunk)
                    if not message.get("more_body", False):
                        return b"".join(chunks)
        except TimeoutError:
            raise RequestTimeout(
                f"The request body did not arrive within {self.body_timeout_s:g} s."
            ) from None
        finally:
            self.incoming -= reserved

    def _grow(self, size: int, reserved: int) -> int:
        """This body's share of the total, now that `size` bytes of it have arrived."""
        if size > self.max_body_bytes:
            raise self._too_large()
        if size > reserved:  # no declared length (chunked), or more than it
            return self._reserve(size, reserved)
        return reserved

    def _reserve(self, size: int, reserved: int) -> int:
        """Grows this body's share of the total from `reserved` to `size`, if it fits."""
        limit = self.max_incoming_bytes
        if limit is not None and self.incoming + size - reserved > limit:
            raise Overloaded(
                "The gateway is receiving too many request bodies at once; retry shortly."
            )
        self.incoming += size - reserved
        return size

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"Request body exceeds {self.max_body_bytes} bytes.")
