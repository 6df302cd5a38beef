"""What every emulated endpoint shares, whatever the provider: a request id per call, an
EmulatedError rendered in the provider's own envelope with its own headers, the request body
read as JSON within limits, and the base class of each provider's API."""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp

from gateway.catalog import ModelCatalog
from gateway.emulator.errors import EmulatedError
from gateway.emulator.faults import FaultInjector
from gateway.emulator.respond import Responder
from gateway.settings import EmulatorSettings

Endpoint = Callable[[Request], Awaitable[ASGIApp]]
ErrorBody = Callable[[EmulatedError, str], bytes]  # (error, request id) -> the JSON body
Headers = Callable[[str], dict[str, str]]  # request id -> the headers every response carries


def too_deep(body: object) -> bool:
    """Nested past what the emulator can serialise (orjson's 255 levels): the real APIs
    refuse such a body with a 400, and so does the emulator, instead of failing with a 500."""
    try:
        orjson.dumps(body)
    except orjson.JSONEncodeError:
        return True
    return False


def new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


def guarded(handler: Endpoint, error_body: ErrorBody, headers: Headers) -> Endpoint:
    async def endpoint(request: Request) -> ASGIApp:
        request_id = new_id("req_")
        request.state.request_id = request_id
        try:
            return await handler(request)
        except EmulatedError as error:
            return Response(
                error_body(error, request_id),
                status_code=error.status,
                headers={**headers(request_id), **error.headers},
                media_type="application/json",
            )

    return endpoint


MAX_BODY_BYTES = 32 * 1024 * 1024
BodyFault = Literal["too_large", "not_json", "too_deep"]


@dataclass(frozen=True)
class Shared:
    """What the providers' APIs share: one configuration, catalog, fault injector and paced
    responder (and through it one count of open responses)."""

    settings: EmulatorSettings
    catalog: ModelCatalog
    faults: FaultInjector
    responder: Responder


class ProviderAPI(ABC):
    """One provider's emulated API, with what every provider's does alike: the keys it
    accepts, endpoints whose EmulatedError is rendered in the provider's own envelope and
    headers, and the request body read as JSON."""

    def __init__(self, shared: Shared) -> None:
        self.settings = shared.settings
        self.catalog = shared.catalog
        self.faults = shared.faults
        self.responder = shared.responder
        self.api_keys = {key.get_secret_value() for key in shared.settings.api_keys}

    @abstractmethod
    async def list_models(self, request: Request) -> ASGIApp:
        """GET /v1/models in the provider's shape."""

    @abstractmethod
    async def get_model(self, request: Request) -> ASGIApp:
        """GET /v1/models/{model_id} in the provider's shape."""

    def model_endpoints(self) -> tuple[Endpoint, Endpoint]:
        """List and retrieve: /v1/models is both providers' path, so the app routes between
        them (gateway/emulator/app.py)."""
        return self._endpoint(self.list_models), self._endpoint(self.get_model)

    @abstractmethod
    def _error_body(self, error: EmulatedError, request_id: str) -> bytes:
        """The provider's error envelope."""

    @abstractmethod
    def _headers(self, request_id: str) -> dict[str, str]:
        """The headers every response of the provider carries."""

    @abstractmethod
    def _refuse_body(self, fault: BodyFault) -> EmulatedError:
        """The provider's error for a body it cannot read."""

    def _endpoint(self, handler: Endpoint) -> Endpoint:
        return guarded(handler, self._error_body, self._headers)

    async def _json_body(self, request: Request) -> Any:
        raw = await request.body()
        if len(raw) > MAX_BODY_BYTES:
            raise self._refuse_body("too_large")
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise self._refuse_body("not_json") from None
        if too_deep(parsed):
            raise self._refuse_body("too_deep")
        return parsed

    def _json(self, data: dict[str, Any], request_id: str) -> Response:
        return Response(
            orjson.dumps(data), headers=self._headers(request_id), media_type="application/json"
        )
