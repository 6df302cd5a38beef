"""The composition root: settings in, the ASGI app out (server/edge.py routes its paths).

Model calls and pass-through paths get their pure ASGI endpoints; everything else — health,
readiness, metrics, the OpenAPI document, lifespan — is an ordinary FastAPI app behind them.
"""

from __future__ import annotations

import asyncio
import functools
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp

from gateway.admission import Gate
from gateway.cache.bounded import LearnedState
from gateway.cache.coalesce import Coalescer
from gateway.cache.learned import LearnedMemory
from gateway.cache.turns import Turns
from gateway.cascade.breaker import Breakers
from gateway.cascade.dispatch import Dispatcher
from gateway.cascade.lifecycle import Lifecycle, today
from gateway.cascade.refresh import refresh_lifecycle
from gateway.cascade.retry import RetryPolicy
from gateway.cascade.retry_budget import RetryBudget
from gateway.cascade.shadow import Shadows
from gateway.cascade.table import RoutingTable
from gateway.catalog import ModelCatalog
from gateway.endpoint.model_call import ModelCall, ModelParts
from gateway.endpoint.observers import Metering, PrefixJudge, Settlement, ShadowPair
from gateway.endpoint.pass_through import PassThrough
from gateway.endpoint.steps import Plumbing
from gateway.metering.call_log import CallLog
from gateway.metering.calls import CallWriter, Meter
from gateway.metering.ceiling import CostCeiling
from gateway.metering.labels import LabelBounds
from gateway.metering.metrics import Metrics
from gateway.metering.pricing import Pricing
from gateway.metering.tracing import CallTracer
from gateway.relay import Relay
from gateway.rewrite.pipeline import STAGES, RewriteContext, Rewriter
from gateway.server.edge import ByClient, Edge, framework_error
from gateway.server.intake import Intake
from gateway.settings import Settings
from gateway.state.stores import open_state
from gateway.upstream import Upstream
from gateway.wire.formats import (
    ANTHROPIC_MESSAGES,
    OPENAI_CHAT,
    OPENAI_RESPONSES,
    WireFormat,
)
from gateway.wire.tap import Tap

ANTHROPIC_ROUTES = (("POST", "/v1/messages/count_tokens"),)
MODEL_CALLS = {
    ("POST", "/v1/messages"): ANTHROPIC_MESSAGES,
    ("POST", "/v1/chat/completions"): OPENAI_CHAT,
    ("POST", "/v1/responses"): OPENAI_RESPONSES,
}


