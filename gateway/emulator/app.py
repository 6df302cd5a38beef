"""The emulator as one ASGI app: each provider's routes, plus a state endpoint for tests.

`GET /v1/models` is both providers' path. An Anthropic client always sends
`anthropic-version` (the API requires it on every request) and an OpenAI client never does,
so that header picks the list's shape; the key's format would not (both SDKs send Bearer).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.catalog import ModelCatalog
from gateway.emulator.anthropic.routes import AnthropicEmulator
from gateway.emulator.endpoints import Endpoint, Shared
from gateway.emulator.faults import FaultInjector
from gateway.emulator.openai.routes import OpenAIEmulator
from gateway.emulator.pacing import StreamCounter
from gateway.emulator.respond import Responder
from gateway.settings import Settings


def create_emulator_app(settings: Settings) -> Starlette:
    emulator = settings.emulator
    streams = StreamCounter()
    catalog = ModelCatalog.load(settings.models)
    faults = FaultInjector(emulator.fault_rates, emulator.fault_seed)
    shared = Shared(emulator, catalog, faults, Responder(emulator, streams))
    anthropic = AnthropicEmulator(shared)
    openai = OpenAIEmulator(shared)
    models = [
        by_wire(anthropic_endpoint, openai_endpoint)
        for anthropic_endpoint, openai_endpoint in zip(
            anthropic.model_endpoints(), openai.model_endpoints(), strict=True
        )
    ]

    async def state(_: Request) -> JSONResponse:
        return JSONResponse(
            {"open_streams": streams.open, "responses": streams.total, "faults": faults.injected}
        )

    return Starlette(
        routes=[
            *anthropic.routes(),
            *openai.routes(),
            Route("/v1/models", models[0], methods=["GET"]),
            Route("/v1/models/{model_id:path}", models[1], methods=["GET"]),
            Route("/emulator/state", state),
        ]
    )


def by_wire(anthropic: Endpoint, openai: Endpoint) -> Endpoint:
    async def endpoint(request: Request) -> ASGIApp:
        chosen = anthropic if "anthropic-version" in request.headers else openai
        return await chosen(request)

    return endpoint
