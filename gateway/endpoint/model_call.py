"""A model call, in flow.py's order: authenticate → read → parse and rewrite → authorize
(models, budget) → dispatch → relay → finish. The body is read within its limits
(server/intake.py), parsed once, rewritten by the pipeline and serialised once if it changed;
after the response, the prefix registry judges the call and every observer is given its one
record."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from starlette.types import Send

from gateway.admission import Admitted
from gateway.cache.coalesce import Coalescer
from gateway.cache.registry import PrefixRegistry
from gateway.cache.turns import Turns
from gateway.cascade.dispatch import Deadline, Route
from gateway.cascade.shadow import Answer, ShadowCall, Shadows
from gateway.cascade.table import RoutingTable
from gateway.endpoint.flow import Endpoint
from gateway.endpoint.observers import PrefixJudge
from gateway.endpoint.prepared import (
    Prepared,
    as_sent,
    ask_usage,
    injected_key,
    read_as,
    tenant_of,
)
from gateway.endpoint.record import Flight, Outcome
from gateway.endpoint.steps import Arrival, Plumbing, observe, record, relay
from gateway.errors import GatewayError
from gateway.rewrite.pipeline import Rewriter
from gateway.rewrite.request import LLMRequest
from gateway.wire.headers import first_values

ROUTE_HEADER = b"x-gateway-route"
LOG = logging.getLogger("gateway.endpoint")
# Where rewrites have failed (the innermost frame's file and line): the first failure at each
# place is logged with its traceback, later ones in a line, so that a client sending bodies
# the stages cannot read does not write a traceback a call. Past the bound, all are a line.
FAILED_AT_MAX = 256
_failed_at: set[tuple[str, int]] = set()


def log_rewrite_failure(error: Exception) -> None:
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = ("?", 0) if tb is None else (tb.tb_frame.f_code.co_filename, tb.tb_lineno)
    if where not in _failed_at and len(_failed_at) < FAILED_AT_MAX:
        _failed_at.add(where)
        LOG.error("rewrite failed; the request is forwarded unchanged", exc_info=error)
        return
    name = type(error).__name__
    LOG.warning("rewrite failed (%s at %s:%d); forwarded unchanged", name, *where)


@dataclass(frozen=True, slots=True)
class ModelParts:
    """What a model call adds to every endpoint's plumbing."""

    rewriter: Rewriter  # the rewrite pipeline for the wire format's bodies
    routing: RoutingTable
    registry: PrefixRegistry  # read for coalescing; PrefixJudge learns into it
    judge: PrefixJudge
    coalescer: Coalescer
    coalesce_steps: frozenset[str]
    shadows: Shadows
    turns: Turns | None = None  # each tenant's recent bodies, to parse the next by reusing