def _exposition(registry: CollectorRegistry) -> CollectorRegistry:
    """What /metrics reports: this process's registry, or with `--workers N` the sum of all
    workers' (prometheus-client multiprocess mode, which `gateway serve` switches on)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return registry
    combined = CollectorRegistry()
    MultiProcessCollector(combined)  # type: ignore[no-untyped-call]  # the library has no types here
    return combined


def _emulated(settings: Settings) -> frozenset[str]:
    """The providers whose upstream is Tollgate's emulator, which x-emulator-* headers reach:
    marked so (providers.NAME.emulator), or at the address of the one `serve` starts."""
    emulator = settings.emulator
    started = f"http://{emulator.host}:{emulator.port}" if settings.server.start_emulator else None
    providers = {"anthropic": settings.providers.anthropic, "openai": settings.providers.openai}
    return frozenset(
        name
        for name, provider in providers.items()
        if provider.emulator or provider.base_url.rstrip("/") == started
    )


def _relative(catalog: ModelCatalog) -> Callable[[str], str | None]:
    """The listed model an unlisted id follows the naming of: what it is priced as."""

    def relative(model: str) -> str | None:
        spec = catalog.nearest(model)
        return None if spec is None else spec.id

    return relative


def create_app(
    settings: Settings,
    registry: CollectorRegistry | None = None,
    transport: httpx.AsyncBaseTransport | None = None,  # the providers' (tests: a fake)
) -> Edge:
    registry = registry or CollectorRegistry()
    catalog = ModelCatalog.load(settings.models)
    labels = LabelBounds(
        settings.metering.steps,
        (name for spec in catalog.models for name in (spec.id, *spec.aliases)),
    )
    exported = Metrics(registry)
    metering = settings.metering
    call_log = CallLog.open(
        metering.call_log, metering.call_log_queue_bytes, exported.call_log_dropped.inc
    )
    writers: list[CallWriter] = [call_log]
    if settings.metering.otlp_endpoint:
        writers.append(CallTracer.otlp(settings.metering.otlp_endpoint))
    routing = RoutingTable(settings.routing, catalog)
    lifecycle = Lifecycle(catalog)
    window = settings.routing.retirement_window_days
    meter = Meter(
        exported,
        labels,
        Pricing.load(settings.pricing, _relative(catalog)),
        writers,
        retirement=lambda model: lifecycle.retiring_within(model, today(), window),
    )
    for alias, snapshot in routing.pins.items():
        meter.metrics.model_pins.labels(alias, snapshot).set(1)
    providers = {"anthropic": settings.providers.anthropic, "openai": settings.providers.openai}
    upstream = Upstream(
        providers, settings.server.upstream_transport, _emulated(settings), transport
    )
    state = open_state(settings.state, meter.metrics.state_errors)
    provider_keys = {name: provider.api_key for name, provider in providers.items()}
    aliases: dict[str, tuple[str, ...]] = {}
    for alias, snapshot in routing.pins.items():
        aliases[snapshot] = (*aliases.get(snapshot, ()), alias)
    gate = Gate(
        state.ledger,
        settings.state,
        provider_keys,
        meter.metrics,
        ceiling=CostCeiling(meter.pricing, catalog, settings.state.reserve_output_tokens),
        aliases=aliases,
        step_models=routing.step_models,
    )
    policy = RetryPolicy(settings.routing.retries)
    gauges = meter.metrics

    def circuit_changed(provider: str, model: str, opened: bool) -> None:
        gauge = gauges.circuit_open.labels(provider, labels.model(model))
        gauge.inc(1 if opened else -1)

    breakers = Breakers(
        settings.routing.retries,
        on_change=circuit_changed,
        on_reject=lambda provider, model: gauges.circuit_rejections.labels(
            provider, labels.model(model)
        ).inc(),
    )
    budget = RetryBudget(
        settings.routing.retries,
        on_exhausted=lambda provider: gauges.retry_budget_exhausted.labels(provider).inc(),
    )
    shadows = Shadows(
        upstream,
        meter,
        settings.routing.shadow_log,
        max_pending_bytes=settings.routing.shadow_max_pending_bytes,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        refresh = None
        key = settings.providers.anthropic.api_key
        # Only with a key of the gateway's own: no unauthenticated calls to a provider.
        if settings.routing.refresh_lifecycle and key is not None:
            refresh = asyncio.create_task(refresh_lifecycle(lifecycle, upstream, key))
        await gate.resume()  # charges a previous run could not settle
        yield
        if refresh is not None:
            refresh.cancel()
        await shadows.aclose()
        await upstream.aclose()
        await gate.drain()
        await state.aclose()
        await asyncio.to_thread(call_log.close, metering.call_log_flush_s)

    app = FastAPI(title="Tollgate", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.add_exception_handler(StarletteHTTPException, framework_error)
    app.add_exception_handler(RequestValidationError, framework_error)
    app.add_exception_handler(Exception, framework_error)
    held = {"learned": 0, "memo": 0}

    def gauge(part: str) -> Callable[[int], None]:
        def changed(size: int) -> None:
            held[part] = size
            meter.metrics.learned_state_bytes.set(held["learned"] + held["memo"])

        return changed

    rewrite = settings.rewrite
    learned, memo = (
        LearnedState(
            rewrite.learned_state_max_bytes,
            rewrite.learned_state_per_tenant_max_bytes,
            gauge(part),
        )
        for part in ("learned", "memo")
    )
    memory = LearnedMemory.within(learned, rewrite.learn_volatile_after, memo)
    prefixes = memory.prefixes
    turns = Turns(memo)  # the bodies reused to parse the next: beside the memo, its bounds
    context = RewriteContext(settings.rewrite, catalog, memory, routing, lifecycle, today)
    server = settings.server
    # One for every relay: the total of the bodies being received is the process's.
    intake = Intake(server.max_body_bytes, server.body_timeout_s, server.max_incoming_body_bytes)

    def taps(wire: WireFormat) -> Callable[[], Tap]:
        return functools.partial(wire.new_tap, upstream.settings(wire.provider).max_event_bytes)

    def plumbing(wire: WireFormat, dispatcher: Dispatcher, calls_gate: Gate) -> Plumbing:
        relay = Relay(wire, upstream, meter.pricing)
        return Plumbing(wire, intake, calls_gate, dispatcher, relay, meter, observers)

    observers = (Metering(meter), ShadowPair(), Settlement(gate))
    judge = PrefixJudge(prefixes, state.shared_prefixes, meter)

    def pass_through(wire: WireFormat) -> PassThrough:
        """Relayed as is: count_tokens, the model list. The key is swapped, no budget."""
        dispatcher = Dispatcher(upstream, policy, taps(wire))
        return PassThrough(plumbing(wire, dispatcher, gate.free_calls()))

    def model_call(wire: WireFormat) -> ModelCall:
        dispatcher = Dispatcher(upstream, policy, taps(wire), breakers=breakers, budget=budget)
        parts = ModelParts(
            rewriter=Rewriter(context, STAGES[wire.name], memory),
            routing=routing,
            registry=prefixes,
            judge=judge,
            coalescer=Coalescer(settings.rewrite.coalesce_max_wait_s),
            coalesce_steps=frozenset(settings.rewrite.coalesce_steps),
            shadows=shadows,
            turns=turns,
        )
        return ModelCall(plumbing(wire, dispatcher, gate), parts)

    anthropic = pass_through(ANTHROPIC_MESSAGES)
    endpoints: dict[tuple[str, str], ASGIApp] = {route: anthropic for route in ANTHROPIC_ROUTES}
    endpoints["GET", "/v1/models"] = ByClient(anthropic, pass_through(OPENAI_CHAT))
    for route, wire in MODEL_CALLS.items():
        endpoints[route] = model_call(wire)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = {"config": True, "upstream_pool": upstream.usable, "state": await state.usable()}
        ready = checks["config"] and checks["upstream_pool"]
        # A replica without its state store still relays every request (budgets and rate
        # limits follow on_outage): it must stay in the load balancer, so degraded is a 200.
        status = ("ready" if checks["state"] else "degraded") if ready else "not_ready"
        return JSONResponse(
            {"status": status, "checks": checks, "state_store": state.where},
            status_code=200 if ready else 503,
        )

    exposed = _exposition(registry)

    # Documented as what it is: Prometheus' text format, not FastAPI's default JSON.
    text_format: dict[int | str, dict[str, object]] = {
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}
    }

    @app.get("/metrics", response_class=Response, responses=text_format)
    async def metrics() -> Response:
        return Response(generate_latest(exposed), media_type=CONTENT_TYPE_LATEST)

    return Edge(endpoints, app)
