"""Fault injection: which failure, if any, a request gets.

Per request by header —
`x-emulator-fault: <kind>[;count=N;id=X][;ms=T][;after=S][;no-retry][;model=M]` — or at
configured rates. A kind is an error status (429 carries retry-after: S seconds) or `cut`,
`stream-error`, `slow` (first byte after T ms). With `count=N;id=X` only the first N
requests carrying that id fault, so a client's retry of the same call succeeds; with
`model=M` only requests for model M fault, so a gateway's fallback to another succeeds.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import get_args

from gateway.emulator.errors import EmulatedError, invalid_request
from gateway.settings import FaultKind
from gateway.wire.anthropic_errors import error_type_for

FAULT_HEADER = "x-emulator-fault"
FAULT_KINDS: frozenset[str] = frozenset(get_args(FaultKind))


@dataclass(frozen=True, slots=True)
class Fault:
    kind: str
    count: int | None = None
    fault_id: str | None = None
    ms: int | None = None
    retry_after_s: float = 1.0
    no_retry: bool = False
    model: str | None = None  # only requests for this model fault (a fallback then succeeds)


def parse_fault(value: str) -> Fault:
    kind, *params = (part.strip() for part in value.split(";"))
    if kind not in FAULT_KINDS:
        raise invalid_request(
            f"{FAULT_HEADER}: unknown kind {kind!r}; one of {sorted(FAULT_KINDS)}"
        )
    fields: dict[str, str] = {}
    for param in params:
        name, _, raw = param.partition("=")
        fields[name.strip()] = raw.strip()
    try:
        return Fault(
            kind=kind,
            count=int(fields["count"]) if "count" in fields else None,
            fault_id=fields.get("id"),
            ms=int(fields["ms"]) if "ms" in fields else None,
            retry_after_s=float(fields.get("after", "1")),
            no_retry="no-retry" in fields,
            model=fields.get("model"),
        )
    except ValueError:
        raise invalid_request(f"{FAULT_HEADER}: bad parameter in {value!r}") from None


class FaultInjector:
    def __init__(self, rates: Mapping[FaultKind, float], seed: int) -> None:
        self._rates = tuple(rates.items())
        self._random = random.Random(seed)
        self._served: dict[str, int] = {}
        self.injected: dict[str, int] = {}  # faults served so far, by kind (/emulator/state)

    def pick(self, header: str | None, model: object = None) -> Fault | None:
        fault = self._pick(header, model)
        if fault is not None:
            self.injected[fault.kind] = self.injected.get(fault.kind, 0) + 1
        return fault

    def _pick(self, header: str | None, model: object) -> Fault | None:
        if header is not None:
            fault = parse_fault(header)
            if fault.model is not None and fault.model != model:
                return None
            if fault.count is None:
                return fault
            key = fault.fault_id or header
            served = self._served.get(key, 0)
            if served >= fault.count:
                return None
            self._served[key] = served + 1
            return fault
        for kind, rate in self._rates:
            if self._random.random() < rate:
                return Fault(kind=kind)
        return None


FAULT_MESSAGES = {
    429: "Number of request tokens has exceeded your per-minute rate limit",
    500: "Internal server error",
    503: "The server is overloaded or not ready yet.",
    529: "Overloaded",
}


def fault_error(
    fault: Fault,
    type_for: Callable[[int], str] = error_type_for,
    statuses: Mapping[int, int] | None = None,
) -> EmulatedError | None:
    """The error response for a fault that answers before any byte of the body.

    `type_for` names the error type in the caller's wire format; `statuses` maps a status the
    provider does not use to the one it does (OpenAI answers 503 where Anthropic has 529).
    """
    if not fault.kind.isdigit():
        return None
    status = int(fault.kind)
    status = (statuses or {}).get(status, status)
    headers = {"x-should-retry": "false"} if fault.no_retry else {}
    if status == 429:
        headers["retry-after"] = f"{fault.retry_after_s:g}"
    message = FAULT_MESSAGES.get(status, f"emulator fault: injected {status}")
    return EmulatedError(status, type_for(status), message, headers=headers)
