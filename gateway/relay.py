"""The relay: one model call from the client's request to the last byte of the response.

A pure ASGI endpoint (no BaseHTTPMiddleware: it would hide disconnects and cost per
request). The body is parsed once and, where a rewriter is set, passed through the
rewrite pipeline and serialized once if it changed. Response bytes go to the client
unchanged and at once; a tap beside them parses the SSE events to learn time to first
token and usage, which reach the meter at the end.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import httpx
import orjson
from starlette.types import Message, Receive, Scope, Send

from gateway.coalesce import Coalescer
from gateway.disconnect import DisconnectWatch
from gateway.errors import (
    GatewayError,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
    UpstreamUnavailable,
    render_anthropic,
)
from gateway.metering.calls import CallRecord, Meter
from gateway.rewrite.fingerprint import Fingerprint
from gateway.rewrite.request import LLMRequest
from gateway.state.registry import PrefixRegistry
from gateway.upstream import Upstream
from gateway.wire.anthropic_usage import Reported, StreamUsage, Usage, usage_from_message
from gateway.wire.headers import client_response_headers, header_value, upstream_request_headers

STEP_HEADER = b"x-gateway-step"
LOG = logging.getLogger("gateway.relay")
Rewriter = Callable[[LLMRequest], LLMRequest]


@dataclass(frozen=True, slots=True)
class Prepared:
    """The call as it goes upstream: the body to send and what the gateway did to it."""

    body: bytes
    model: str | None = None
    rewrites: tuple[str, ...] = ()
    findings: tuple[str, ...] = ()
    fingerprint: Fingerprint | None = None
    min_cacheable_tokens: int = 0


@dataclass(slots=True)
class Outcome:
    status: str
    model: str | None = None
    ttft_s: float | None = None
    usage: Usage | None = None
    answered: float | None = None  # wall-clock time the response began
    coalesced: bool = False  # waited for a concurrent call on the same cold prefix
    overhead_s: float = 0.0  # the gateway's own time: parsing, rewriting, the tap
    message_id: str | None = None
    miss_reason: str | None = None  # the provider's own diagnosis of a cache miss


class UpstreamCut(Exception):
    """Upstream dropped a stream mid-way: the client's connection is dropped the same way."""

    def __init__(self, outcome: Outcome) -> None:
        super().__init__("upstream closed the connection mid-stream")
        self.outcome = outcome


