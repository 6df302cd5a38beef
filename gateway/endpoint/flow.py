"""The flow every endpoint follows, top to bottom: authenticate → read → prepare → admit →
answer → finish. What differs between a model call and a pass-through is in their own
`prepare`, `answer` and `finish`."""

from __future__ import annotations

from abc import ABC, abstractmethod

from starlette.types import Receive, Scope, Send

from gateway.admission import Admitted
from gateway.cascade.dispatch import Route
from gateway.endpoint.prepared import Prepared
from gateway.endpoint.record import Flight, Outcome
from gateway.endpoint.steps import Arrival, Plumbing, admit, respond, route_of
from gateway.errors import GatewayError
from gateway.server.intake import BODY_READY

_NO_EXTENSIONS: dict[str, object] = {}


class Endpoint(ABC):
    """A pure ASGI app (no BaseHTTPMiddleware: it would hide disconnects and cost per
    request) for one wire format's path."""

    def __init__(self, deps: Plumbing) -> None:
        self.deps = deps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deps = self.deps
        arrival = Arrival.of(scope)
        call, admitted = Prepared(b""), None  # body (by position: a keyword is matched by name)
        try:
            # Who calls, from the headers alone: nothing reads or learns from the body of a
            # caller that is refused.
            caller = await deps.gate.authenticate(arrival.headers, arrival.step)
            ready = scope.get("extensions", _NO_EXTENSIONS).get(BODY_READY)
            raw = await deps.intake.read(arrival.headers, receive, ready)
            call = self.prepare(scope["method"], arrival, raw)
            call, admitted, scope = await admit(deps, caller, call, raw, scope)
        except GatewayError as error:
            await deps.relay.error(send, error, arrival.request_id)
            await self.finish(arrival, call, Outcome(str(error.status)), admitted)
            return
        route, flight = route_of(scope, deps.wire.provider), Flight()
        outcome: Outcome | None = None
        try:
            outcome = await respond(
                deps.relay,
                scope,
                receive,
                send,
                arrival,
                call,
                lambda send: self.answer(route, send, call, arrival, flight),
            )
        finally:
            if outcome is None:  # the client left
                outcome = flight.left(deps.wire, call.sent_model)
            await self.finish(arrival, call, outcome, admitted)

    @abstractmethod
    def prepare(self, method: str, arrival: Arrival, raw: bytes) -> Prepared:
        """The call as it will go upstream, from the body read."""

    @abstractmethod
    async def answer(
        self, route: Route, send: Send, call: Prepared, arrival: Arrival, flight: Flight
    ) -> Outcome:
        """The call upstream and its response to the client."""

    @abstractmethod
    async def finish(
        self, arrival: Arrival, call: Prepared, outcome: Outcome, admitted: Admitted | None
    ) -> None:
        """After the response: the call's record to every observer."""
