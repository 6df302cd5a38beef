"""What one call came to: its outcome as the endpoint saw it, and the frozen record every
observer is given once the client has its response."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

from gateway.admission import Admitted
from gateway.cascade.dispatch import Started
from gateway.cascade.shadow import ShadowCall
from gateway.metering.calls import CallRecord, Metered
from gateway.metering.pricing import Priced
from gateway.relay import Relayed
from gateway.wire.call import Attempt
from gateway.wire.formats import WireFormat
from gateway.wire.usage import Usage

# An attempt that was not relayed but may have made tokens nobody reported: a hedge race's
# loser, a stream cut or a response abandoned at the deadline. An error status is not billed.
UNSEEN_ATTEMPT_STATUSES = frozenset({"cut", "504"})


class Outcome(NamedTuple):
    """How the call ended: relayed, refused, failed upstream, or left by its client. A tuple,
    made at once (a frozen dataclass sets each of its fields apart)."""

    status: str
    model: str | None = None
    ttft_s: float | None = None
    usage: Usage | None = None
    answered: float | None = None  # wall-clock time the response began
    attempts: tuple[Attempt, ...] = ()
    coalesced: bool = False  # waited for a concurrent call on the same cold prefix
    overhead_s: float = 0.0  # the gateway's own time: parsing, rewriting, the tap
    message_id: str | None = None
    miss_reason: str | None = None  # the provider's own diagnosis of a cache miss
    shadow: ShadowCall | None = None  # a shadow call waiting for this call's answer
    text: str = ""  # the answer's text, collected only for a shadow pair
    # The answer's upstream request may have generated tokens whose final usage the gateway
    # did not see (the client left, the stream was cut or timed out): charged its reservation.
    unseen: bool = False
    service_tier: str | None = None  # as the response reports it (OpenAI)
    priced: Priced | None = None  # the relay's cost of the answer (JSON bodies)

    @classmethod
    def relayed(
        cls,
        relayed: Relayed,
        begun: Started,
        *,
        answered: float,
        preflight_s: float,
        coalesced: bool = False,
        shadow: ShadowCall | None = None,
    ) -> Outcome:
        # In the fields' order, not by keyword (a NamedTuple matches each keyword by name).
        return cls(
            relayed.status,  # status
            relayed.model,  # model
            relayed.ttft_s,  # ttft_s
            relayed.usage,  # usage
            answered,  # answered
            tuple(begun.attempts),  # attempts
            coalesced,  # coalesced
            relayed.overhead_s + preflight_s,  # overhead_s
            relayed.message_id,  # message_id
            relayed.miss_reason,  # miss_reason
            shadow,  # shadow
            relayed.text,  # text
            relayed.unseen,  # unseen
            relayed.service_tier,  # service_tier
            relayed.priced,  # priced
        )


@dataclass(slots=True)
class Flight:
    """Whether the call has gone upstream: set before the first attempt is sent, read when
    the client leaves mid-call (the endpoint's task is cancelled, its locals lost)."""

    dispatched: bool = False
    begun: Started | None = None  # the attempt being relayed, once there is one

    def left(self, wire: WireFormat, model: str | None) -> Outcome:
        """A call the client left: what the upstream attempt reported before, and whether
        its tokens went unreported (any call sent upstream whose final usage was not seen)."""
        begun = self.begun
        if begun is None:
            return Outcome("client_closed", model, unseen=self.dispatched)
        usage, unseen, tier = None, False, None
        if begun.tap is not None:
            usage, unseen, tier = begun.tap.usage, not begun.tap.usage_final, begun.tap.service_tier
        elif begun.body is not None and begun.response.is_success:
            usage = wire.usage_from_body(begun.body).usage
            unseen = usage is None
        return Outcome(
            "client_closed",
            begun.model,
            usage=usage,
            attempts=tuple(begun.attempts),
            unseen=unseen,
            service_tier=tier,
        )


class Record(NamedTuple):
    """One finished call, built once, after the client has its response."""

    call: CallRecord  # what metering reports: metrics, the call log, traces
    metered: Metered  # its cost, every attempt's included, and the findings
    admitted: Admitted | None  # the gateway key's admission, to settle
    unseen: bool  # tokens made that no usage reported: charged at least the reservation
    shadow: ShadowCall | None  # a shadow waiting for this answer
    text: str  # the answer's text, for the shadow pair


def unseen_attempts(attempts: tuple[Attempt, ...]) -> int:
    """Attempts other than the answer's that may have made tokens nobody reported."""
    return sum(
        1
        for a in attempts
        if not a.relayed and (a.cancelled or a.status in UNSEEN_ATTEMPT_STATUSES)
    )
