"""The relay: one model call from the client's request to the last byte of the response.

A pure ASGI endpoint (no BaseHTTPMiddleware: it would hide disconnects and cost per
request). The body is read within its limits (intake.py), parsed once, its model name
checked fit to echo in a header, and, where a rewriter is set, passed through the
rewrite pipeline and serialized once if it changed. Response bytes go to the client
unchanged and at once; a tap beside them parses the SSE events to learn time to first
token and usage, which reach the meter at the end.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import httpx
import orjson
from starlette.types import Message, Receive, Scope, Send

from gateway.admission import Admitted, Gate
from gateway.cache.coalesce import Coalescer
from gateway.cache.registry import PrefixRegistry, Seen
from gateway.cache.shared_prefixes import SharedPrefixes
from gateway.cascade.dispatch import (
    Candidate,
    ChainFailed,
    Deadline,
    Dispatcher,
    Route,
    Started,
)
from gateway.cascade.shadow import Answer, ShadowCall, Shadows
from gateway.cascade.table import RoutingTable, StepPlan
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    UnsupportedMediaType,
    new_request_id,
)
from gateway.metering.calls import CallRecord, Meter
from gateway.metering.ceiling import price_context
from gateway.metering.pricing import UNPRICED_MODEL
from gateway.rewrite.fingerprint import Fingerprint
from gateway.rewrite.prompt_cache import KEY_RULE
from gateway.rewrite.request import Lesson, LLMRequest, Rewrite
from gateway.server.disconnect import DisconnectWatch
from gateway.server.intake import Intake
from gateway.wire.call import Attempt
from gateway.wire.echo import EchoFilter, unecho
from gateway.wire.formats import ChunkFilter, TextCollector, WireFormat, error_response
from gateway.wire.headers import (
    client_response_headers,
    header_value,
    is_json,
    safe_model_name,
    upstream_request_headers,
    with_credential,
)
from gateway.wire.usage import Reported, Usage

STEP_HEADER = b"x-gateway-step"
ROUTE_HEADER = b"x-gateway-route"
CUT_MESSAGE = "The provider closed the connection mid-stream; the response is incomplete."
TIMEOUT_MESSAGE = "The stream did not finish within its time limit of {:g} s; it is incomplete."
LOG = logging.getLogger("gateway.relay")
Rewriter = Callable[[LLMRequest], LLMRequest]


@dataclass(frozen=True, slots=True)
class Prepared:
    """The call as it goes upstream: the body to send and what the gateway did to it."""

    body: bytes
    model: str | None = None  # as the client asked
    rewrites: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    fingerprint: Fingerprint | None = None
    min_cacheable_tokens: int = 0
    sent_model: str | None = None  # after routing and pinning
    payload: dict[str, Any] | None = None  # the body as sent, for fallbacks to change the model
    tier: str | None = None
    plan: StepPlan | None = None
    # The gateway asked the stream for its usage: what that added is taken out again.
    filtered: bool = False
    # What the rewrite stages learned from the request: kept once the provider accepts it.
    lessons: tuple[Lesson, ...] = ()
    # A value the gateway added to the request (its prompt_cache_key, as JSON) that the
    # provider echoes back: the client gets null in its place (wire/echo.py).
    injected: bytes | None = None

    def candidates(self, provider: str) -> list[Candidate]:
        """The model the call goes to, then the step's fallbacks, each with its body."""
        first = Candidate(self.sent_model or self.model or "", self.body)
        if self.plan is None or self.payload is None:
            return [first]
        return [first, *(self._on(model) for model in self.plan.fallbacks.get(provider, ()))]

    def hedge(self, provider: str) -> tuple[float | None, Candidate | None]:
        """When to hedge and with what: the first fallback, else the same model."""
        plan = self.plan
        if plan is None or not plan.hedge or plan.ttft_ms is None or self.payload is None:
            return None, None
        fallbacks = plan.fallbacks.get(provider, ())
        model = fallbacks[0] if fallbacks else self.sent_model or self.model or ""
        return plan.ttft_ms / 1000, self._on(model)

    def models(self, provider: str) -> tuple[str, tuple[str, ...]]:
        """The model the call goes to, and every other one it may call: its fallbacks, the
        hedge and the shadow. A gateway key must be allowed each (access.py authorizes)."""
        first = self.sent_model or self.model or ""
        plan = self.plan
        if plan is None or self.payload is None:
            return first, ()
        others = list(plan.fallbacks.get(provider, ()))
        if plan.shadow is not None:
            others.append(plan.shadow.model)
        return first, tuple(others)

    def billed_models(self, provider: str) -> tuple[str, ...]:
        """The models whose calls are charged to the caller: all but the shadow's."""
        plan = self.plan
        fallbacks = plan.fallbacks.get(provider, ()) if plan is not None and self.payload else ()
        return (self.sent_model or self.model or "", *fallbacks)

    def without(self, refused: frozenset[str], provider: str) -> Prepared:
        """The call without the fallbacks, hedge and shadow the caller may not use."""
        plan = self.plan
        if not refused or plan is None:
            return self
        fallbacks = {**plan.fallbacks}
        fallbacks[provider] = tuple(m for m in fallbacks.get(provider, ()) if m not in refused)
        shadow = plan.shadow if plan.shadow is None or plan.shadow.model not in refused else None
        return replace(self, plan=replace(plan, fallbacks=fallbacks, shadow=shadow))

    def _on(self, model: str) -> Candidate:
        assert self.payload is not None
        return Candidate(model, orjson.dumps({**self.payload, "model": model}))


