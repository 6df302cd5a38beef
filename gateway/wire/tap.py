"""The tap: what the gateway learns from a stream as its bytes pass to the client."""

from __future__ import annotations

from typing import Protocol

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
