"""The emulated model's answer: deterministic content derived from the request.

Same request → same reply. Two directives in the newest user text steer it, so tests can
ask for exact output: a line `REPLY: <text>` answers exactly <text>; a line
`USE_TOOL: <name>` calls that tool while that user text is the last turn — once a tool
result follows, the reply is text, so agent loops end (tool_choice `any`/`tool` force a
call anyway).
`max_tokens` and `stop_sequences` cut the reply as the real API does.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from gateway.catalog.tokens import count_tokens
from gateway.emulator.schema_instance import schema_instance

SENTENCE = (
    "the cache holds the stable prefix so every later turn reads it for a tenth of the "
    "price while the model answers from the same context with tools routing steps and "
    "small models decide quickly before the large one writes a careful synthesis of what "
    "the agent found across search results documents and earlier messages in order"
)
WORDS = tuple(SENTENCE.split(" "))
REPLY_DIRECTIVE = "REPLY:"
TOOL_DIRECTIVE = "USE_TOOL:"
# output_config.format types answered with JSON (OpenAI's response_format maps onto these).
JSON_FORMATS = frozenset({"json_schema", "json_object"})


@dataclass(frozen=True, slots=True)
class ReplyBlock:
    block: dict[str, Any]
    pieces: tuple[str, ...]  # the text or partial JSON, as a stream delivers it


@dataclass(frozen=True, slots=True)
class Reply:
    blocks: tuple[ReplyBlock, ...]
    stop_reason: str
    stop_sequence: str | None
    output_tokens: int


def compose_reply(
    body: Mapping[str, Any], chars_per_token: float, seed: bytes, reply_words: int
) -> Reply:
    max_tokens: int = body["max_tokens"]
    if max_tokens == 0:
        return Reply(blocks=(), stop_reason="max_tokens", stop_sequence=None, output_tokens=0)
    directives = _directives(body["messages"])
    tool = _chosen_tool(body, directives.get(TOOL_DIRECTIVE))
    if tool is not None:
        return _tool_reply(tool, seed, chars_per_token)
    if REPLY_DIRECTIVE in directives:
        words = directives[REPLY_DIRECTIVE].split(" ")
    else:
        rng = random.Random(seed)
        words = [rng.choice(WORDS) for _ in range(reply_words)]
    pieces = [words[0], *(" " + word for word in words[1:])]
    output_format = (body.get("output_config") or {}).get("format")
    if isinstance(output_format, Mapping) and output_format.get("type") in JSON_FORMATS:
        pieces = _json_pieces(output_format, "".join(pieces))
    return _cut_text(pieces, max_tokens, body.get("stop_sequences") or (), chars_per_token)


def _json_pieces(output_format: Mapping[str, Any], text: str) -> list[str]:
    """Structured output: an instance of the requested schema (json_schema), or a small
    object holding the text (json_object), in three stream pieces."""
    if output_format["type"] == "json_schema":
        value = schema_instance(output_format.get("schema"))
    else:
        value = {"reply": text}
    return _thirds(orjson.dumps(value).decode())


def _thirds(raw: str) -> list[str]:
    third = max(1, len(raw) // 3)
    return [p for p in (raw[:third], raw[third : 2 * third], raw[2 * third :]) if p]


def _directives(messages: list[dict[str, Any]]) -> dict[str, str]:
    """The directives of the newest user text. `USE_TOOL:` counts only while that text is the
    turn being answered: the last message (system turns aside) is a user message without
    tool results — after a tool result the model answers, so an agent loop ends.
    Consecutive user messages of text are one turn, as the Messages API combines them: a text
    the gateway adds after the newest (a moved date line) does not hide the user's directives.
    (A tool result stays a turn of its own: a user message after it is a new question.)"""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.get("role") == "system":
            continue
        content = message["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        if (
            turns
            and message.get("role") == turns[-1]["role"]
            and not _has_tool_result([*turns[-1]["content"], *blocks])
        ):
            turns[-1]["content"] = [*turns[-1]["content"], *blocks]
        else:
            turns.append({"role": message.get("role"), "content": list(blocks)})
    for position in range(len(turns) - 1, -1, -1):
        message = turns[position]
        if message.get("role") != "user":
            continue
        blocks = message["content"]
        texts = [block["text"] for block in blocks if block.get("type") == "text"]
        if not texts:
            continue
        answering = position == len(turns) - 1 and not _has_tool_result(blocks)
        found: dict[str, str] = {}
        for text in texts:
            for line in text.split("\n"):
                for directive in (REPLY_DIRECTIVE, TOOL_DIRECTIVE):
                    if line.startswith(directive):
                        found[directive] = line[len(directive) :].strip()
        if not answering:
            found.pop(TOOL_DIRECTIVE, None)
        return found
    return {}


def _has_tool_result(blocks: list[dict[str, Any]]) -> bool:
    return any(block.get("type") == "tool_result" for block in blocks)


def _chosen_tool(body: Mapping[str, Any], asked: str | None) -> dict[str, Any] | None:
    tools: dict[str, dict[str, Any]] = {tool["name"]: tool for tool in body.get("tools") or ()}
    choice = (body.get("tool_choice") or {"type": "auto"})["type"]
    if not tools or choice == "none":
        return None
    if choice == "tool":
        return tools[body["tool_choice"]["name"]]
    if asked in tools:
        return tools[asked]
    return next(iter(tools.values())) if choice == "any" else None


def _tool_reply(tool: dict[str, Any], seed: bytes, chars_per_token: float) -> Reply:
    arguments = schema_instance(tool.get("input_schema") or {"type": "object"})
    if not isinstance(arguments, dict):
        arguments = {}
    raw = orjson.dumps(arguments).decode()
    block = {
        "type": "tool_use",
        "id": "toolu_" + hashlib.blake2b(seed, digest_size=12).hexdigest(),
        "name": tool["name"],
        "input": arguments,
    }
    tokens = count_tokens(tool["name"], chars_per_token) + count_tokens(raw, chars_per_token)
    return Reply(
        blocks=(ReplyBlock(block, tuple(_thirds(raw))),),
        stop_reason="tool_use",
        stop_sequence=None,
        output_tokens=tokens,
    )


def _cut_text(
    pieces: list[str], max_tokens: int, stop_sequences: Any, chars_per_token: float
) -> Reply:
    kept: list[str] = []
    tokens = 0
    text = ""
    for piece in pieces:
        for stop in stop_sequences:
            at = (text + piece).find(stop)
            if at != -1:
                cut = (text + piece)[:at][len(text) :]
                if cut:
                    kept.append(cut)
                    tokens += count_tokens(cut, chars_per_token)
                return _text_reply(kept, "stop_sequence", stop, tokens)
        piece_tokens = count_tokens(piece, chars_per_token)
        if tokens + piece_tokens > max_tokens:
            return _text_reply(kept, "max_tokens", None, tokens)
        kept.append(piece)
        tokens += piece_tokens
        text += piece
    return _text_reply(kept, "end_turn", None, tokens)


def _text_reply(pieces: list[str], stop_reason: str, stop: str | None, tokens: int) -> Reply:
    block = {"type": "text", "text": "".join(pieces)}
    return Reply(
        blocks=(ReplyBlock(block, tuple(pieces)),) if pieces else (),
        stop_reason=stop_reason,
        stop_sequence=stop,
        output_tokens=tokens,
    )
