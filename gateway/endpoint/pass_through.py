"""A call relayed as it comes (count_tokens, the model list): the key is checked and swapped,
nothing is rewritten, routed or charged."""

from __future__ import annotations

import time

from starlette.types import Receive, Scope, Send

from gateway.admission import Admitted
from gateway.cascade.dispatch import Deadline, Route
from gateway.endpoint.prepared import Prepared, as_sent, parse
from gateway.endpoint.record import Flight, Outcome
from gateway.endpoint.steps import (
    Arrival,
    Plumbing,
    admit,
    observe,
    record,
    relay,
    respond,
    route_of,
)
from gateway.errors import GatewayError


class PassThrough:
    def __init__(self, deps: Plumbing) -> None:
        self.deps = deps  # its gate counts nothing (Gate.free_calls)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        deps = self.deps
        arrival = Arrival.of(scope)
        call, admitted = Prepared(body=b""), None
        try:
            caller = await deps.gate.authenticate(arrival.headers, arrival.step)
            raw = await deps.intake.read(arrival.headers, receive)
            call = self._prepare(scope["method"], arrival, raw)
            call, admitted, scope = await admit(deps, caller, call, raw, scope)
        except GatewayError as error:
            await deps.relay.error(send, error, arrival.request_id)
            self._finish(arrival, call, Outcome(str(error.status)), admitted)
            return
        route, flight = route_of(scope, deps.wire.provider), Flight()
        outcome: Outcome | None = None
        try:
            outcome = await respond(
                deps.relay,
                receive,
                send,
                arrival,
                call,
                lambda send: self._answer(route, send, call, arrival, flight),
            )
        finally:
            if outcome is None:  # the client left
                outcome = flight.left(deps.wire, call.sent_model)
            self._finish(arrival, call, outcome, admitted)

    def _prepare(self, method: str, arrival: Arrival, raw: bytes) -> Prepared:
        if method != "POST":
            return Prepared(body=raw)
        parsed, model = parse(arrival.headers, raw)
        return as_sent(self.deps.wire, parsed, raw, model)

    async def _answer(
        self, route: Route, send: Send, call: Prepared, arrival: Arrival, flight: Flight
    ) -> Outcome:
        deps = self.deps
        provider = deps.wire.provider
        limits = deps.dispatcher.upstream.settings(provider)
        preflight_s = time.perf_counter() - arrival.started
        deadline = Deadline.after(limits.total_timeout_s)
        flight.dispatched = True
        begun = await deps.dispatcher.start(route, call.candidates(provider), deadline=deadline)
        flight.begun = begun
        answered = time.time()
        relayed = await relay(deps, begun, send, call, arrival, deadline, limits.stream_timeout_s)
        return Outcome.relayed(relayed, begun, answered=answered, preflight_s=preflight_s)

    def _finish(
        self, arrival: Arrival, call: Prepared, outcome: Outcome, admitted: Admitted | None
    ) -> None:
        duration_s = time.perf_counter() - arrival.started
        observe(self.deps, record(self.deps, arrival, call, outcome, admitted, duration_s))
