"""What a call's attempts send (Route, Candidate). What each attempt came to (Attempt) and
what the relay learns from a stream (Tap) are wire/ values, shared with metering and the
wire formats; they are re-exported here for the dispatcher's modules."""

from __future__ import annotations

from typing import NamedTuple

from gateway.wire.call import Attempt
from gateway.wire.headers import RawHeaders
from gateway.wire.splice import Body
from gateway.wire.tap import Tap

__all__ = ["Attempt", "Candidate", "Route", "Tap"]


class Route(NamedTuple):
    """Where and what to send: the same for every attempt but the model and body. A tuple,
    made at once (a frozen dataclass sets each field apart)."""

    provider: str
    method: str
    target: str
    headers: RawHeaders


class Candidate(NamedTuple):
    model: str
    body: Body
