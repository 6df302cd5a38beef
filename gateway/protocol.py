"""The HTTP/1.1 protocol the gateway serves: uvicorn's httptools one, with a bounded head.

httptools (llhttp) buffers a request line and headers of any size, and uvicorn sets no
limit on it (its `h11_max_incomplete_event_size` applies to h11 only, the slower parser):
a client could make the gateway hold megabytes before any handler runs. Past
`max_head_bytes` of request head, or `max_headers` header lines, the client gets 431 and
the connection is closed.
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

TOO_LARGE = b"Request header fields too large."


class HeadTooLarge(Exception):
    """Raised in a parser callback; httptools re-raises it from feed_data as a parser error."""


class BoundedHeadProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        max_head_bytes: int,
        max_headers: int,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = max_head_bytes
        self.max_headers = max_headers
        self.in_head = True  # a connection opens with a request head
        self.head_bytes = 0  # of the request line and headers parsed so far
        self.buffered_bytes = 0  # received while the head is incomplete
        self.header_count = 0
        self.head_too_large = False

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # A header line that never ends is buffered inside httptools, where the callbacks
        # below never see it: count what arrived while the head is still incomplete.
        if self.in_head and not self.head_too_large:
            self.buffered_bytes += len(data)
            if self.buffered_bytes > self.max_head_bytes:
                self.head_too_large = True
                self._send_431()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head = True
        self.head_bytes = self.buffered_bytes = self.header_count = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url), 0)
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4, 1)  # "name: value\r\n"
        super().on_header(name, value)

    def _count(self, size: int, headers: int) -> None:
        self.head_bytes += size
        self.header_count += headers
        if self.head_bytes > self.max_head_bytes or self.header_count > self.max_headers:
            self.head_too_large = True
            raise HeadTooLarge  # uvicorn answers a parser error with send_400_response

    def on_headers_complete(self) -> None:
        self.in_head = False
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        if self.head_too_large:
            self._send_431()
        else:
            super().send_400_response(msg)

    def _send_431(self) -> None:
        if self.transport.is_closing():
            return
        self.transport.write(
            b"".join(
                [
                    STATUS_LINE[431],
                    b"content-type: text/plain; charset=utf-8\r\n",
                    b"content-length: %d\r\n" % len(TOO_LARGE),
                    b"connection: close\r\n\r\n",
                    TOO_LARGE,
                ]
            )
        )
        self.transport.close()


def bounded_head(max_head_bytes: int, max_headers: int) -> type[asyncio.Protocol]:
    """What uvicorn's `http=` takes: it calls it with (config, server_state, app_state)."""
    factory = functools.partial(
        BoundedHeadProtocol, max_head_bytes=max_head_bytes, max_headers=max_headers
    )
    # A partial of a module-level class, not a class: it pickles for `--workers N`.
    return cast(type[asyncio.Protocol], factory)
