"""The HTTP edge: which path goes where. It stays thin — paths to handlers, nothing else.

Relay routes are pure ASGI endpoints (see relay.py); the small operational endpoints are
ordinary FastAPI routes, so they appear in the OpenAPI document.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.routing import Route

from gateway.catalog import ModelCatalog
from gateway.metering.calls import Meter
from gateway.metering.labels import LabelBounds
from gateway.metering.metrics import Metrics
from gateway.relay import Relay
from gateway.settings import Settings
from gateway.upstream import Upstream

ANTHROPIC_PATHS = ("/v1/messages", "/v1/messages/count_tokens", "/v1/models")


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> FastAPI:
    registry = registry or CollectorRegistry()
    catalog = ModelCatalog.load(settings.models)
    labels = LabelBounds(
        settings.metering.steps,
        (name for spec in catalog.models for name in (spec.id, *spec.aliases)),
    )
    meter = Meter(Metrics(registry), labels)
    providers = {"anthropic": settings.providers.anthropic, "openai": settings.providers.openai}
    upstream = Upstream(providers, settings.server.upstream_transport)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await upstream.aclose()

    app = FastAPI(title="Tollgate", lifespan=lifespan, docs_url=None, redoc_url=None)
    anthropic = Relay(upstream, meter, "anthropic", settings.server.max_body_bytes)
    for path in ANTHROPIC_PATHS:
        methods = ["GET"] if path == "/v1/models" else ["POST"]
        app.router.routes.append(Route(path, anthropic, methods=methods))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> JSONResponse:
        checks = {"config": True, "upstream_pool": upstream.usable}
        ready = all(checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": checks},
            status_code=200 if ready else 503,
        )

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return app
