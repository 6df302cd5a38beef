"""The steps every endpoint takes, pass-through or model call, as small functions."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import NamedTuple

from starlette.types import Message, Receive, Scope, Send

from gateway.admission import Admitted, Caller, Gate
from gateway.asgi.disconnect import DisconnectWatch
from gateway.cascade.dispatch import ChainFailed, Deadline, Dispatcher, Route, Started
from gateway.endpoint.observers import Observer
from gateway.endpoint.prepared import Prepared
from gateway.endpoint.record import UNSEEN_ATTEMPT_STATUSES, Outcome, Record
from gateway.errors import GatewayError, new_request_id
from gateway.metering.calls import CacheVerdict, CallRecord, Meter
from gateway.metering.ceiling import price_context
from gateway.relay import Relay, Relayed
from gateway.server.intake import Intake
from gateway.wire.formats import WireFormat
from gateway.wire.headers import RawHeaders, header_value, upstream_request_headers, with_credential

STEP_HEADER = b"x-gateway-step"
_new = tuple.__new__  # a NamedTuple made from its values in order, without its own frame


@dataclass(frozen=True, slots=True)
class Plumbing:
    """What every endpoint of one wire format uses."""

    wire: WireFormat
    intake: Intake  # the request body's size and time limits
    gate: Gate  # gateway keys, budgets, rate limits (admission/)
    dispatcher: Dispatcher  # built with wire.new_tap
    relay: Relay
    meter: Meter
    observers: tuple[Observer, ...]  # given the record of every finished call, in order


class Arrival(NamedTuple):
    """The request as it arrived: its id, when, its headers and the step it names."""

    request_id: str
    started: float  # perf_counter
    started_at: float  # wall clock
    headers: RawHeaders
    step: str | None

    @classmethod
    def of(cls, scope: Scope) -> Arrival:
        headers: RawHeaders = scope["headers"]
        step = header_value(headers, STEP_HEADER)
        return cls(
            new_request_id(),  # request_id
            time.perf_counter(),  # started
            time.time(),  # started_at
            headers,  # headers
            step.decode("latin-1") if step is not None else None,  # step
        )


async def admit(
    deps: Plumbing, caller: Caller | None, call: Prepared, raw: bytes, scope: Scope
) -> tuple[Prepared, Admitted | None, Scope]:
    """What a gateway key's call will use, once routed: the models, then the budget (the one
    pre-flight state round trip); the call goes out with the provider key in its place."""
    if caller is None:
        return call, None, scope  # a provider key, passed through as it came
    provider = deps.wire.provider
    model, others = call.models(provider)
    call = call.without(deps.gate.authorize(caller, model, others), provider)
    # Serialized before the reservation: a body that cannot be sent as judged is refused
    # with nothing reserved (after it, the refusal left the reservation unsettled).
    judged = call.as_judged(raw)
    models = call.billed_models(provider)
    # The ceiling reads only the length of the body as sent: a long one's unjoined parts serve.
    admitted = await deps.gate.admit(caller, provider, models, call.payload, judged.body)
    if admitted is None:
        return call, None, scope
    scope = {**scope, "headers": with_credential(scope["headers"], admitted.credential)}
    return judged, admitted, scope


def route_of(scope: Scope, provider: str) -> Route:
    target = scope["raw_path"].decode("latin-1")
    if scope["query_string"]:
        target += "?" + scope["query_string"].decode("latin-1")
    return Route(provider, scope["method"], target, upstream_request_headers(scope["headers"]))


async def respond(
    relay: Relay,
    scope: Scope,
    receive: Receive,
    send: Send,
    arrival: Arrival,
    call: Prepared,
    answer: Callable[[Send], Awaitable[Outcome]],
) -> Outcome | None:
    """The answer, cancelled at once if the client leaves (None then), wherever it waits;
    the gateway's own errors reach the client in its wire format."""
    # `async with DisconnectWatch(...)`, its enter and exit called as they are.
    watch = DisconnectWatch(receive, scope).enter()

    async def send_until_done(message: Message) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body"):
            watch.disarm()
        await send(message)

    try:
        try:
            outcome = await answer(send_until_done)
        except GatewayError as error:
            await relay.error(send_until_done, error, arrival.request_id)
            outcome = Outcome(str(error.status), call.sent_model)
        except ChainFailed as failed:  # every attempt failed before a response
            failed.error.retried = len(failed.attempts) > 1
            await relay.error(send_until_done, failed.error, arrival.request_id)
            attempts = tuple(failed.attempts)
            outcome = Outcome(
                str(failed.error.status),
                call.sent_model,
                attempts=attempts,
                # The attempt given up on at a cut or the deadline may have made tokens.
                unseen=bool(attempts) and attempts[-1].status in UNSEEN_ATTEMPT_STATUSES,
            )
    except BaseException as error:
        if watch.leave(type(error)):
            return None  # the client left: its cancellation is the watch's own
        raise
    watch.leave(None)
    return outcome


