"""The emulated OpenAI API over HTTP: /v1/chat/completions, /v1/responses, /v1/models.

Reads headers and body, hands the request to the pure parts (validation, prompt, cache,
reply, chat / responses) and paces the answer by the shared latency model and faults.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.routing import Route
from starlette.types import ASGIApp

from gateway.catalog import ModelSpec
from gateway.emulator.clock import request_time
from gateway.emulator.endpoints import BodyFault, ProviderAPI, Shared, new_id
from gateway.emulator.errors import EmulatedError
from gateway.emulator.faults import FAULT_HEADER, Fault, fault_error
from gateway.emulator.models import served_model
from gateway.emulator.openai import chat, responses
from gateway.emulator.openai.cache import PrefixCache, requested_caching
from gateway.emulator.openai.prompt import Prompt, build_chat_prompt, build_responses_prompt
from gateway.emulator.openai.reply_input import chat_reply_input, responses_reply_input
from gateway.emulator.openai.validation import check_chat, check_responses, invalid
from gateway.emulator.reply import Reply, compose_reply
from gateway.emulator.respond import usage_timing
from gateway.wire.openai_errors import OVERLOADED_STATUS, error_body, error_type_for

# Limits as a high usage tier shows them; resets are Go-style durations (docs/wire.md).
RATE_LIMIT_HEADERS = {
    "x-ratelimit-limit-requests": "10000",
    "x-ratelimit-limit-tokens": "30000000",
    "x-ratelimit-remaining-requests": "9999",
    "x-ratelimit-remaining-tokens": "29999000",
    "x-ratelimit-reset-requests": "6ms",
    "x-ratelimit-reset-tokens": "2ms",
}


class OpenAIEmulator(ProviderAPI):
    def __init__(self, shared: Shared) -> None:
        super().__init__(shared)
        self.cache = PrefixCache(max_entries=self.settings.cache_max_entries)

    def routes(self) -> list[Route]:
        return [
            Route("/v1/chat/completions", self._endpoint(self.chat), methods=["POST"]),
            Route("/v1/responses", self._endpoint(self.responses), methods=["POST"]),
        ]

    def _error_body(self, error: EmulatedError, request_id: str) -> bytes:
        """OpenAI's body has no request id: it is in the x-request-id header."""
        return error_body(error.message, error.error_type, error.param, error.code)

    def _headers(self, request_id: str) -> dict[str, str]:
        return {
            "x-request-id": request_id,
            "openai-organization": "emulator-org",
            "openai-version": "2020-10-01",
            **RATE_LIMIT_HEADERS,
        }

    def _refuse_body(self, fault: BodyFault) -> EmulatedError:
        if fault == "too_large":
            return EmulatedError(413, "invalid_request_error", "Request too large.")
        if fault == "not_json":
            message = "We could not parse the JSON body of your request."
            return invalid(message, None, "invalid_json")
        return invalid("The request body is nested too deeply.", None, "invalid_json")

    def _workspace(self, request: Request) -> str:
        scheme, _, key = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not key:
            raise EmulatedError(
                401,
                "invalid_request_error",
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
            )
        if self.api_keys and key not in self.api_keys:
            raise EmulatedError(
                401, "invalid_request_error", "Incorrect API key provided.", code="invalid_api_key"
            )
        return self.settings.workspaces.get(key, key)

    async def _read(
        self, request: Request, check: Callable[[Any], dict[str, Any]]
    ) -> tuple[str, dict[str, Any], ModelSpec, float]:
        workspace = self._workspace(request)
        now = request_time(request.headers, self.settings.virtual_clock)
        parsed = await self._json_body(request)
        body = check(parsed)
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        served = served_model(
            self.catalog, body["model"], "openai", today, strict=self.settings.strict_models
        )
        if served is None:
            raise EmulatedError(
                404,
                "invalid_request_error",
                f"The model `{body['model']}` does not exist or you do not have access to it.",
                code="model_not_found",
            )
        request.state.served_headers = served.headers()
        return workspace, body, served.spec, now

    def _fault(self, request: Request) -> Fault | None:
        fault = self.faults.pick(request.headers.get(FAULT_HEADER))
        if fault is not None:
            error = fault_error(fault, error_type_for, {529: OVERLOADED_STATUS})
            if error is not None:
                raise error
        return fault

    async def chat(self, request: Request) -> ASGIApp:
        fault = self._fault(request)
        workspace, body, spec, now = await self._read(request, check_chat)
        prompt = build_chat_prompt(body, spec)
        reply_input = chat_reply_input(body, spec)
        return self._answer(request, body, spec, prompt, reply_input, workspace, now, fault)

    async def responses(self, request: Request) -> ASGIApp:
        fault = self._fault(request)
        workspace, body, spec, now = await self._read(request, check_responses)
        prompt = build_responses_prompt(body, spec)
        reply_input = responses_reply_input(body, spec)
        return self._answer(request, body, spec, prompt, reply_input, workspace, now, fault)

    def _answer(
        self,
        request: Request,
        body: dict[str, Any],
        spec: ModelSpec,
        prompt: Prompt,
        reply_input: dict[str, Any],
        workspace: str,
        now: float,
        fault: Fault | None,
    ) -> ASGIApp:
        if prompt.total_tokens > spec.max_input_tokens:
            raise invalid(
                f"This model's maximum context length is {spec.max_input_tokens} tokens. "
                f"However, your messages resulted in {prompt.total_tokens} tokens.",
                "messages",
                "context_length_exceeded",
            )
        retention, breakpoints = requested_caching(body, spec, prompt)
        # The reply first: a request it refuses (a schema asking too much) leaves no cache entry.
        seed = prompt.blocks[-1].digest if prompt.blocks else spec.id.encode()
        reply = compose_reply(reply_input, spec.chars_per_token, seed, self.settings.reply_words)
        key = body.get("prompt_cache_key")
        usage = self.cache.apply(
            (workspace, key if isinstance(key, str) else None),
            prompt,
            exact=spec.openai_cache == "exact",
            retention=retention,
            breakpoints=breakpoints,
            now=now,
            response_start=self.responder.start_at(now, fault, spec.latency),
        )
        timing = usage_timing(spec.latency, usage, reply.output_tokens)
        bills_writes = spec.openai_cache == "exact"
        created = int(now)
        is_chat = request.url.path.endswith("/chat/completions")
        if is_chat:
            usage_body = chat.usage_json(usage, reply.output_tokens, bills_writes=bills_writes)
            payload = chat.completion_json(new_id("chatcmpl-"), spec.id, created, reply, usage_body)
        else:
            usage_body = responses.usage_json(usage, reply.output_tokens, bills_writes=bills_writes)
            payload = responses.response_json(
                new_id("resp_"), spec.id, created, body, reply, usage_body
            )
        headers = {**self._headers(request.state.request_id), **timing.headers()}
        headers["openai-processing-ms"] = f"{timing.total_s * 1000:.0f}"
        headers.update(request.state.served_headers)
        if not body.get("stream"):
            return self.responder.json(headers, orjson.dumps(payload), timing, fault)
        events = stream_events(payload, body, reply, spec, fault, is_chat=is_chat)
        return self.responder.stream(headers, events, timing, spec.latency, fault)

    async def list_models(self, request: Request) -> ASGIApp:
        self._workspace(request)
        now = request_time(request.headers, self.settings.virtual_clock)
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        data = [
            self._model_info(name, spec)
            for spec in self.catalog.for_provider("openai")
            if spec.lifecycle(today) != "retired"
            for name in (spec.id, *spec.aliases)
        ]
        return self._json({"object": "list", "data": data}, request.state.request_id)

    async def get_model(self, request: Request) -> ASGIApp:
        self._workspace(request)
        name = request.path_params["model_id"]
        spec = self.catalog.resolve(name)
        if spec is None or spec.provider != "openai":
            raise EmulatedError(
                404,
                "invalid_request_error",
                f"The model '{name}' does not exist",
                param="model",
                code="model_not_found",
            )
        return self._json(self._model_info(name, spec), request.state.request_id)

    @staticmethod
    def _model_info(name: str, spec: ModelSpec) -> dict[str, Any]:
        created = dt.datetime.combine(spec.created_at, dt.time(), dt.UTC)
        return {
            "id": name,
            "object": "model",
            "created": int(created.timestamp()),
            "owned_by": "system",
        }


def stream_events(
    payload: dict[str, Any],
    body: dict[str, Any],
    reply: Reply,
    spec: ModelSpec,
    fault: Fault | None,
    *,
    is_chat: bool,
) -> list[tuple[bytes, int]]:
    """The stream's events, each with its output tokens; under a `stream-error` fault, cut
    short by the API's own error event."""
    failing = fault is not None and fault.kind == "stream-error"
    message = "The server had an error while processing your request. Sorry about that!"
    if is_chat:
        options = body.get("stream_options") or {}
        include_usage = options.get("include_usage") is True
        events = chat.stream_chunks(
            payload, reply, spec.chars_per_token, include_usage=include_usage
        )
        if failing:
            return [*events[:2], (chat.error_chunk(message), 0)]
        return events
    events = responses.stream_events(payload, body, reply, spec.chars_per_token)
    if failing:
        return responses.failed_events(events, payload, 4, message)
    return events
