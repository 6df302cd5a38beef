"""The HTTP/1.1 protocol the gateway serves: uvicorn's httptools one, with the client edge's
limits (docs/limits.md, "Client edge"), and its own answers in the provider's envelope.

- A bounded head: httptools (llhttp) buffers a head of any size, and uvicorn sets no limit
  on it (`h11_max_incomplete_event_size` is h11's only). Past `max_head_bytes` of request
  head, or `max_headers` header lines, the client gets 431 and the connection is closed.
- A head timeout: from a request's first byte, its head must be whole within
  `head_timeout_s` (a slowloris trickling header bytes), else 408 and close.
- An idle timeout: a connection with no request in progress, a new one included (uvicorn
  times out only kept-alive ones), is closed after `idle_timeout_s` (`timeout_keep_alive`).
- A connection cap: past `max_connections` open connections or requests in progress (this
  process), 503 and close (uvicorn's `limit_concurrency` answers it in text/plain).
- A response sent before its request's body was read whole (a 404, a 413 on the declared
  length, a 408 or 503) ends the connection, in a lingering close: the gateway stops
  writing, then reads and drops what the client still sends for up to `linger_s` and
  `linger_max_bytes`, so that a client still sending its body reads the response instead of
  a reset. Such a response always says `connection: close`.
- The server's own errors (400 for a request that is not HTTP, 408, 431, 503) are JSON in
  the envelope of the provider the path belongs to (formats.wire_for), as the endpoints' are.
- A lost connection is told at once to its requests' disconnect watches (asgi/disconnect.py).

The body's deadline (`body_timeout_s`) is the endpoint's (server/intake.py).
"""

from __future__ import annotations

import asyncio
import functools
from typing import Any, cast

import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from gateway.asgi.disconnect import WATCH_EXTENSION, Watching
from gateway.errors import (
    CLOSE,
    GatewayError,
    HttpError,
    Overloaded,
    RequestTimeout,
    new_request_id,
)
from gateway.server.cycle import COPIED_FROM
from gateway.server.edge_cycle import CycleTransport, adopt, completion
from gateway.server.intake import BODY_READY
from gateway.wire.formats import error_response, wire_for

COPIED = uvicorn.__version__.startswith(COPIED_FROM)  # else uvicorn's own on_header


# A head's bytes as sent beyond those counted (method, " HTTP/1.1", line ends; llhttp's
# longest method is 11 bytes): 39 bytes are left for whitespace around values.
HEAD_FRAMING = 64


class HeadTooLarge(Exception):
    """Raised in a parser callback; httptools re-raises it from feed_data as a parser error."""


