"""The circuit breaker, per provider and model: after `breaker_failures` failed attempts in
a row the model is *open* — its calls are answered at once with the provider's overloaded
error and a retry-after, and nothing is sent — for `breaker_cooldown_s`; then *half-open*:
one call goes through as a probe (the others are still refused), and its success closes the
breaker, its failure opens it again. A failure is what the retry policy retries (429, 5xx,
529, a connect error, a timeout, a cut); any other answer, an error the client caused
included, is a success.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from gateway.settings import RetrySettings

State = Literal["closed", "open", "half_open"]


@dataclass(slots=True)
class _Circuit:
    failures: int = 0
    opened_at: float | None = None  # set while open or half-open
    probing: bool = False  # half-open, and its probe is in flight


class Breakers:
    def __init__(
        self,
        settings: RetrySettings,
        clock: Callable[[], float] = time.monotonic,
        on_change: Callable[[str, str, bool], None] | None = None,  # provider, model, open
        on_reject: Callable[[str, str], None] | None = None,  # provider, model
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.on_change = on_change
        self.on_reject = on_reject
        self._circuits: dict[tuple[str, str], _Circuit] = {}

    def state(self, provider: str, model: str) -> State:
        circuit = self._circuits.get((provider, model))
        if circuit is None or circuit.opened_at is None:
            return "closed"
        if self.clock() - circuit.opened_at < self.settings.breaker_cooldown_s:
            return "open"
        return "half_open"

    def admit(self, provider: str, model: str) -> float | None:
        """None: the call may go (a half-open breaker's probe, if it was); else the seconds
        until the breaker will let a probe through (at least 1, as a retry-after)."""
        if not self._circuits:
            return None  # no model has failed (the common case)
        circuit = self._circuits.get((provider, model))
        if circuit is None or circuit.opened_at is None:
            return None
        left = circuit.opened_at + self.settings.breaker_cooldown_s - self.clock()
        if left <= 0 and not circuit.probing:
            circuit.probing = True
            return None
        if self.on_reject is not None:
            self.on_reject(provider, model)
        return float(max(1, math.ceil(left)))

    def succeeded(self, provider: str, model: str) -> None:
        if not self._circuits:
            return  # no model has failed: nothing to close (the common case)
        circuit = self._circuits.pop((provider, model), None)
        if circuit is not None and circuit.opened_at is not None and self.on_change:
            self.on_change(provider, model, False)

    def failed(self, provider: str, model: str) -> None:
        if self.settings.breaker_failures == 0:
            return
        key = (provider, model)
        circuit = self._circuits.get(key)
        if circuit is None:
            if len(self._circuits) >= self.settings.breaker_max_models:
                return
            circuit = self._circuits[key] = _Circuit()
        circuit.failures += 1
        reopened = circuit.probing
        circuit.probing = False
        if reopened or (
            circuit.opened_at is None and circuit.failures >= self.settings.breaker_failures
        ):
            was_open = circuit.opened_at is not None
            circuit.opened_at = self.clock()
            if not was_open and self.on_change:
                self.on_change(provider, model, True)

    def abandoned(self, provider: str, model: str) -> None:
        """A probe that ended without an answer (the client left, a hedge won): the next call
        probes instead."""
        circuit = self._circuits.get((provider, model))
        if circuit is not None:
            circuit.probing = False
