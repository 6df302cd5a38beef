"""Bytes back to the client: a stream as it comes, or a JSON body whole; a tap on the side.

Response bytes go to the client unchanged and at once; beside them the tap parses the SSE
events to learn time to first token and usage, returned in one `Relayed` for the endpoint.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, NamedTuple

from starlette.types import Message, Send

from gateway.cascade.dispatch import Deadline, Started
from gateway.cascade.expiry import Expiry
from gateway.errors import GatewayError
from gateway.metering.ceiling import price_context
from gateway.metering.pricing import Priced, Pricing
from gateway.upstream import BodyBroken, Response, Upstream
from gateway.wire.echo import unecho
from gateway.wire.formats import WireFormat, client_filter, error_response
from gateway.wire.headers import RawHeaders, lowered_response_headers
from gateway.wire.tap import Tap
from gateway.wire.usage import Reported, Usage

CUT_MESSAGE = "The provider closed the connection mid-stream; the response is incomplete."
TIMEOUT_MESSAGE = "The stream did not finish within its time limit of {:g} s; it is incomplete."
TAP_BATCH_BYTES = 64 * 1024  # the most a stream's tap is behind its client, in bytes


class Relayed(NamedTuple):
    """What the relay saw of the response it passed on. A tuple, made at once (a frozen
    dataclass sets each of its eleven fields apart, through `object.__setattr__`)."""

    status: str  # the HTTP status, or stream_error / cut / 504 for a stream that failed
    model: str | None
    usage: Usage | None = None
    ttft_s: float | None = None  # streams only: the first content event
    overhead_s: float = 0.0  # the tap's time, or the body's usage and cost
    message_id: str | None = None
    miss_reason: str | None = None  # the provider's own diagnosis of a cache miss
    service_tier: str | None = None  # as the response reports it (OpenAI)
    unseen: bool = False  # tokens may have been made whose final usage was not seen
    text: str = ""  # the answer's text, collected only for a shadow pair
    priced: Priced | None = None  # a JSON body's cost, as its header says: not priced again


class Relay:
    """The response of one wire format's calls, from the attempt that started to the client."""

    def __init__(self, wire: WireFormat, upstream: Upstream, pricing: Pricing) -> None:
        self.wire = wire
        self.upstream = upstream
        self.pricing = pricing
        self.max_event_bytes = upstream.settings(wire.provider).max_event_bytes

    async def stream(
        self,
        begun: Started,
        send: Send,
        own: RawHeaders,
        started: float,  # perf_counter at the request's arrival
        deadline: Deadline,
        *,
        collect: bool,
        filtered: bool,  # the gateway asked for the stream's usage: taken out again
        injected: bytes | None,  # a value the gateway added, echoed back: null instead
    ) -> Relayed:
        """Chunks go to the client as they come, less what the gateway added (the tap and
        the text still see every upstream byte). A stream still going at `deadline`, or cut,
        is ended with the wire's error event."""
        tap = begun.tap
        assert tap is not None
        text = self.wire.new_stream_text(self.max_event_bytes) if collect else None
        strip = client_filter(self.wire, self.max_event_bytes, filtered, injected)
        await send(_start(begun.response, own))
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
        # After the first token the tap is fed in batches: what it reads (usage, errors, the
        # end) is wanted only once the stream ends, and one feed of many events costs less
        # than one per event (wire/sse.py: whole_events).
        held: list[bytes] = []
        held_bytes = 0
        # The deadline as `asyncio.timeout_at`'s, without its context manager (cascade/expiry.py).
        expiry = Expiry(deadline.at)
        try:
            try:
                async for chunk in begun.response:
                    out = strip.feed(chunk) if strip is not None else chunk
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                    last = out or last
                    if text is not None:
                        text.feed(chunk)
                    if ttft_s is not None:
                        held.append(chunk)
                        held_bytes += len(chunk)
                        if held_bytes > TAP_BATCH_BYTES:
                            tap_s += _feed(tap, held)
                            held_bytes = 0
                        continue
                    before = time.perf_counter()
                    tap.feed(chunk)
                    if tap.saw_content:
                        ttft_s = before - started
                    tap_s += time.perf_counter() - before
            except BaseException as error:
                if expiry.end(type(error) is asyncio.CancelledError):
                    raise TimeoutError from error  # the deadline's cancellation, as asyncio's
                raise
            else:
                expiry.end(False)
        except BodyBroken:
            ended, message = "cut", CUT_MESSAGE
        except TimeoutError:
            ended, message = "504", TIMEOUT_MESSAGE.format(deadline.seconds)
        finally:  # the client gone too: what the tap holds is read for the call's record
            tap_s += _feed(tap, held)
        if ended is not None:
            # Bytes have reached the client, so nothing is replayed: the stream ends with an
            # error event the SDK raises, instead of a dropped connection.
            # (A filter holds back only an incomplete event: it is dropped, not flushed.)
            end = b"" if last.endswith(b"\n\n") else b"\n\n"
            tail = end + self.wire.stream_error_event(message)
        else:
            tail = strip.flush() if strip is not None else b""
        await send({"type": "http.response.body", "body": tail, "more_body": False})
        complete = ended is None
        status = "stream_error" if tap.error_type else str(begun.response.status_code)
        # In the fields' order, not by keyword (a NamedTuple matches each keyword by name).
        return Relayed(
            ended or status,  # status
            tap.model or begun.model,  # model
            tap.usage,  # usage
            ttft_s,  # ttft_s
            tap_s,  # overhead_s
            tap.message_id if complete else None,  # message_id
            tap.miss_reason if complete else None,  # miss_reason
            tap.service_tier,  # service_tier
            not tap.usage_final,  # unseen
            text.text if text is not None else "",  # text
        )

    async def body(
        self,
        begun: Started,
        send: Send,
        own: RawHeaders,
        deadline: Deadline,
        *,
        collect: bool,
        payload: dict[str, Any] | None,  # the request, for the tier it asked for
        injected: bytes | None,
    ) -> Relayed:
        """A whole JSON body is read before the headers go, to add its cost to them: by the
        dispatcher (a cut is retried there), or here for an error relayed after the retries."""
        response, body = begun.response, begun.body
        if body is None:
            # Nothing reached the client yet: a cut, silence or an oversized body is an error
            # in the caller's envelope, not half a body; so is one still coming at the deadline
            # (a response given up on for lack of time has some left to be read).
            try:
                async with asyncio.timeout_at(deadline.at):
                    body = await self.upstream.read(self.wire.provider, response)
            except TimeoutError:
                raise deadline.passed() from None
        before = time.perf_counter()
        reported = self.wire.usage_from_body(body) if response.is_success else Reported()
        model = reported.model or begun.model
        priced = None
        if reported.usage is not None:
            context = price_context(payload or {}, reported.service_tier)
            cost = self.pricing.cost(self.wire.provider, model, reported.usage, context=context)
            if model is not None:
                priced = Priced(model, reported.usage, context, cost)
            if cost is not None:
                own = [*own, (b"x-gateway-cost-usd", f"{cost:.6f}".encode())]
        if injected is not None and response.is_success:
            body = unecho(body, injected, b"null")  # the client sent no key: none comes back
        overhead_s = time.perf_counter() - before
        # The body is held whole: its length goes with it, whichever attempt it came from and
        # whether upstream sent one or chunked it.
        length = [(b"content-length", str(len(body)).encode())]
        await send(_start(response, [*own, *length]))
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return Relayed(
            str(response.status_code),  # status
            model,  # model
            reported.usage,  # usage
            None,  # ttft_s
            overhead_s,  # overhead_s
            reported.message_id,  # message_id
            reported.miss_reason,  # miss_reason
            reported.service_tier,  # service_tier
            # A success without usage (a background call, queued) is charged its reservation.
            response.is_success and reported.usage is None,  # unseen
            self.wire.message_text(body) if collect else "",  # text
            priced,  # priced
        )

    async def error(self, send: Send, error: GatewayError, request_id: str) -> None:
        """The gateway's own error, in the wire's envelope."""
        headers, body = error_response(self.wire, error, request_id)
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _feed(tap: Tap, held: list[bytes]) -> float:
    """Feeds the tap the chunks held, as one, and empties the list: the time it took."""
    if not held:
        return 0.0
    before = time.perf_counter()
    tap.feed(held[0] if len(held) == 1 else b"".join(held))
    held.clear()
    return time.perf_counter() - before


def _start(response: Response, own: RawHeaders) -> Message:
    """Upstream's headers and the gateway's, less upstream's Content-Length: a stream's bytes
    may change on the way (the usage filter, an error event at a cut), and a JSON body's
    length is added by its caller, from the body it holds."""
    names, values = response.lowered()  # client_headers', in this frame
    headers = lowered_response_headers(names, values, own, keep_length=False)
    return {"type": "http.response.start", "status": response.status_code, "headers": headers}


def client_headers(response: Response, own: RawHeaders) -> RawHeaders:
    """The client's response headers (a body the gateway may change: no Content-Length), from
    the names the response lowered once."""
    names, values = response.lowered()
    return lowered_response_headers(names, values, own, keep_length=False)