class EdgeProtocol(HttpToolsProtocol):
    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        max_head_bytes: int,
        max_headers: int,
        head_timeout_s: float,
        max_connections: int,
        linger_s: float,
        linger_max_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.max_head_bytes = max_head_bytes
        self.max_headers = max_headers
        self.head_timeout_s = head_timeout_s
        self.max_connections = max_connections
        self.linger_s = linger_s
        self.linger_max_bytes = linger_max_bytes
        self.lingering = False
        self.lingered = 0  # bytes read and dropped while lingering
        self.in_head = True  # a connection opens with a request head
        self.head_bytes = 0  # of the request line and headers parsed so far
        self.buffered_bytes = 0  # received while the head is incomplete
        self.began = False  # the head under way began in the read being parsed
        self.known = self.before = 0  # data_received's
        self.header_count = 0
        self.head_too_large = False
        self.head_timer: asyncio.TimerHandle | None = None
        self.url = b""
        self.app_proper = self.app

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.watching = Watching(self.flow.resume_reading)
        # The connection as each of its requests' cycles sees it: one for the connection.
        self.cycle_transport = cast(asyncio.Transport, CycleTransport(transport, self))
        # uvicorn's keep-alive timer, armed for a connection that has sent nothing yet too.
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)
        self.watching.lost()

    def data_received(self, data: bytes) -> None:
        if self.lingering:  # the rest of a body no one will read
            self.lingered += len(data)
            if self.lingered > self.linger_max_bytes:
                self.transport.close()
            return
        self.known = self.before = 0  # of `data`: earlier requests', before this head's
        super().data_received(data)
        if not self.in_head or self.transport.is_closing():
            return
        # A header line that never ends is buffered inside httptools, where the callbacks
        # below never see it: count what arrived while the head is incomplete, with its
        # framing, so that a head the count admits is not refused for arriving in pieces.
        if not self.head_too_large:
            self.buffered_bytes += len(data) - self.before
            if self.buffered_bytes > self.max_head_bytes + HEAD_FRAMING:
                self.head_too_large = True
                self._send_431()
                return
        if self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.in_head, self.began, self.before = True, True, self.known
        self.head_bytes = self.buffered_bytes = self.header_count = 0

    def on_url(self, url: bytes) -> None:
        self.head_bytes += len(url)  # before any header line: only the bytes can be over
        if self.head_bytes > self.max_head_bytes:
            self.head_too_large = True
            raise HeadTooLarge  # uvicorn answers a parser error with send_400_response
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        # The line counted, then uvicorn's `on_header` (as COPIED_FROM's), in one frame.
        self.head_bytes += len(name) + len(value) + 4  # "name: value\r\n"
        self.header_count += 1
        if self.head_bytes > self.max_head_bytes or self.header_count > self.max_headers:
            self.head_too_large = True
            raise HeadTooLarge
        if not COPIED:
            super().on_header(name, value)
            return
        name = name.lower()
        if name == b"expect" and value.lower() == b"100-continue":
            self.expect_100_continue = True
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        if self.began:  # a head all in this read: at least its URL and lines (`name:value`)
            self.known += self.head_bytes - self.header_count
        self.in_head = self.began = False
        self._stop_head_timer()
        # Counted as uvicorn's limit_concurrency counts: this connection is in `connections`,
        # this request not yet in `tasks`.
        over = (
            len(self.connections) > self.max_connections or len(self.tasks) >= self.max_connections
        )
        self.app = _overloaded if over else self.app_proper
        before = self.cycle
        super().on_headers_complete()
        cycle = self.cycle
        if cycle is None or cycle is before:
            return  # no new request (a WebSocket upgrade, which uvicorn hands to its own)
        cycle.transport = self.cycle_transport
        adopt(cycle)  # a new request's, with no chunk of its body yet
        extensions: dict[str, Any] = cycle.scope.setdefault("extensions", {})
        extensions[WATCH_EXTENSION] = self.watching.watcher(completion(cycle))
        extensions[BODY_READY] = cycle.message_event.is_set

    def on_body(self, body: bytes) -> None:
        self.known += len(body)  # a piece of this read
        super().on_body(body)

    def eof_received(self) -> None:
        if self.lingering:
            self.transport.close()

    def close_after_response(self) -> None:
        """Closes the connection, lingering if the request's body is still arriving."""
        transport = self.transport
        if transport.is_closing() or self.lingering:
            return
        cycle = self.cycle
        if cycle is None or not cycle.more_body or not transport.can_write_eof():
            transport.close()
            return
        self.lingering = True
        self._stop_head_timer()
        self._unset_keepalive_if_required()
        transport.write_eof()  # after what is buffered: the response, then FIN
        self.flow.resume_reading()
        self.loop.call_later(self.linger_s, transport.close)

    def on_response_complete(self) -> None:
        cycle = self.cycle
        if not self.pipeline and cycle is not None and cycle.more_body:
            # Answered before the body was read whole: the connection cannot be reused, and
            # what is left of the body is not waited for.
            self.server_state.total_requests += 1
            self.close_after_response()
            return
        idle = not self.pipeline
        super().on_response_complete()
        if idle and not self.in_head:  # what arrives next is the next head (blank lines too)
            self.in_head, self.buffered_bytes = True, 0

    def send_400_response(self, msg: str) -> None:
        if self.head_too_large:
            self._send_431()
        else:
            self._send_error(HttpError(400, "Invalid HTTP request received.", (CLOSE,)))

    def _send_431(self) -> None:
        self._send_error(HttpError(431, "Request header fields too large.", (CLOSE,)))

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.cycle is not None and not self.cycle.response_complete:
            # The next head of a pipelining client, while a response is still going out.
            self.head_timer = self.loop.call_later(self.head_timeout_s, self._head_timed_out)
        elif self.in_head:
            message = f"The request head did not arrive within {self.head_timeout_s:g} s."
            self._send_error(RequestTimeout(message))

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _send_error(self, error: GatewayError) -> None:
        """An error of the server's own, in the envelope of the path's provider; then close."""
        if self.transport.is_closing():
            return
        path = self.url.split(b"?", 1)[0].decode("latin-1")
        headers, body = error_response(wire_for(path, self.headers or ()), error, new_request_id())
        head = [STATUS_LINE[error.status]]
        head += [b"%s: %s\r\n" % (name, value) for name, value in headers]
        self.transport.write(b"".join([*head, b"\r\n", body]))
        self.transport.close()


async def _overloaded(scope: Any, receive: Any, send: Any) -> None:
    """The app a request gets past the connection cap."""
    error = Overloaded("The gateway is at its connection limit; retry shortly.")
    headers, body = error_response(
        wire_for(scope["path"], scope["headers"]), error, new_request_id()
    )
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def edge_protocol(
    max_head_bytes: int,
    max_headers: int,
    head_timeout_s: float,
    max_connections: int,
    linger_s: float,
    linger_max_bytes: int = 64 * 1024 * 1024,
) -> type[asyncio.Protocol]:
    """What uvicorn's `http=` takes: it calls it with (config, server_state, app_state)."""
    factory = functools.partial(
        EdgeProtocol,
        max_head_bytes=max_head_bytes,
        max_headers=max_headers,
        head_timeout_s=head_timeout_s,
        max_connections=max_connections,
        linger_s=linger_s,
        linger_max_bytes=linger_max_bytes,
    )
    # A partial of a module-level class, not a class: it pickles for `--workers N`.
    return cast(type[asyncio.Protocol], factory)
