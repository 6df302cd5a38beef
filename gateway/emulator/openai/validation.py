"""Checks Chat Completions and Responses requests the way the real API does, raising its 400s.

The envelope names the offending field in `param`; only the rules the gateway can trip over
are checked (fields, types, caching options), not every schema detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gateway.emulator.errors import EmulatedError

CHAT_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
RETENTIONS = frozenset({"in_memory", "24h"})
TTLS = frozenset({"30m", "12h"})  # the SDK's PromptCacheOptions (the docs give 30m)
MODES = frozenset({"implicit", "explicit"})
MIN_OUTPUT_TOKENS = 16  # Responses rejects a smaller max_output_tokens


def invalid(message: str, param: str | None, code: str | None = None) -> EmulatedError:
    return EmulatedError(400, "invalid_request_error", message, param=param, code=code)


def _object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise invalid("The request body must be a JSON object.", None)
    if not isinstance(body.get("model"), str) or not body["model"]:
        raise invalid("you must provide a model parameter", "model", "missing_required_parameter")
    if "stream" in body and not isinstance(body["stream"], bool):
        raise invalid("Invalid type for 'stream': expected a boolean.", "stream")
    _check_caching(body)
    return body


def _positive(body: Mapping[str, Any], field: str, minimum: int = 1) -> None:
    value = body.get(field)
    if value is None:
        return
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise invalid(
            f"Invalid '{field}': integer below minimum value. Expected a value >= {minimum}, "
            f"but got {value!r} instead.",
            field,
            "integer_below_min_value",
        )


def _check_caching(body: Mapping[str, Any]) -> None:
    retention = body.get("prompt_cache_retention")
    if retention is not None and retention not in RETENTIONS:
        raise invalid(
            f"Invalid value: {retention!r}. Supported values are: 'in_memory' and '24h'.",
            "prompt_cache_retention",
        )
    options = body.get("prompt_cache_options")
    if options is None:
        return
    if not isinstance(options, Mapping):
        raise invalid("Invalid type for 'prompt_cache_options'.", "prompt_cache_options")
    if options.get("ttl") is not None and options["ttl"] not in TTLS:
        raise invalid(
            f"Invalid value: {options['ttl']!r}. Supported values are: '30m'.",
            "prompt_cache_options.ttl",
        )
    if options.get("mode") is not None and options["mode"] not in MODES:
        raise invalid(
            f"Invalid value: {options['mode']!r}. Supported values are: 'implicit' and 'explicit'.",
            "prompt_cache_options.mode",
        )


def _check_function_tools(tools: Any, nested: bool) -> None:
    if tools is None:
        return
    if not isinstance(tools, list):
        raise invalid("Invalid type for 'tools': expected an array.", "tools")
    for index, tool in enumerate(tools):
        if not isinstance(tool, Mapping) or not isinstance(tool.get("type"), str):
            raise invalid(f"Missing required parameter: 'tools[{index}].type'.", f"tools[{index}]")
        if tool["type"] != "function":
            continue
        spec = tool.get("function") if nested else tool
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            where = f"tools[{index}].function.name" if nested else f"tools[{index}].name"
            raise invalid(f"Missing required parameter: '{where}'.", where)


def check_chat(parsed: Any) -> dict[str, Any]:
    body = _object(parsed)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.",
            "messages",
            "empty_array",
        )
    for index, message in enumerate(messages):
        if not isinstance(message, Mapping) or message.get("role") not in CHAT_ROLES:
            raise invalid(f"Invalid value for 'messages[{index}].role'.", f"messages[{index}].role")
    if body.get("stream_options") is not None and not body.get("stream"):
        raise invalid(
            "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            "stream_options",
        )
    _positive(body, "max_tokens")
    _positive(body, "max_completion_tokens")
    _check_function_tools(body.get("tools"), nested=True)
    return body


def check_responses(parsed: Any) -> dict[str, Any]:
    body = _object(parsed)
    raw = body.get("input")
    if not isinstance(raw, str | list) or not raw:
        raise invalid("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    _positive(body, "max_output_tokens", MIN_OUTPUT_TOKENS)
    _check_function_tools(body.get("tools"), nested=False)
    return body
