"""Shadow calls: a sampled share of a step's calls also goes to a candidate model, in the
background, and both answers go to a JSON-lines file for offline evaluation.

This is how a team checks "can the small model do this step" on real traffic before it
switches. The client never waits: the shadow starts beside the primary call and the pair
is written once both have finished. The shadow's cost is metered apart from the calls
clients made (gateway_shadow_cost_usd_total).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import time
from dataclasses import asdict, dataclass
from typing import IO, Any

import orjson

from gateway.cascade.dispatch import Route
from gateway.cascade.table import StepPlan
from gateway.errors import GatewayError
from gateway.metering.calls import Meter
from gateway.upstream import Upstream
from gateway.wire.formats import WireFormat
from gateway.wire.usage import Usage

LOG = logging.getLogger("gateway.cascade.shadow")
# The primary may still be streaming when its shadow is done: a long answer takes minutes.
PRIMARY_WAIT_S = 900.0
# What a shadow in flight holds beside its body: its task, future and answer's record.
SHADOW_OVERHEAD_BYTES = 8 * 1024


@dataclass(frozen=True, slots=True)
class Answer:
    """One side of a pair: what a model answered and what it cost."""

    model: str | None
    status: str
    text: str
    usage: Usage | None
    cost_usd: float | None
    latency_ms: float


class ShadowCall:
    """A shadow in flight, waiting for its primary's answer to write the pair."""

    def __init__(self) -> None:
        self._primary: asyncio.Future[Answer] = asyncio.get_running_loop().create_future()

    def primary_done(self, answer: Answer) -> None:
        if not self._primary.done():
            self._primary.set_result(answer)

    async def primary(self) -> Answer:
        return await self._primary


class Shadows:
    def __init__(
        self,
        upstream: Upstream,
        meter: Meter,
        log_path: str,
        rng: random.Random | None = None,
        *,
        max_pending_bytes: int = 16 * 1024 * 1024,
    ) -> None:
        self.upstream = upstream
        self.meter = meter
        self.log_path = log_path
        self._random = rng or random.Random()
        self._out: IO[bytes] | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        # Shadows in flight hold their bodies: past this many bytes, a sampled call gets
        # none (counted as gateway_shadow_calls_total{status="skipped"}).
        self.max_pending_bytes = max_pending_bytes
        self.pending_bytes = 0

    def start(
        self,
        route: Route,
        payload: dict[str, Any],
        plan: StepPlan,
        request_id: str,
        wire: WireFormat,
    ) -> ShadowCall | None:
        """Starts a shadow for a sampled share of the step's calls; None for the rest."""
        shadow = plan.shadow
        if shadow is None or self._random.random() >= shadow.sample:
            return None
        # Not a stream: stream_options (OpenAI) would be rejected without one.
        fields = {k: v for k, v in payload.items() if k != "stream_options"}
        body = orjson.dumps({**fields, "model": shadow.model, "stream": False})
        held = len(body) + SHADOW_OVERHEAD_BYTES
        if self.pending_bytes + held > self.max_pending_bytes:
            self.meter.on_shadow(route.provider, shadow.model, plan.name, "skipped", None)
            return None
        call = ShadowCall()
        task = asyncio.create_task(
            self._run(call, route, body, shadow.model, plan, request_id, wire)
        )
        self.pending_bytes += held
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(lambda _: self._release(held))
        return call

    def _release(self, held: int) -> None:
        self.pending_bytes -= held

    async def _run(
        self,
        call: ShadowCall,
        route: Route,
        body: bytes,
        model: str,
        plan: StepPlan,
        request_id: str,
        wire: WireFormat,
    ) -> None:
        began = time.perf_counter()
        started_at = time.time()
        answer = await self._ask(route, body, model, plan, wire)
        del body  # not held while the primary may stream on for minutes
        try:
            primary = await asyncio.wait_for(call.primary(), timeout=PRIMARY_WAIT_S)
        except TimeoutError:
            LOG.warning("shadow pair %s dropped: the primary call never finished", request_id)
            return
        self._write(
            {
                "request_id": request_id,
                "time": dt.datetime.fromtimestamp(started_at, dt.UTC).isoformat(),
                "provider": route.provider,
                "step": plan.name,
                "primary": asdict(primary),
                "shadow": asdict(answer),
                "shadow_started_ms": round((time.perf_counter() - began) * 1000, 3),
            }
        )

    async def _ask(
        self, route: Route, body: bytes, model: str, plan: StepPlan, wire: WireFormat
    ) -> Answer:
        began = time.perf_counter()
        try:
            # A shadow is a whole call too: it never outlives the provider's total_timeout_s.
            async with asyncio.timeout(self.upstream.settings(route.provider).total_timeout_s):
                response = await self.upstream.open(
                    route.provider, "POST", route.target, route.headers, body
                )
                try:
                    raw = await self.upstream.read(route.provider, response)
                finally:
                    await response.aclose()
        except (GatewayError, TimeoutError) as error:
            status = str(error.status) if isinstance(error, GatewayError) else "cut"
            status = "504" if isinstance(error, TimeoutError) else status
            self.meter.on_shadow(route.provider, model, plan.name, status, None)
            return Answer(model, status, "", None, None, _ms(began))
        status = str(response.status_code)
        reported = wire.usage_from_body(raw) if response.is_success else None
        usage = reported.usage if reported is not None else None
        served = (reported.model if reported is not None else None) or model
        cost = self.meter.on_shadow(route.provider, served, plan.name, status, usage)
        text = wire.message_text(raw) if response.is_success else raw.decode("utf-8", "replace")
        return Answer(served, status, text, usage, cost, _ms(began))

    def _write(self, line: dict[str, Any]) -> None:
        if self._out is None:
            self._out = open(self.log_path, "ab")  # noqa: SIM115  # open for the process
        self._out.write(orjson.dumps(line) + b"\n")
        self._out.flush()

    async def aclose(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._out is not None:
            self._out.close()


def _ms(began: float) -> float:
    return round((time.perf_counter() - began) * 1000, 3)