class Relay:
    def __init__(
        self,
        upstream: Upstream,
        meter: Meter,
        provider: str,
        max_body_bytes: int,
        rewriter: Rewriter | None = None,
        registry: PrefixRegistry | None = None,
        coalescer: Coalescer | None = None,
        coalesce_steps: frozenset[str] = frozenset(),
    ) -> None:
        self.upstream = upstream
        self.meter = meter
        self.provider = provider
        self.max_body_bytes = max_body_bytes
        self.rewriter = rewriter
        self.registry = registry
        self.coalescer = coalescer
        self.coalesce_steps = coalesce_steps

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        started_at = time.time()
        request_id = "gw_" + secrets.token_hex(12)
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        raw_step = header_value(headers, STEP_HEADER)
        step = raw_step.decode("latin-1") if raw_step is not None else None
        call = Prepared(b"")
        try:
            call = self._prepare(scope["method"], headers, await self._read_body(receive), step)
        except GatewayError as error:
            await self._send_error(send, error, request_id)
            self._complete(request_id, step, call, Outcome(str(error.status)), started, started_at)
            return
        outcome = Outcome("client_closed", call.model)
        # A client that leaves must stop the upstream call at once, wherever the relay waits.
        async with DisconnectWatch(receive) as watch:

            async def send_until_done(message: Message) -> None:
                if message["type"] == "http.response.body" and not message.get("more_body"):
                    watch.disarm()
                await send(message)

            try:
                outcome = await self._relay(scope, send_until_done, call, step, request_id, started)
            except GatewayError as error:
                outcome = Outcome(str(error.status), call.model)
                await self._send_error(send_until_done, error, request_id)
            except UpstreamCut as cut:
                outcome = cut.outcome
                raise  # ends the client's response without its last chunk, as upstream did
            finally:
                self._complete(request_id, step, call, outcome, started, started_at)

    async def _read_body(self, receive: Receive) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise PayloadTooLarge(f"Request body exceeds {self.max_body_bytes} bytes.")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _prepare(
        self, method: str, headers: list[tuple[bytes, bytes]], raw: bytes, step: str | None
    ) -> Prepared:
        if method != "POST":
            return Prepared(raw)
        content_type = header_value(headers, b"content-type") or b""
        if not content_type.startswith(b"application/json"):
            raise UnsupportedMediaType("Content-Type must be application/json.")
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise InvalidRequest("The request body is not valid JSON.") from None
        if not isinstance(parsed, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        model = parsed.get("model")
        model = model if isinstance(model, str) else None
        if self.rewriter is None:
            return Prepared(raw, model)
        try:
            request = self.rewriter(LLMRequest(self.provider, parsed, step, _tenant(headers)))
        except Exception:
            # A body the stages do not understand is the provider's to judge: send it as is.
            LOG.exception("rewrite failed; the request is forwarded unchanged")
            return Prepared(raw, model, findings=("rewrite_failed",))
        return Prepared(
            orjson.dumps(request.body) if request.changed else raw,
            model,
            tuple(rewrite.rule for rewrite in request.rewrites),
            tuple(finding.code for finding in request.findings),
            request.fingerprint,
            request.min_cacheable_tokens,
        )

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
    ) -> Outcome:
        target = scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            target += "?" + scope["query_string"].decode("latin-1")
        headers = upstream_request_headers(scope["headers"])
        prefix = self._coalescing_prefix(call, step)
        preflight_s = time.perf_counter() - started
        lead = await self.coalescer.join(prefix) if self.coalescer and prefix else None
        coalesced = prefix is not None and lead is None
        try:
            response = await self.upstream.open(
                self.provider, scope["method"], target, headers, call.body
            )
        finally:
            if lead is not None and prefix is not None and self.coalescer is not None:
                self.coalescer.release(prefix, lead)
        answered = time.time()
        own = [
            (b"x-gateway-request-id", request_id.encode()),
            (b"x-gateway-model", (call.model or "").encode()),
            (b"x-gateway-rewrites", ",".join(call.rewrites).encode()),
        ]
        try:
            if response.headers.get("content-type", "").startswith("text/event-stream"):
                await send(self._start(response, own))
                outcome = await self._relay_stream(response, send, call.model, started)
            else:
                outcome = await self._relay_body(response, send, call.model, own)
            outcome.answered = answered
            outcome.coalesced = coalesced
            outcome.overhead_s += preflight_s
            return outcome
        finally:
            await response.aclose()

    @staticmethod
    def _start(response: httpx.Response, own: list[tuple[bytes, bytes]]) -> Message:
        headers = client_response_headers(response.headers.raw, own)
        return {"type": "http.response.start", "status": response.status_code, "headers": headers}

    async def _relay_stream(
        self, response: httpx.Response, send: Send, model: str | None, started: float
    ) -> Outcome:
        tap = StreamUsage()
        ttft_s: float | None = None
        tap_s = 0.0
        try:
            async for chunk in _body(response):
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                before = time.perf_counter()
                tap.feed(chunk)
                if ttft_s is None and tap.saw_content:
                    ttft_s = before - started
                tap_s += time.perf_counter() - before
        except httpx.TransportError:
            cut = Outcome("cut", tap.model or model, ttft_s, tap.usage, overhead_s=tap_s)
            raise UpstreamCut(cut) from None
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        status = "stream_error" if tap.error_type else str(response.status_code)
        return Outcome(
            status,
            tap.model or model,
            ttft_s,
            tap.usage,
            overhead_s=tap_s,
            message_id=tap.message_id,
            miss_reason=tap.miss_reason,
        )

    async def _relay_body(
        self,
        response: httpx.Response,
        send: Send,
        model: str | None,
        own: list[tuple[bytes, bytes]],
    ) -> Outcome:
        """A whole JSON body is read before the headers go, to add its cost to them."""
        try:
            body = b"".join([chunk async for chunk in _body(response)])
        except httpx.TransportError:
            # Nothing reached the client yet: it gets an error it can retry, not half a body.
            raise UpstreamUnavailable(
                f"{self.provider} closed the connection mid-response"
            ) from None
        before = time.perf_counter()
        reported = usage_from_message(body) if response.is_success else Reported()
        used, usage = reported.model, reported.usage
        if usage is not None:
            cost = self.meter.pricing.cost(self.provider, used or model, usage)
            if cost is not None:
                own = [*own, (b"x-gateway-cost-usd", f"{cost:.6f}".encode())]
        overhead_s = time.perf_counter() - before
        await send(self._start(response, own))
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return Outcome(
            str(response.status_code),
            used or model,
            None,
            usage,
            overhead_s=overhead_s,
            message_id=reported.message_id,
            miss_reason=reported.miss_reason,
        )

    @staticmethod
    async def _send_error(send: Send, error: GatewayError, request_id: str) -> None:
        body = render_anthropic(error, request_id)
        await send(
            {
                "type": "http.response.start",
                "status": error.status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-gateway-request-id", request_id.encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    def _complete(
        self,
        request_id: str,
        step: str | None,
        call: Prepared,
        outcome: Outcome,
        started: float,
        started_at: float,
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
            )
            record = replace(record, cache=verdict)
        self.meter.on_call_complete(record)


def _tenant(headers: list[tuple[bytes, bytes]]) -> bytes:
    credential = header_value(headers, b"x-api-key") or header_value(headers, b"authorization")
    return hashlib.blake2b(credential or b"", digest_size=8).digest()


def _body(response: httpx.Response) -> httpx.AsyncByteStream:
    """The transport's own byte stream: aiter_raw() adds a generator and a re-chunker per chunk."""
    assert isinstance(response.stream, httpx.AsyncByteStream)
    return response.stream