class ModelCall(Endpoint):
    def __init__(self, deps: Plumbing, parts: ModelParts) -> None:
        super().__init__(deps)
        self.parts = parts

    def prepare(self, method: str, arrival: Arrival, raw: bytes) -> Prepared:
        """Parsed, then rewritten by the pipeline (method: POST, the only one routed here)."""
        wire = self.deps.wire
        first = first_values(arrival.headers)  # the four headers read here, in one pass
        who = tenant_of(first.get(b"x-api-key") or first.get(b"authorization"))
        reading = read_as(first.get(b"content-type"), raw, self.parts.turns, who)
        parsed, model = reading.parsed, reading.model
        routing = first.get(ROUTE_HEADER) != b"off"
        request = LLMRequest(wire.provider, parsed, arrival.step, who, routing)
        try:
            request = self.parts.rewriter(request)
        except GatewayError:
            raise  # a policy's refusal (an unknown tier, a rejected alias): the client's to fix
        except Exception as error:
            # A body the stages do not understand is the provider's to judge: send it as is.
            log_rewrite_failure(error)
            return as_sent(wire, parsed, raw, model, findings=("rewrite_failed",))
        sent = request.body.get("model")
        payload, filtered = ask_usage(wire, request.body)
        # In the fields' order, not by keyword (a NamedTuple matches each keyword by name).
        return Prepared(
            reading.dumps(payload) if request.changed or filtered else raw,  # body
            model,  # model
            tuple([rewrite.rule for rewrite in request.rewrites]),  # rewrites
            tuple([finding.code for finding in request.findings]),  # findings
            request.fingerprint,  # fingerprint
            request.min_cacheable_tokens,  # min_cacheable_tokens
            sent if isinstance(sent, str) else model,  # sent_model
            payload,  # payload
            request.tier,  # tier
            self.parts.routing.plan(arrival.step),  # plan
            filtered,  # filtered
            request.observations,  # observations
            injected_key(request.rewrites),  # injected
            reading,  # reading
        )

    async def answer(
        self, route: Route, send: Send, call: Prepared, arrival: Arrival, flight: Flight
    ) -> Outcome:
        """The call upstream and its response to the client, a shadow beside them."""
        shadow = None if call.plan is None else self._shadow(route, call, arrival)
        try:
            return await self._dispatch(route, send, call, arrival, flight, shadow)
        except BaseException:
            if shadow is not None:
                shadow.primary_done(Answer(call.sent_model, "failed", "", None, None, 0.0))
            raise

    async def _dispatch(
        self,
        route: Route,
        send: Send,
        call: Prepared,
        arrival: Arrival,
        flight: Flight,
        shadow: ShadowCall | None,
    ) -> Outcome:
        deps, parts = self.deps, self.parts
        provider = deps.wire.provider
        prefix = self._coalescing_prefix(call, arrival.step) if parts.coalesce_steps else None
        preflight_s = time.perf_counter() - arrival.started
        lead = await parts.coalescer.join(prefix) if prefix is not None else None
        hedge_after_s, hedge_with = (None, None) if call.plan is None else call.hedge(provider)
        limits = deps.dispatcher.upstream.settings(provider)
        step_s = call.plan.timeout_s if call.plan is not None else None
        deadline = Deadline.after(step_s or limits.total_timeout_s)
        try:
            flight.dispatched = True
            begun = await deps.dispatcher.start(
                route, call.candidates(provider), hedge_after_s, hedge_with, deadline
            )
            flight.begun = begun
        finally:
            if lead is not None and prefix is not None:
                parts.coalescer.release(prefix, lead)
        answered = time.time()
        if begun.response.is_success:  # the provider accepted the call: learn what it showed
            self.parts.rewriter.learn(call.observations)
            if call.reading is not None and call.reading.turns is not None:
                call.reading.keep()
        stream_s = step_s or limits.stream_timeout_s
        relayed = await relay(
            deps, begun, send, call, arrival, deadline, stream_s, collect=shadow is not None
        )
        return Outcome.relayed(
            relayed,
            begun,
            answered=answered,
            preflight_s=preflight_s,
            coalesced=prefix is not None and lead is None,
            shadow=shadow,
        )

    def _shadow(self, route: Route, call: Prepared, arrival: Arrival) -> ShadowCall | None:
        if call.plan is None or call.payload is None:
            return None
        wire = self.deps.wire
        return self.parts.shadows.start(route, call.payload, call.plan, arrival.request_id, wire)

    def _coalescing_prefix(self, call: Prepared, step: str | None) -> bytes | None:
        """The prefix to coalesce on: a cold one, on a step that opted in."""
        steps = self.parts.coalesce_steps
        if (
            call.fingerprint is None
            or not ("*" in steps or step in steps)
            or self.parts.registry.is_warm(call.fingerprint, time.time())
        ):
            return None
        return call.fingerprint.shared

    async def finish(
        self, arrival: Arrival, call: Prepared, outcome: Outcome, admitted: Admitted | None
    ) -> None:
        deps = self.deps
        duration_s = time.perf_counter() - arrival.started
        judge = self.parts.judge
        if judge.shared is not None:  # replicas share the registry: its round trip first
            await judge.exchange(call, outcome, arrival.started_at)
        verdict = judge.judged(deps.wire.provider, call, outcome, arrival.started_at, arrival.step)
        observe(deps, record(deps, arrival, call, outcome, admitted, duration_s, verdict))