@dataclass(slots=True)
class Outcome:
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


@dataclass(slots=True)
class Flight:
    """Whether the call has gone upstream: set before the first attempt is sent, read when
    the client leaves mid-call (the relay's task is cancelled, its locals lost)."""

    dispatched: bool = False
    begun: Started | None = None  # the attempt being relayed, once there is one


# An attempt that was not relayed but may have made tokens nobody reported: a hedge race's
# loser, a stream cut or a response abandoned at the deadline. An error status is not billed.
UNSEEN_ATTEMPT_STATUSES = frozenset({"cut", "504"})


def unseen_attempts(attempts: tuple[Attempt, ...]) -> int:
    """Attempts other than the answer's that may have made tokens nobody reported."""
    return sum(
        1
        for a in attempts
        if not a.relayed and (a.cancelled or a.status in UNSEEN_ATTEMPT_STATUSES)
    )


class Relay:
    def __init__(
        self,
        dispatcher: Dispatcher,  # built with wire.new_tap
        meter: Meter,
        wire: WireFormat,
        intake: Intake,  # the request body's size and time limits
        rewriter: Rewriter | None = None,
        registry: PrefixRegistry | None = None,
        coalescer: Coalescer | None = None,
        coalesce_steps: frozenset[str] = frozenset(),
        gate: Gate | None = None,  # gateway keys, budgets, rate limits (access.py)
        shared_prefixes: SharedPrefixes | None = None,  # the registry across replicas
        routing: RoutingTable | None = None,
        shadows: Shadows | None = None,
    ) -> None:
        self.dispatcher = dispatcher
        self.intake = intake
        self.routing = routing
        self.shadows = shadows
        self.meter = meter
        self.wire = wire
        self.provider = wire.provider
        self.rewriter = rewriter
        self.registry = registry
        self.coalescer = coalescer
        self.coalesce_steps = coalesce_steps
        self.gate = gate
        self.shared_prefixes = shared_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        started_at = time.time()
        request_id = new_request_id()
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        raw_step = header_value(headers, STEP_HEADER)
        step = raw_step.decode("latin-1") if raw_step is not None else None
        call = Prepared(b"")
        admitted: Admitted | None = None
        try:
            # Who calls, from the headers alone: nothing reads or learns from the body of a
            # caller that is refused.
            caller = await self.gate.authenticate(headers, step) if self.gate else None
            body = await self.intake.read(headers, receive)
            call = self._prepare(scope["method"], headers, body, step)
            if self.gate is not None and caller is not None:
                # What the call will use, once routed: the models, then the budget (the one
                # pre-flight state round trip).
                model, others = call.models(self.provider)
                call = call.without(self.gate.authorize(caller, model, others), self.provider)
                admitted = await self.gate.admit(
                    caller, self.provider, call.billed_models(self.provider), call.payload
                )
                if admitted is not None:
                    scope = {**scope, "headers": with_credential(headers, admitted.credential)}
                    call = _as_judged(call, body)
        except GatewayError as error:
            await self._send_error(send, error, request_id)
            self._complete(request_id, step, call, Outcome(str(error.status)), started, started_at)
            return
        outcome = Outcome("client_closed", call.sent_model)
        flight = Flight()
        # A client that leaves must stop the upstream call at once, wherever the relay waits.
        async with DisconnectWatch(receive) as watch:

            async def send_until_done(message: Message) -> None:
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    watch.disarm()
                await send(message)

            try:
                outcome = await self._relay(
                    scope, send_until_done, call, step, request_id, started, flight
                )
            except GatewayError as error:
                outcome = Outcome(str(error.status), call.sent_model)
                await self._send_error(send_until_done, error, request_id)
            except ChainFailed as failed:  # every attempt failed before a response
                failed.error.retried = len(failed.attempts) > 1
                status = str(failed.error.status)
                attempts = tuple(failed.attempts)
                outcome = Outcome(status, call.sent_model, attempts=attempts)
                # The attempt given up on at a cut or the deadline may have made tokens.
                outcome.unseen = (
                    attempts[-1].status in UNSEEN_ATTEMPT_STATUSES if attempts else False
                )
                await self._send_error(send_until_done, failed.error, request_id)
            finally:
                if outcome.status == "client_closed":
                    outcome = self._left(outcome, flight)
                await self._share(call, outcome, started_at)
                self._complete(request_id, step, call, outcome, started, started_at, admitted)

    def _left(self, outcome: Outcome, flight: Flight) -> Outcome:
        """A call the client left: what the upstream attempt reported before, and whether
        its tokens went unreported (any call sent upstream whose final usage was not seen)."""
        begun = flight.begun
        if begun is None:
            outcome.unseen = flight.dispatched
            return outcome
        outcome.model = begun.model
        outcome.attempts = tuple(begun.attempts)
        if begun.tap is not None:
            outcome.usage = begun.tap.usage
            outcome.unseen = not begun.tap.usage_final
            outcome.service_tier = begun.tap.service_tier
        elif begun.body is not None and begun.response.is_success:
            outcome.usage = self.wire.usage_from_body(begun.body).usage
            outcome.unseen = outcome.usage is None
        return outcome

    def _prepare(
        self, method: str, headers: list[tuple[bytes, bytes]], raw: bytes, step: str | None
    ) -> Prepared:
        if method != "POST":
            return Prepared(raw)
        if not is_json(header_value(headers, b"content-type")):
            raise UnsupportedMediaType("Content-Type must be application/json.")
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The request body is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        model = parsed.get("model")
        model = model if isinstance(model, str) else None
        if model is not None and not safe_model_name(model):
            # It is echoed in x-gateway-model, and named in logs and metrics.
            raise InvalidRequest(
                "model: must be 1 to 256 printable ASCII characters, without spaces."
            )
        if self.rewriter is None:
            asked, filtered = self._ask_usage(parsed)
            body = _dumps(asked) if filtered else raw
            return Prepared(body, model, filtered=filtered, payload=asked)
        routing = header_value(headers, ROUTE_HEADER) != b"off"
        request = LLMRequest(self.provider, parsed, step, _tenant(headers), routing)
        try:
            request = self.rewriter(request)
        except GatewayError:
            raise  # a policy's refusal (an unknown tier, a rejected alias): the client's to fix
        except Exception:
            # A body the stages do not understand is the provider's to judge: send it as is.
            LOG.exception("rewrite failed; the request is forwarded unchanged")
            asked, filtered = self._ask_usage(parsed)
            body = _dumps(asked) if filtered else raw
            return Prepared(
                body, model, findings=("rewrite_failed",), filtered=filtered, payload=asked
            )
        sent = request.body.get("model")
        sent = sent if isinstance(sent, str) else model
        payload, filtered = self._ask_usage(request.body)
        return Prepared(
            _dumps(payload) if request.changed or filtered else raw,
            model,
            tuple(rewrite.rule for rewrite in request.rewrites),
            tuple(finding.code for finding in request.findings),
            request.fingerprint,
            request.min_cacheable_tokens,
            sent,
            payload,
            request.tier,
            self.routing.plan(step) if self.routing is not None else None,
            filtered,
            request.lessons,
            _injected_key(request.rewrites),
        )

    def _ask_usage(self, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """A stream that would not report its usage, asked to (OpenAI chat without
        include_usage); True when the body changed and the stream must be filtered."""
        ask = self.wire.ask_usage
        return (body, False) if ask is None else ask(body)

    def _coalescing_prefix(self, call: Prepared, step: str | None) -> bytes | None:
        """The prefix to coalesce on: a cold one, on a step that opted in."""
        if (
            self.registry is None
            or call.fingerprint is None
            or not ("*" in self.coalesce_steps or step in self.coalesce_steps)
            or self.registry.is_warm(call.fingerprint, time.time())
        ):
            return None
        return call.fingerprint.shared

    async def _relay(
        self,
        scope: Scope,
        send: Send,
        call: Prepared,
        step: str | None,
        request_id: str,
        started: float,
        flight: Flight,
    ) -> Outcome:
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        route = Route(
            self.provider, scope["method"], target, upstream_request_headers(scope["headers"])
        )
        shadow = self._shadow(route, call, request_id)
        try:
            outcome = await self._relay_call(
                route, send, call, step, started, request_id, shadow, flight
            )
        except BaseException:
            if shadow is not None:
                shadow.primary_done(Answer(call.sent_model, "failed", "", None, None, 0.0))
            raise
        outcome.shadow = shadow
        return outcome

    def _shadow(self, route: Route, call: Prepared, request_id: str) -> ShadowCall | None:
        if self.shadows is None or call.plan is None or call.payload is None:
            return None
        return self.shadows.start(route, call.payload, call.plan, request_id, self.wire)

    async def _relay_call(
        self,
        route: Route,
        send: Send,
        call: Prepared,
        step: str | None,
        started: float,
        request_id: str,
        shadow: ShadowCall | None,
        flight: Flight,
    ) -> Outcome:
        prefix = self._coalescing_prefix(call, step)
        preflight_s = time.perf_counter() - started
        lead = await self.coalescer.join(prefix) if self.coalescer and prefix else None
        coalesced = prefix is not None and lead is None
        hedge_after_s, hedge_with = call.hedge(self.provider)
        limits = self.dispatcher.upstream.settings(self.provider)
        step_s = call.plan.timeout_s if call.plan is not None else None
        deadline = Deadline.after(step_s or limits.total_timeout_s)
        try:
            flight.dispatched = True
            begun = await self.dispatcher.start(
                route, call.candidates(self.provider), hedge_after_s, hedge_with, deadline
            )
            flight.begun = begun
        finally:
            if lead is not None and prefix is not None and self.coalescer is not None:
                self.coalescer.release(prefix, lead)
        answered = time.time()
        response = begun.response
        if response.is_success:  # the provider accepted the call: its lessons are kept
            for lesson in call.lessons:
                lesson()
        own = [
            (b"x-gateway-request-id", request_id.encode()),
            (b"x-gateway-model", begun.model.encode()),
        ]
        if call.rewrites:  # absent when nothing was rewritten, never sent empty
            own.append((b"x-gateway-rewrites", ",".join(call.rewrites).encode()))
        if begun.retried and not response.is_success:
            # The gateway has retried already: the SDK's own retries would multiply them.
            own.append((b"x-should-retry", b"false"))
        try:
            collect = shadow is not None
            if begun.tap is not None:
                cap = limits.max_event_bytes
                text = self.wire.new_stream_text(cap) if collect else None
                new_filter = self.wire.new_usage_filter
                strip = new_filter(cap) if call.filtered and new_filter is not None else None
                if call.injected is not None:
                    echo = EchoFilter(call.injected, NULL)
                    strip = echo if strip is None else _Chained(strip, echo)
                # From the first attempt, as the call's deadline: a stream may run longer.
                ends = Deadline(
                    deadline.at - deadline.seconds + (step_s or limits.stream_timeout_s),
                    step_s or limits.stream_timeout_s,
                )
                await send(self._start(response, own))
                outcome = await self._relay_stream(begun, send, started, text, strip, ends)
                outcome.text = text.text if text is not None else ""
            else:
                outcome = await self._relay_body(
                    response,
                    send,
                    begun.model,
                    own,
                    collect,
                    begun.body,
                    deadline,
                    call.payload,
                    call.injected,
                )
            outcome.answered = answered
            outcome.coalesced = coalesced
            outcome.overhead_s += preflight_s
            outcome.attempts = tuple(begun.attempts)
            return outcome
        finally:
            await response.aclose()

    @staticmethod
    def _start(response: httpx.Response, own: list[tuple[bytes, bytes]]) -> Message:
        """Upstream's headers and the gateway's, less upstream's Content-Length: a stream's
        bytes may change on the way (the usage filter, an error event at a cut), and a JSON
        body's length is added by its caller, from the body it holds."""
        headers = client_response_headers(response.headers.raw, own, keep_length=False)
        return {"type": "http.response.start", "status": response.status_code, "headers": headers}

    async def _relay_stream(
        self,
        begun: Started,
        send: Send,
        started: float,
        text: TextCollector | None,
        strip: ChunkFilter | None,
        deadline: Deadline,
    ) -> Outcome:
        """Chunks go to the client as they come; with `strip`, less what the gateway asked for
        (the tap and the text still see every upstream byte). A stream still going at
        `deadline` is ended with the wire's error event, as a cut one is."""
        tap = begun.tap
        assert tap is not None
        response = begun.response
        ttft_s: float | None = None
        tap_s = 0.0
        last = b"\n\n"
        # The prelude: what the dispatcher read up to the first content event, sent at once.
        for chunk in begun.prelude:
            out = strip.feed(chunk) if strip is not None else chunk
            await send({"type": "http.response.body", "body": out, "more_body": True})
            if text is not None:
                text.feed(chunk)
        if tap.saw_content:
            ttft_s = time.perf_counter() - started
        ended: str | None = None
        try:
            async with asyncio.timeout_at(deadline.at):
                async for chunk in _body(response):
                    out = strip.feed(chunk) if strip is not None else chunk
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                    last = out or last
                    if text is not None:
                        text.feed(chunk)
                    before = time.perf_counter()
                    tap.feed(chunk)
                    if ttft_s is None and tap.saw_content:
                        ttft_s = before - started
                    tap_s += time.perf_counter() - before
        except httpx.TransportError:
            ended, message = "cut", CUT_MESSAGE
        except TimeoutError:
            ended, message = "504", TIMEOUT_MESSAGE.format(deadline.seconds)
        if ended is not None:
            # Bytes have reached the client, so nothing is replayed: the stream ends with an
            # error event the SDK raises, instead of a dropped connection.
            # (A filter holds back only an incomplete event: it is dropped, not flushed.)
            end = b"" if last.endswith(b"\n\n") else b"\n\n"
            end += self.wire.stream_error_event(message)
            await send({"type": "http.response.body", "body": end, "more_body": False})
            outcome = Outcome(ended, tap.model or begun.model, ttft_s, tap.usage, overhead_s=tap_s)
            outcome.unseen = not tap.usage_final
            outcome.service_tier = tap.service_tier
            return outcome
        tail = strip.flush() if strip is not None else b""
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        status = "stream_error" if tap.error_type else str(response.status_code)
        return Outcome(
            status,
            tap.model or begun.model,
            ttft_s,
            tap.usage,
            overhead_s=tap_s,
            message_id=tap.message_id,
            miss_reason=tap.miss_reason,
            unseen=not tap.usage_final,
            service_tier=tap.service_tier,
        )

    async def _relay_body(
        self,
        response: httpx.Response,
        send: Send,
        model: str | None,
        own: list[tuple[bytes, bytes]],
        collect: bool,
        body: bytes | None,
        deadline: Deadline,
        payload: dict[str, Any] | None = None,  # the request, for the tier it asked for
        injected: bytes | None = None,
    ) -> Outcome:
        """A whole JSON body is read before the headers go, to add its cost to them: by the
        dispatcher (a cut is retried there), or here for an error relayed after the retries."""
        if body is None:
            # Nothing reached the client yet: a cut, silence or an oversized body is an error
            # in the caller's envelope, not half a body; so is one still coming at the deadline
            # (a response given up on for lack of time has some left to be read).
            try:
                async with asyncio.timeout_at(deadline.at):
                    body = await self.dispatcher.upstream.read(self.provider, response)
            except TimeoutError:
                raise deadline.passed() from None
        before = time.perf_counter()
        reported = self.wire.usage_from_body(body) if response.is_success else Reported()
        used, usage = reported.model, reported.usage
        if usage is not None:
            context = price_context(payload or {}, reported.service_tier)
            cost = self.meter.pricing.cost(self.provider, used or model, usage, context=context)
            if cost is not None:
                own = [*own, (b"x-gateway-cost-usd", f"{cost:.6f}".encode())]
        if injected is not None and response.is_success:
            body = unecho(body, injected, NULL)  # the client sent no key: none comes back
        overhead_s = time.perf_counter() - before
        # The body is held whole: its length goes with it, whichever attempt it came from and
        # whether upstream sent one or chunked it.
        length = [(b"content-length", str(len(body)).encode())]
        await send(self._start(response, own + length))
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return Outcome(
            str(response.status_code),
            used or model,
            None,
            usage,
            overhead_s=overhead_s,
            message_id=reported.message_id,
            miss_reason=reported.miss_reason,
            text=self.wire.message_text(body) if collect else "",
            # A success without usage (a background call, queued) is charged its reservation.
            unseen=response.is_success and usage is None,
            service_tier=reported.service_tier,
        )

    async def _send_error(self, send: Send, error: GatewayError, request_id: str) -> None:
        headers, body = error_response(self.wire, error, request_id)
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    def _complete(
        self,
        request_id: str,
        step: str | None,
        call: Prepared,
        outcome: Outcome,
        started: float,
        started_at: float,
        admitted: Admitted | None = None,
    ) -> None:
        record = CallRecord(
            request_id=request_id,
            provider=self.provider,
            step=step,
            model_requested=call.model,
            model_used=outcome.model,
            status=outcome.status,
            duration_s=time.perf_counter() - started,
            ttft_s=outcome.ttft_s,
            usage=outcome.usage,
            rewrites=call.rewrites,
            findings=call.findings,
            coalesced=outcome.coalesced,
            overhead_s=outcome.overhead_s or None,
            started_at=started_at,
            key=admitted.key.name if admitted is not None else None,
            tier=call.tier,
            attempts=outcome.attempts,
            budget_breaches=_breaches(call, outcome, time.perf_counter() - started),
            context=price_context(call.payload or {}, outcome.service_tier),
        )
        if (
            self.registry is not None
            and call.fingerprint is not None
            and outcome.usage is not None
            and outcome.answered is not None
        ):
            verdict = self.registry.record(
                call.fingerprint,
                outcome.usage,
                started_at,
                outcome.answered,
                call.min_cacheable_tokens,
                self.meter.label_values(record),
                message_id=outcome.message_id,
                provider_reason=outcome.miss_reason,
                step=step,
            )
            record = replace(record, cache=verdict)
        metered = self.meter.on_call_complete(record)
        if outcome.shadow is not None:
            answer = Answer(
                record.model_used,
                record.status,
                outcome.text,
                record.usage,
                metered.cost_usd,
                round(record.duration_s * 1000, 3),
            )
            outcome.shadow.primary_done(answer)
        if admitted is not None and self.gate is not None:
            # No price for the model, or tokens made that no usage reported: its reservation
            # is the charge, never nothing; so is each other attempt's that may have.
            unpriced = UNPRICED_MODEL in metered.findings
            self.gate.settle(
                admitted,
                metered.cost_usd,
                outcome.usage,
                at_least_reserved=unpriced or outcome.unseen,
                unseen_attempts=unseen_attempts(outcome.attempts),
            )

    async def _share(self, call: Prepared, outcome: Outcome, started_at: float) -> None:
        """Another replica's last call of this conversation, before the registry judges this
        one, and this one shared in its place: one state round trip, after the client has
        its response."""
        if (
            self.shared_prefixes is not None
            and self.registry is not None
            and call.fingerprint is not None
            and outcome.usage is not None
            and outcome.answered is not None
        ):
            seen = Seen.of(
                call.fingerprint, outcome.usage, started_at, outcome.answered, outcome.message_id
            )
            await self.shared_prefixes.exchange(call.fingerprint, seen, self.registry)


NULL = b"null"


def _dumps(body: dict[str, Any]) -> bytes:
    """A body the gateway changed, serialised; one nested past orjson's 255 levels cannot be
    (the providers refuse such bodies too): a 400, not the gateway's own 500."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise InvalidRequest("The request body is nested too deeply.") from None


def _as_judged(call: Prepared, raw: bytes) -> Prepared:
    """A gateway key's call goes out as the gateway judged it (model, output limits): a body
    sent as it came is serialised from its parse, so that a duplicated key (orjson keeps the
    last, a provider may keep the first) cannot call another model or limit than the one
    authorized and reserved for. ~30 µs for a 270 KB body (orjson.dumps)."""
    if call.body is not raw or call.payload is None:
        return call  # changed, so serialised from the parse already
    return replace(call, body=_dumps(call.payload))


class _Chained:
    """Two chunk filters, one after the other."""

    def __init__(self, first: ChunkFilter, second: ChunkFilter) -> None:
        self.first = first
        self.second = second

    def feed(self, chunk: bytes) -> bytes:
        return self.second.feed(self.first.feed(chunk))

    def flush(self) -> bytes:
        return self.second.feed(self.first.flush()) + self.second.flush()


def _injected_key(rewrites: tuple[Rewrite, ...]) -> bytes | None:
    """The prompt_cache_key the gateway added, as it appears in JSON; None if it added none."""
    for rewrite in rewrites:
        if rewrite.rule == KEY_RULE and rewrite.detail:
            return orjson.dumps(rewrite.detail)
    return None


def _tenant(headers: list[tuple[bytes, bytes]]) -> bytes:
    credential = header_value(headers, b"x-api-key") or header_value(headers, b"authorization")
    return hashlib.blake2b(credential or b"", digest_size=8).digest()


def _body(response: httpx.Response) -> httpx.AsyncByteStream:
    """The transport's own byte stream: aiter_raw() adds a generator and a re-chunker per chunk."""
    assert isinstance(response.stream, httpx.AsyncByteStream)
    return response.stream


def _breaches(call: Prepared, outcome: Outcome, duration_s: float) -> tuple[str, ...]:
    budget = call.plan.budget if call.plan is not None else None
    if budget is None or outcome.status == "client_closed":
        return ()
    return budget.breaches(outcome.ttft_s, duration_s)
