"""Value types of a call upstream that the dispatcher makes and metering reports."""

from __future__ import annotations

from typing import NamedTuple

from gateway.wire.usage import Usage


class Attempt(NamedTuple):
    """One request upstream, as the call log lists it. A tuple, made at once (a frozen
    dataclass sets each of its seven fields apart, through `object.__setattr__`)."""

    model: str
    status: str  # HTTP status, or cut / stream_error / the gateway's own 502 / 504
    duration_s: float
    hedge: bool = False
    cancelled: bool = False  # a hedge race's loser
    usage: Usage | None = None  # what it reported before failing or being cancelled
    relayed: bool = False  # the attempt whose response the client got
