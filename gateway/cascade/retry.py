"""Whether a failed attempt is tried again, and after how long (docs/wire.md#sdk-retries).

Retried: 408, 409, 429, any 5xx (529 included), connect errors and connect timeouts, a
connection cut or a malformed response — what the providers' own SDKs retry. Never another
4xx: the same request would fail the same way. Not retried on the same model (the next
fallback, if any, is tried): a provider that took the call and then went silent past its
read timeout (another try would bill it again, and likely wait as long; unless
`retry_read_timeouts`), and a response
over the size the gateway holds (it would be as large again). Nothing is tried once the
call's deadline has passed.
The delay is the provider's `retry-after-ms` / `retry-after` when it gives one, else
exponential backoff with jitter.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Literal

from gateway.errors import DeadlinePassed, GatewayError, ResponseTooLarge, UpstreamSilent
from gateway.settings import RetrySettings

RETRIED_CLIENT_ERRORS = frozenset({408, 409, 429})
Next = Literal["retry", "next_model", "stop"]


def retryable(status: int) -> bool:
    return status in RETRIED_CLIENT_ERRORS or status >= 500


def retry_after_s(headers: Mapping[str, str]) -> float | None:
    """The wait the provider asked for, in seconds; None if it did not say (or said nonsense)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = headers.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            continue  # an HTTP date: rare from these APIs, and backoff is a safe answer
        if value >= 0:
            return value
    return None


class RetryPolicy:
    def __init__(self, settings: RetrySettings, rng: random.Random | None = None) -> None:
        self.settings = settings
        self._random = rng or random.Random()

    def backoff_s(self, retry: int) -> float:
        """The wait before retry number `retry` (0-based): capped doubling, jittered down to 75%."""
        base: float = min(self.settings.base_delay_s * 2.0**retry, self.settings.max_delay_s)
        return base * (1 - 0.25 * self._random.random())

    def after_error(self, error: GatewayError) -> Next:
        """What follows an attempt that failed with the gateway's own error."""
        if isinstance(error, DeadlinePassed):
            return "stop"
        if isinstance(error, ResponseTooLarge):
            return "next_model"
        if isinstance(error, UpstreamSilent) and not self.settings.retry_read_timeouts:
            return "next_model"
        return "retry"

    def delay_s(self, retry: int, headers: Mapping[str, str]) -> float | None:
        """How long to wait before retrying the same model; None: do not wait that long."""
        asked = retry_after_s(headers)
        if asked is None:
            return self.backoff_s(retry)
        return asked if asked <= self.settings.max_retry_after_s else None
