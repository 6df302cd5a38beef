"""The emulator as one ASGI app: each provider's routes, plus a state endpoint for tests."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from gateway.catalog import ModelCatalog
from gateway.emulator.anthropic.routes import AnthropicEmulator
from gateway.emulator.faults import FaultInjector
from gateway.emulator.pacing import StreamCounter
from gateway.settings import Settings


def create_emulator_app(settings: Settings) -> Starlette:
    emulator = settings.emulator
    streams = StreamCounter()
    anthropic = AnthropicEmulator(
        emulator,
        ModelCatalog.load(settings.models),
        FaultInjector(emulator.fault_rates, emulator.fault_seed),
        streams,
    )

    async def state(_: Request) -> JSONResponse:
        return JSONResponse({"open_streams": streams.open, "responses": streams.total})

    return Starlette(routes=[*anthropic.routes(), Route("/emulator/state", state)])
