"""The request cycle of the gateway's protocol: uvicorn's httptools one, with cycle.py's
`send` and arrival.py's `receive` as methods of its class (under another uvicorn, its own
`send` and `receive`, the send closing early responses, a method of a class too).

Methods, not functions stored on each cycle: a `functools.partial(send, cycle)` or a closure
over the cycle, kept on the cycle, is a reference cycle, so a finished request's cycle was
not freed by its reference count but left, with its scope, event and body (~40 objects), to
the garbage collector, which then ran every ~15 requests. The cycle's one extension that
must reach it (the disconnect watch's completion check, `completion`) holds it weakly, as
the connection it writes to (`CycleTransport`) holds the protocol.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Callable
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from gateway.server import arrival, cycle
from gateway.server.arrival import Arrival
from gateway.server.cycle import COPIED_FROM


class EdgeCycle(RequestResponseCycle):
    """A cycle this package's copies serve: the same state, other `send` and `receive`."""

    send = cycle.send
    receive = arrival.receive  # type: ignore[assignment]


class ClosingCycle(RequestResponseCycle):
    """A cycle under another uvicorn: its own `send` and `receive`, the send closing early
    responses. (A method too: a wrapper stored on the cycle would hold the cycle.)"""

    async def send(self, message: Any) -> None:
        await super().send(cycle.closing_early(self, message))


def adopt(made: RequestResponseCycle, version: str = uvicorn.__version__) -> None:
    """Gives a new cycle this package's `send` and `receive`, under the uvicorn they copy;
    under another, its own `send` made to close early responses, and its own `receive`."""
    if version.startswith(COPIED_FROM):
        made.body = Arrival()  # type: ignore[assignment]  # before a chunk of it has arrived
        made.__class__ = EdgeCycle
    else:
        made.__class__ = ClosingCycle


def completion(made: RequestResponseCycle) -> Callable[[], bool]:
    """Whether the cycle's response is complete (a cycle gone is: its request has ended)."""
    ref: Callable[[], Any] = weakref.ref(made)

    def complete() -> bool:
        alive = ref()
        return alive is None or bool(alive.response_complete)

    return complete


class CycleTransport:
    """The connection as uvicorn's request cycle sees it: its close (after a response with
    `connection: close`, or a failure) is the protocol's, which lingers if need be.

    It holds the protocol weakly: the protocol holds it (and its cycle, which holds it), so
    a strong reference made every closed connection a reference cycle, left with its last
    request's scope and unread body to the garbage collector. The transport holds the
    protocol until the connection is lost; after that, a close is the transport's."""

    def __init__(self, transport: asyncio.Transport, protocol: Any) -> None:
        self._transport = transport
        self._protocol = weakref.ref(protocol)
        # What the cycle calls per body chunk, bound once rather than found by __getattr__.
        self.write = transport.write
        self.is_closing = transport.is_closing

    def close(self) -> None:
        protocol = self._protocol()
        if protocol is None:
            self._transport.close()
        else:
            protocol.close_after_response()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)
