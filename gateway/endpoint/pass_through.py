"""A call relayed as it comes (count_tokens, the model list): the key is checked and swapped,
nothing is rewritten, routed or charged."""

from __future__ import annotations

import time

from starlette.types import Send

from gateway.admission import Admitted
from gateway.cascade.dispatch import Deadline, Route
from gateway.endpoint.flow import Endpoint
from gateway.endpoint.prepared import Prepared, as_sent, parse
from gateway.endpoint.record import Flight, Outcome
from gateway.endpoint.steps import Arrival, observe, record, relay


class PassThrough(Endpoint):
    """Its plumbing's gate counts nothing (Gate.free_calls)."""

    def prepare(self, method: str, arrival: Arrival, raw: bytes) -> Prepared:
        if method != "POST":
            return Prepared(body=raw)
        parsed, model = parse(arrival.headers, raw)
        return as_sent(self.deps.wire, parsed, raw, model)

    async def answer(
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

    async def finish(
        self, arrival: Arrival, call: Prepared, outcome: Outcome, admitted: Admitted | None
    ) -> None:
        duration_s = time.perf_counter() - arrival.started
        observe(self.deps, record(self.deps, arrival, call, outcome, admitted, duration_s))
