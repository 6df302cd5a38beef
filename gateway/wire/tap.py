"""The tap: what the gateway learns from a stream as its bytes pass to the client."""

from __future__ import annotations

from typing import Protocol

from gateway.wire.usage import Usage


class Tap(Protocol):
    """What the relay learns from a stream as it passes (wire/anthropic_usage.StreamUsage)."""

    saw_content: bool
    complete: bool
    error_type: str | None
    miss_reason: str | None

    def feed(self, chunk: bytes) -> None: ...

    # Read-only to the relay: a tap may read them lazily (wire/responses_usage.py).
    @property
    def model(self) -> str | None: ...

    @property
    def message_id(self) -> str | None: ...

    @property
    def service_tier(self) -> str | None:
        """The tier the response says it was served at (OpenAI)."""
        ...

    @property
    def usage_final(self) -> bool:
        """The stream's final usage was seen (its output counted), not only its start's."""
        ...

    @property
    def usage(self) -> Usage | None: ...
