"""The values a call's attempts are described by: what is sent (Route, Candidate), what each
attempt came to (Attempt), and what the relay learns from a stream as it passes (Tap).

Only wire/ is imported here: the call log, the wire formats and the dispatcher share these
without depending on one another.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from gateway.wire.headers import RawHeaders
from gateway.wire.usage import Usage


class Tap(Protocol):
    """What the relay learns from a stream as it passes (wire/anthropic_usage.StreamUsage)."""

    saw_content: bool
    complete: bool
    error_type: str | None
    model: str | None
    message_id: str | None
    miss_reason: str | None
    service_tier: str | None  # the tier the response says it was served at (OpenAI)

    def feed(self, chunk: bytes) -> None: ...

    @property
    def usage_final(self) -> bool:
        """The stream's final usage was seen (its output counted), not only its start's."""
        ...

    @property
    def usage(self) -> Usage | None: ...


@dataclass(frozen=True, slots=True)
class Route:
    """Where and what to send: the same for every attempt but the model and body."""

    provider: str
    method: str
    target: str
    headers: RawHeaders


@dataclass(frozen=True, slots=True)
class Candidate:
    model: str
    body: bytes


@dataclass(frozen=True, slots=True)
class Attempt:
    """One request upstream, as the call log lists it."""

    model: str
    status: str  # HTTP status, or cut / stream_error / the gateway's own 502 / 504
    duration_s: float
    hedge: bool = False
    cancelled: bool = False  # a hedge race's loser
    usage: Usage | None = None  # what it reported before failing or being cancelled
    relayed: bool = False  # the attempt whose response the client got
