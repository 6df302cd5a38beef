"""The emulated Anthropic API over HTTP: /v1/messages, count_tokens, /v1/models.

Reads headers and body, then hands the request to the pure parts (validation, prompt,
cache, reply, message) and paces the answer by the latency model.
"""

from __future__ import annotations

import datetime as dt
import functools
import time
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.catalog import ModelSpec
from gateway.emulator.anthropic.cache import PromptCache
from gateway.emulator.anthropic.diagnostics import CacheDiagnostics
from gateway.emulator.anthropic.message import message_json, stream_events, usage_json
from gateway.emulator.anthropic.prompt import Prompt, build_prompt
from gateway.emulator.anthropic.validation import (
    MID_CONVERSATION_SYSTEM_BETA,
    check_request,
    check_version,
    request_betas,
)
from gateway.emulator.clock import request_time
from gateway.emulator.endpoints import BodyFault, ProviderAPI, Shared, new_id
from gateway.emulator.errors import EmulatedError
from gateway.emulator.faults import FAULT_HEADER, Fault, fault_error
from gateway.emulator.models import served_model
from gateway.emulator.reply import compose_reply
from gateway.emulator.respond import usage_timing
from gateway.wire.anthropic_errors import error_body, error_event

RATE_LIMITS = (
    ("requests", 4000),
    ("tokens", 2_000_000),
    ("input-tokens", 2_000_000),
    ("output-tokens", 400_000),
)


@functools.lru_cache(maxsize=2)
def rate_limit_headers(second: int) -> tuple[tuple[str, str], ...]:
    """The rate-limit headers of every response in one wall-clock second (built once)."""
    reset = dt.datetime.fromtimestamp(second + 60, dt.UTC).isoformat().replace("+00:00", "Z")
    headers: list[tuple[str, str]] = []
    for kind, limit in RATE_LIMITS:
        prefix = f"anthropic-ratelimit-{kind}"
        headers += [(f"{prefix}-limit", str(limit)), (f"{prefix}-remaining", str(limit - 1))]
        headers.append((f"{prefix}-reset", reset))
    return tuple(headers)


