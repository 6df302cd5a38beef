"""Checks a Messages request the way the real API does, raising its 400s.

Covers the fields and rules of the Messages API reference; cache_control
placement and counts are checked where breakpoints are read (prompt.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any

from gateway.emulator.errors import invalid_request

API_VERSIONS = frozenset({"2023-06-01", "2026-10-21"})
SAMPLING_PARAMS = ("temperature", "top_p", "top_k")
COMMON_FIELDS = frozenset(
    {
        "model", "messages", "system", "tools", "tool_choice", "stop_sequences", "stream",
        "metadata", "thinking", "output_config", "cache_control", "container", "diagnostics",
        "inference_geo", "service_tier", "speed", "mcp_servers", "context_management",
        "fallbacks", "compaction", "billing_policy",
    }
)  # fmt: skip
MESSAGE_FIELDS = COMMON_FIELDS | {"max_tokens"}
USER_BLOCKS = frozenset(
    {"text", "image", "document", "tool_result", "search_result", "container_upload"}
)
ASSISTANT_BLOCKS = frozenset(
    {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use",
     "web_search_tool_result", "web_fetch_tool_result", "code_execution_tool_result", "document"}
)  # fmt: skip
TOOL_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
TOOL_CHOICES = frozenset({"auto", "any", "tool", "none"})
# `role: "system"` turns inside `messages` (docs/emulator.md): the models that have them take
# them without a header; Claude Code sends this beta with them, and the emulator takes that
# as the client's opt-in on any model.
MID_CONVERSATION_SYSTEM_BETA = "mid-conversation-system-2026-04-07"


def request_betas(headers: Iterable[str]) -> frozenset[str]:
    """The betas a request names: `anthropic-beta` is a comma-separated list, maybe repeated."""
    return frozenset(
        name.strip() for header in headers for name in header.split(",") if name.strip()
    )


def check_version(version: str | None) -> str:
    if version is None:
        raise invalid_request("anthropic-version: header is required")
    if version not in API_VERSIONS:
        raise invalid_request(f"anthropic-version: invalid version {version!r}")
    return version


def check_request(
    body: Any,
    version: str,
    *,
    counting: bool,
    system_messages: Callable[[str], bool] = lambda model: False,
) -> dict[str, Any]:
    """The body as a dict if the API would accept it; counting=True for count_tokens.

    system_messages(model) says whether `role: "system"` turns are allowed in `messages`.
    """
    if not isinstance(body, dict):
        raise invalid_request("The request body must be a JSON object")
    allowed = COMMON_FIELDS if counting else MESSAGE_FIELDS
    if version == "2023-06-01":
        allowed = allowed | set(SAMPLING_PARAMS)
    for field in body:
        if field not in allowed:
            raise invalid_request(f"{field}: Extra inputs are not permitted")
    required = ("model", "messages") if counting else ("model", "max_tokens", "messages")
    for field in required:
        if field not in body:
            raise invalid_request(f"{field}: Field required")
    if not isinstance(body["model"], str) or not body["model"]:
        raise invalid_request("model: Input should be a valid string")
    if not counting:
        _check_max_tokens(body)
    _check_sampling(body)
    _check_system(body.get("system"))
    tool_names = _check_tools(body.get("tools"))
    _check_tool_choice(body.get("tool_choice"), tool_names)
    _check_thinking(body)
    _check_messages(body["messages"], version, lambda: system_messages(body["model"]))
    return body


def _check_max_tokens(body: dict[str, Any]) -> None:
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 0:
        raise invalid_request("max_tokens: Input should be a non-negative integer")
    if max_tokens == 0:
        # A zero-token request only pre-warms the cache; anything that forces output is refused.
        forced = (body.get("tool_choice") or {}).get("type") in ("any", "tool")
        thinking = (body.get("thinking") or {}).get("type") == "enabled"
        output_format = "format" in (body.get("output_config") or {})
        if body.get("stream") or forced or thinking or output_format:
            raise invalid_request(
                "max_tokens: 0 is only allowed without stream, forced tool_choice, "
                "thinking.enabled and output_config.format"
            )


def _check_sampling(body: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None and not (
        isinstance(temperature, int | float) and 0 <= temperature <= 1
    ):
        raise invalid_request("temperature: Input should be less than or equal to 1")


def _check_system(system: Any) -> None:
    if system is None or isinstance(system, str):
        return
    if not isinstance(system, list):
        raise invalid_request("system: Input should be a valid string or list of text blocks")
    for index, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise invalid_request(f"system.{index}: Input should be a text block")
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise invalid_request(f"system.{index}.text: text content blocks must be non-empty")


def _check_tools(tools: Any) -> set[str]:
    if tools is None:
        return set()
    if not isinstance(tools, list):
        raise invalid_request("tools: Input should be a valid list")
    names: set[str] = set()
    for index, tool in enumerate(tools):
        if not isinstance(tool, dict):
            raise invalid_request(f"tools.{index}: Input should be a valid dictionary")
        name = tool.get("name")
        if not isinstance(name, str) or not TOOL_NAME.match(name):
            raise invalid_request(
                f"tools.{index}.name: String should match pattern '{TOOL_NAME.pattern}'"
            )
        if "type" not in tool or tool["type"] == "custom":
            schema = tool.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise invalid_request(
                    f"tools.{index}.input_schema: Field required (a JSON schema of type object)"
                )
        if name in names:
            raise invalid_request("tools: Tool names must be unique.")
        names.add(name)
    return names


def _check_tool_choice(choice: Any, tool_names: set[str]) -> None:
    if choice is None:
        return
    if not isinstance(choice, dict) or choice.get("type") not in TOOL_CHOICES:
        raise invalid_request(f"tool_choice.type: Input should be one of {sorted(TOOL_CHOICES)}")
    if choice["type"] == "tool" and choice.get("name") not in tool_names:
        raise invalid_request(f"tool_choice.name: tool {choice.get('name')!r} is not in tools")
    if choice["type"] in ("any", "tool") and not tool_names:
        raise invalid_request("tool_choice: forcing tool use requires tools")


def _check_thinking(body: dict[str, Any]) -> None:
    thinking = body.get("thinking")
    if thinking is None:
        return
    if not isinstance(thinking, dict) or thinking.get("type") not in (
        "enabled",
        "disabled",
        "adaptive",
    ):
        raise invalid_request("thinking.type: Input should be 'enabled', 'disabled' or 'adaptive'")
    if thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or budget < 1024:
            raise invalid_request(
                "thinking.enabled.budget_tokens: Input should be greater than or equal to 1024"
            )
        if "max_tokens" in body and budget >= body["max_tokens"] > 0:
            raise invalid_request("`max_tokens` must be greater than `thinking.budget_tokens`")


def _check_messages(messages: Any, version: str, system_allowed: Callable[[], bool]) -> None:
    if not isinstance(messages, list) or not messages:
        raise invalid_request("messages: at least one message is required")
    pending_tool_uses: set[str] = set()
    for index, message in enumerate(messages):
        where = f"messages.{index}"
        role = message.get("role") if isinstance(message, dict) else None
        if role == "system" and system_allowed():
            _check_system_message(messages, index)
            continue
        if role not in ("user", "assistant"):
            raise invalid_request(f"{where}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        final_assistant = index == len(messages) - 1 and message["role"] == "assistant"
        if not isinstance(blocks, list) or (not blocks and not final_assistant):
            raise invalid_request(
                f"{where}.content: Input should be a string or a non-empty list of blocks"
            )
        tool_results = {
            b.get("tool_use_id")
            for b in blocks
            if isinstance(b, dict) and b.get("type") == "tool_result"
        }
        if pending_tool_uses - tool_results:
            raise invalid_request(
                f"{where}: `tool_use` ids were found without `tool_result` blocks "
                "immediately after: " + ", ".join(sorted(pending_tool_uses - tool_results))
            )
        if tool_results - pending_tool_uses:
            raise invalid_request(
                f"{where}: unexpected `tool_use_id` found in `tool_result` blocks: "
                + ", ".join(sorted(str(t) for t in tool_results - pending_tool_uses))
            )
        pending_tool_uses = set()
        for position, block in enumerate(blocks):
            _check_block(block, f"{where}.content.{position}", message["role"], version)
            if block["type"] == "tool_use":
                pending_tool_uses.add(block["id"])
        if pending_tool_uses and index == len(messages) - 1:
            pending_tool_uses = set()


def _check_system_message(messages: list[Any], index: int) -> None:
    """A system turn comes after a user turn (or another system turn), and holds only text."""
    where = f"messages.{index}"
    before = messages[index - 1].get("role") if index > 0 else None
    if before not in ("user", "system"):
        raise invalid_request(
            f"{where}: a system message must follow a user message; it cannot be the first "
            "message or follow an assistant message"
        )
    content = messages[index].get("content")
    blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
    if not isinstance(blocks, list) or not blocks:
        raise invalid_request(
            f"{where}.content: Input should be a string or a non-empty list of text blocks"
        )
    for position, block in enumerate(blocks):
        at = f"{where}.content.{position}"
        if not isinstance(block, dict) or block.get("type") != "text":
            raise invalid_request(f"{at}.type: a system message holds only text blocks")
        if not isinstance(block.get("text"), str) or not block["text"]:
            raise invalid_request(f"{at}: text content blocks must be non-empty")


def _check_block(block: Any, where: str, role: str, version: str) -> None:
    allowed = USER_BLOCKS if role == "user" else ASSISTANT_BLOCKS
    if not isinstance(block, dict) or block.get("type") not in allowed:
        kind = block.get("type") if isinstance(block, dict) else type(block).__name__
        raise invalid_request(
            f"{where}.type: Input tag {kind!r} found using 'type' does not match any of the "
            f"expected tags for a {role} message: {', '.join(sorted(allowed))}"
        )
    kind = block["type"]
    if kind == "text":
        if not isinstance(block.get("text"), str):
            raise invalid_request(f"{where}.text: Field required")
        if not block["text"]:
            raise invalid_request(f"{where}: text content blocks must be non-empty")
        if version == "2026-10-21" and role == "user" and block.get("citations"):
            raise invalid_request(f"{where}.citations: user text blocks cannot carry citations")
    elif kind == "document" and role == "assistant" and version == "2026-10-21":
        raise invalid_request(f"{where}: document blocks are not allowed in assistant messages")
    elif kind == "tool_use":
        if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
            raise invalid_request(f"{where}: tool_use blocks need `id` and `name`")
        if not isinstance(block.get("input"), dict):
            raise invalid_request(f"{where}.input: Input should be a valid dictionary")
    elif kind == "tool_result" and not isinstance(block.get("tool_use_id"), str):
        raise invalid_request(f"{where}.tool_use_id: Field required")
