"""The one exception the emulator raises for a request the real API would reject.

The HTTP layer renders it in the provider's error envelope; the logic that raises it
(validation, prompt building, fault injection) knows only status, type and message.
"""

from __future__ import annotations


class EmulatedError(Exception):
    """An API error as the provider would return it: HTTP status, error type, message."""

    def __init__(
        self,
        status: int,
        error_type: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.headers = headers or {}
        self.param = param  # OpenAI's envelope names the offending field and an error code
        self.code = code


def invalid_request(message: str) -> EmulatedError:
    return EmulatedError(400, "invalid_request_error", message)
