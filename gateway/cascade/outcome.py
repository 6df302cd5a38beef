"""What an attempt, and a chain of them, ends in: a response to relay (Started), a failure
that may be retried (Failure), or none at all (ChainFailed); and the call's Deadline."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import NamedTuple

from gateway.cascade.attempts import Attempt, Tap
from gateway.errors import DeadlinePassed, GatewayError, ResponseTooLarge, UpstreamSilent
from gateway.upstream import Response


@dataclass(slots=True)
class Started:
    """The attempt whose response the client gets."""

    response: Response
    model: str
    attempts: list[Attempt]
    tap: Tap | None = None  # streams: already fed the prelude
    prelude: list[bytes] = field(default_factory=list)  # stream bytes read, not yet sent
    hedged: bool = False  # the hedge chain won
    body: bytes | None = None  # a JSON response, read whole within its attempt

    @property
    def retried(self) -> bool:
        return len(self.attempts) > 1

    @property
    def stream_failed(self) -> bool:
        """A stream that sent an error event before any content."""
        tap = self.tap
        return tap is not None and bool(tap.error_type) and not tap.saw_content


@dataclass(frozen=True, slots=True)
class Failure:
    """An attempt that may be retried: its error, or the response to relay if none is left."""

    error: GatewayError | None = None
    response: Response | None = None
    started: Started | None = None  # a stream that sent an error event before any content
    rejected: bool = False  # refused by the model's open breaker: nothing was sent


class ChainFailed(Exception):
    """Every attempt failed before a response: the last error, after the attempts made."""

    def __init__(self, error: GatewayError, attempts: list[Attempt]) -> None:
        super().__init__(error.message)
        self.error = error
        self.attempts = attempts


class Deadline(NamedTuple):
    """When a call must be over, in the event loop's clock; `seconds` as configured. A tuple,
    made at once (a frozen dataclass sets each field apart)."""

    at: float
    seconds: float

    @classmethod
    def after(cls, seconds: float) -> Deadline:
        return cls(asyncio.get_running_loop().time() + seconds, seconds)

    def left(self) -> float:
        return self.at - asyncio.get_running_loop().time()

    def passed(self) -> DeadlinePassed:
        return DeadlinePassed(
            f"The call did not finish within its time limit of {self.seconds:g} s."
        )


def healthy(outcome: Started | Failure | None) -> bool | None:
    """What an attempt says of the model's health, for its breaker; None: nothing (it was
    cancelled, ran out of the call's time, or was too large to hold)."""
    if outcome is None:
        return None
    if isinstance(outcome, Started):
        return True
    if isinstance(outcome.error, DeadlinePassed | ResponseTooLarge):
        return None
    return False


def logged_status(error: GatewayError) -> str:
    """An attempt's status in the call log for the gateway's own error."""
    if isinstance(error, UpstreamSilent | ResponseTooLarge):
        return str(error.status)
    return "cut"