async def relay(
    deps: Plumbing,
    begun: Started,
    send: Send,
    call: Prepared,
    arrival: Arrival,
    deadline: Deadline,
    stream_s: float,  # a stream's own limit, from the call's start
    collect: bool = False,  # the answer's text, for a shadow pair
) -> Relayed:
    """The started attempt's response to the client, with the gateway's headers."""
    response = begun.response
    own = [
        (b"x-gateway-request-id", arrival.request_id.encode()),
        (b"x-gateway-model", begun.model.encode()),
    ]
    if call.rewrites:  # absent when nothing was rewritten, never sent empty
        own.append((b"x-gateway-rewrites", ",".join(call.rewrites).encode()))
    if not response.is_success and len(begun.attempts) > 1:  # `begun.retried`, inlined
        # The gateway has retried already: the SDK's own retries would multiply them.
        own.append((b"x-should-retry", b"false"))
    try:
        if begun.tap is None:
            return await deps.relay.body(
                begun, send, own, deadline,
                collect=collect, payload=call.payload, injected=call.injected,
            )  # fmt: skip
        # From the first attempt, as the call's deadline: a stream may run longer.
        ends = Deadline(deadline.at - deadline.seconds + stream_s, stream_s)
        return await deps.relay.stream(
            begun, send, own, arrival.started, ends,
            collect=collect, filtered=call.filtered, injected=call.injected,
        )  # fmt: skip
    finally:
        await response.aclose()


def record(
    deps: Plumbing,
    arrival: Arrival,
    call: Prepared,
    outcome: Outcome,
    admitted: Admitted | None,
    duration_s: float,
    verdict: CacheVerdict | None = None,
) -> Record:
    """The call's one record, priced."""
    budget = call.plan.budget if call.plan is not None else None
    breaches: tuple[str, ...] = ()
    if budget is not None and outcome.status != "client_closed":  # a call left is no breach
        breaches = budget.breaches(outcome.ttft_s, duration_s)
    priced, tier = outcome.priced, outcome.service_tier
    # In the fields' order, by `tuple.__new__`: a NamedTuple's own `__new__` matches 21
    # keywords to its parameters one by one (~10 K instructions more than the values in
    # order), and is a Python frame even by position (~3 K more than `tuple.__new__`).
    metered = _new(CallRecord, (
        arrival.request_id,  # request_id
        deps.wire.provider,  # provider
        arrival.step,  # step
        call.model,  # model_requested
        outcome.model,  # model_used
        outcome.status,  # status
        duration_s,  # duration_s
        outcome.ttft_s,  # ttft_s
        outcome.usage,  # usage
        call.rewrites,  # rewrites
        call.findings,  # findings
        verdict,  # cache
        outcome.coalesced,  # coalesced
        outcome.overhead_s or None,  # overhead_s
        arrival.started_at,  # started_at
        call.tier,  # tier
        outcome.attempts,  # attempts
        breaches,  # budget_breaches
        admitted.key.name if admitted is not None else None,  # key
        # The relay's, when it priced the answer: of the same payload and served tier.
        priced.context if priced is not None else price_context(call.payload or {}, tier),
        priced,  # priced
    ))  # fmt: skip
    return _new(Record, (
        metered,  # call
        deps.meter.price(metered),  # metered
        admitted,  # admitted
        outcome.unseen,  # unseen
        outcome.shadow,  # shadow
        outcome.text,  # text
    ))  # fmt: skip


def observe(deps: Plumbing, finished: Record) -> None:
    for observer in deps.observers:
        observer.observe(finished)