class AnthropicEmulator(ProviderAPI):
    def __init__(self, shared: Shared) -> None:
        super().__init__(shared)
        self.cache = PromptCache(self.settings.lookback_blocks, self.settings.cache_max_entries)
        self.diagnostics = CacheDiagnostics()

    def routes(self) -> list[Route]:
        return [
            Route("/v1/messages", self._endpoint(self.messages), methods=["POST"]),
            Route("/v1/messages/count_tokens", self._endpoint(self.count_tokens), methods=["POST"]),
        ]

    def _error_body(self, error: EmulatedError, request_id: str) -> bytes:
        return error_body(error.error_type, error.message, request_id)

    def _headers(self, request_id: str) -> dict[str, str]:
        headers = {"request-id": request_id, "anthropic-organization-id": "emulator-org"}
        headers.update(rate_limit_headers(int(time.time())))
        return headers

    def _refuse_body(self, fault: BodyFault) -> EmulatedError:
        if fault == "too_large":
            message = "Request exceeds the maximum allowed number of bytes."
            return EmulatedError(413, "request_too_large", message)
        if fault == "not_json":
            return EmulatedError(
                400, "invalid_request_error", "The request body is not valid JSON."
            )
        return EmulatedError(400, "invalid_request_error", "The request body is nested too deeply.")

    def _workspace(self, request: Request) -> str:
        key = request.headers.get("x-api-key")
        if key is None:
            scheme, _, token = request.headers.get("authorization", "").partition(" ")
            key = token if scheme.lower() == "bearer" else None
        if not key:
            raise EmulatedError(401, "authentication_error", "x-api-key header is required")
        if self.api_keys and key not in self.api_keys:
            raise EmulatedError(401, "authentication_error", "invalid x-api-key")
        return self.settings.workspaces.get(key, key)

    async def _read_request(
        self, request: Request, *, counting: bool
    ) -> tuple[str, dict[str, Any], ModelSpec, float]:
        workspace = self._workspace(request)
        version = check_version(request.headers.get("anthropic-version"))
        now = request_time(request.headers, self.settings.virtual_clock)
        parsed = await self._json_body(request)
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        strict = self.settings.strict_models
        betas = request_betas(request.headers.getlist("anthropic-beta"))

        def system_messages(model: str) -> bool:
            """Mid-conversation system turns: behind their beta, or where the model has them."""
            if MID_CONVERSATION_SYSTEM_BETA in betas:
                return True
            served = served_model(self.catalog, model, "anthropic", today, strict=strict)
            return served is not None and served.spec.mid_conversation_system

        body = check_request(parsed, version, counting=counting, system_messages=system_messages)
        served = served_model(self.catalog, body["model"], "anthropic", today, strict=strict)
        if served is None:
            raise EmulatedError(404, "not_found_error", f"model: {body['model']}")
        request.state.served_headers = served.headers()
        return workspace, body, served.spec, now

    async def count_tokens(self, request: Request) -> ASGIApp:
        _, body, spec, _ = await self._read_request(request, counting=True)
        prompt = build_prompt(body, spec)
        response = self._json({"input_tokens": prompt.total_tokens}, request.state.request_id)
        response.headers.update(request.state.served_headers)
        return response

    async def messages(self, request: Request) -> ASGIApp:
        workspace, body, spec, now = await self._read_request(request, counting=False)
        fault = self.faults.pick(request.headers.get(FAULT_HEADER), body["model"])
        if fault is not None and (error := fault_error(fault)) is not None:
            raise error
        if body["max_tokens"] > spec.max_tokens:
            raise EmulatedError(
                400,
                "invalid_request_error",
                f"max_tokens: {body['max_tokens']} > {spec.max_tokens}, which is the maximum "
                f"allowed number of output tokens for {spec.id}",
            )
        prompt = build_prompt(body, spec)
        if prompt.total_tokens > spec.max_input_tokens:
            raise EmulatedError(
                400,
                "invalid_request_error",
                f"prompt is too long: {prompt.total_tokens} tokens > "
                f"{spec.max_input_tokens} maximum",
            )
        return self._answer(request, body, spec, prompt, workspace, now, fault)

    def _answer(
        self,
        request: Request,
        body: dict[str, Any],
        spec: ModelSpec,
        prompt: Prompt,
        workspace: str,
        now: float,
        fault: Fault | None,
    ) -> ASGIApp:
        seed = prompt.blocks[-1].digest if prompt.blocks else spec.id.encode()
        reply = compose_reply(body, spec.chars_per_token, seed, self.settings.reply_words)
        start_at = self.responder.start_at(now, fault, spec.latency)
        usage = self.cache.apply(workspace, prompt, spec.min_cacheable_tokens, now, start_at)
        timing = usage_timing(spec.latency, usage, reply.output_tokens)
        message_id = new_id("msg_")
        diagnostics = None
        if isinstance(asked := body.get("diagnostics"), dict) and "previous_message_id" in asked:
            reason = self.diagnostics.diagnose(asked["previous_message_id"], workspace, prompt)
            diagnostics = {"cache_miss_reason": reason}
        self.diagnostics.record(message_id, workspace, prompt)
        message = message_json(
            message_id, spec.id, reply, usage_json(usage, reply.output_tokens), diagnostics
        )
        headers = {**self._headers(request.state.request_id), **timing.headers()}
        headers.update(request.state.served_headers)
        if not body.get("stream"):
            return self.responder.json(headers, orjson.dumps(message), timing, fault)
        events = stream_events(message, reply, spec.chars_per_token)
        if fault is not None and fault.kind == "stream-error":
            events = [*events[:4], (error_event("overloaded_error", "Overloaded"), 0)]
        return self.responder.stream(headers, events, timing, spec.latency, fault)

    async def list_models(self, request: Request) -> ASGIApp:
        check_version(request.headers.get("anthropic-version"))
        self._workspace(request)
        now = request_time(request.headers, self.settings.virtual_clock)
        models = [self._model_info(spec, now) for spec in self.catalog.for_provider("anthropic")]
        ids = [m["id"] for m in models]
        params = request.query_params
        start = ids.index(params["after_id"]) + 1 if params.get("after_id") in ids else 0
        end = ids.index(params["before_id"]) if params.get("before_id") in ids else len(ids)
        limit = int(params.get("limit", "20"))
        page = models[start:end][:limit]
        return self._json(
            {
                "data": page,
                "has_more": start + len(page) < end,
                "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None,
            },
            request.state.request_id,
        )

    async def get_model(self, request: Request) -> ASGIApp:
        check_version(request.headers.get("anthropic-version"))
        self._workspace(request)
        now = request_time(request.headers, self.settings.virtual_clock)
        spec = self.catalog.resolve(request.path_params["model_id"])
        if spec is None or spec.provider != "anthropic":
            raise EmulatedError(404, "not_found_error", f"model: {request.path_params['model_id']}")
        return self._json(self._model_info(spec, now), request.state.request_id)

    @staticmethod
    def _model_info(spec: ModelSpec, now: float) -> dict[str, Any]:
        def stamp(day: dt.date | None) -> str | None:
            return None if day is None else f"{day.isoformat()}T00:00:00Z"

        return {
            "type": "model",
            "id": spec.id,
            "display_name": spec.display_name,
            "created_at": stamp(spec.created_at),
            "lifecycle": spec.lifecycle(dt.datetime.fromtimestamp(now, dt.UTC).date()),
            "deprecated_at": stamp(spec.deprecated_at),
            "retires_at": stamp(spec.retires_at),
            "line": spec.line,
            "max_input_tokens": spec.max_input_tokens,
            "max_tokens": spec.max_tokens,
        }
