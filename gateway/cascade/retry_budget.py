"""The retry budget, per provider: retries are a bounded share of the calls (as Envoy's
retry budget and Finagle's RetryBudget), so a provider that fails every call gets at most
`budget_ratio` more requests than the clients sent, plus a small floor a second.

Counts are kept in ten buckets over the window (a sliding window to within a tenth of it):
the memory is fixed whatever the traffic.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from gateway.settings import RetrySettings

BUCKETS = 10


class _Window:
    """Calls and retries over the last `window_s`, in BUCKETS slots."""

    def __init__(self, window_s: float) -> None:
        self.slot_s = window_s / BUCKETS
        self.calls = [0] * BUCKETS
        self.retries = [0] * BUCKETS
        self.slot = 0  # the absolute index of the newest slot

    def advance(self, now: float) -> None:
        current = int(now // self.slot_s)
        gap = current - self.slot
        if gap <= 0:
            return
        for step in range(1, min(gap, BUCKETS) + 1):
            index = (self.slot + step) % BUCKETS
            self.calls[index] = self.retries[index] = 0
        self.slot = current


class RetryBudget:
    def __init__(
        self,
        settings: RetrySettings,
        clock: Callable[[], float] = time.monotonic,
        on_exhausted: Callable[[str], None] | None = None,  # provider
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.on_exhausted = on_exhausted
        self._windows: dict[str, _Window] = {}

    def _window(self, provider: str) -> _Window:
        window = self._windows.get(provider)
        if window is None:
            window = self._windows[provider] = _Window(self.settings.budget_window_s)
            window.slot = int(self.clock() // window.slot_s)
        now = self.clock()
        if int(now // window.slot_s) > window.slot:  # advance's own test, without its frame
            window.advance(now)
        return window

    def call(self, provider: str) -> None:
        """A client's call, sent upstream: it adds to what may be retried."""
        window = self._window(provider)
        window.calls[window.slot % BUCKETS] += 1

    def try_retry(self, provider: str) -> bool:
        """Whether one more attempt may be made; if so, it is counted."""
        window = self._window(provider)
        settings = self.settings
        allowed = (
            settings.budget_ratio * sum(window.calls)
            + settings.budget_min_per_s * settings.budget_window_s
        )
        if sum(window.retries) + 1 > allowed:
            if self.on_exhausted is not None:
                self.on_exhausted(provider)
            return False
        window.retries[window.slot % BUCKETS] += 1
        return True
