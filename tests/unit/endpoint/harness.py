"""The gateway in-process: create_app with a scripted upstream (httpx.MockTransport), driven
through httpx.ASGITransport, its lifespan run around each test so the call log is flushed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import orjson
from prometheus_client import CollectorRegistry

from gateway.app import create_app
from gateway.endpoint.flow import Endpoint
from gateway.endpoint.record import Record
from gateway.server.edge import ByClient, Edge
from gateway.settings import Settings

ANTHROPIC = {"anthropic-version": "2023-06-01", "x-api-key": "sk-ant-test"}
OPENAI = {"authorization": "Bearer sk-test"}
MODEL = "claude-sonnet-4-6"
Reply = Callable[[httpx.Request], httpx.Response]


def sse(*events: tuple[str | None, dict[str, Any]]) -> list[bytes]:
    """One chunk per event, as a provider sends them."""
    chunks = []
    for name, data in events:
        head = f"event: {name}\n".encode() if name else b""
        chunks.append(head + b"data: " + orjson.dumps(data) + b"\n\n")
    return chunks


def anthropic_stream(text: str = "Hi", output_tokens: int = 5) -> list[bytes]:
    return sse(
        (
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": "msg_1", "type": "message", "role": "assistant", "model": MODEL,
                    "content": [], "stop_reason": None,
                    "usage": {"input_tokens": 10, "output_tokens": 1},
                },
            },
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0,
             "content_block": {"type": "text", "text": ""}},
        ),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0,
             "delta": {"type": "text_delta", "text": text}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
             "usage": {"output_tokens": output_tokens}},
        ),
        ("message_stop", {"type": "message_stop"}),
    )  # fmt: skip


def anthropic_message(text: str = "Hi") -> dict[str, Any]:
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": MODEL,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 10, "output_tokens": 5},
    }


def streamed(chunks: Iterable[bytes], cut: bool = False, status: int = 200) -> httpx.Response:
    """A stream response; `cut`: the connection drops after the chunks."""

    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk
            await asyncio.sleep(0)
        if cut:
            raise httpx.ReadError("connection reset")

    headers = {"content-type": "text/event-stream", "request-id": "req_up"}
    return httpx.Response(status, headers=headers, content=body())


def json_reply(body: dict[str, Any], status: int = 200) -> httpx.Response:
    return httpx.Response(status, json=body, headers={"request-id": "req_up"})


@dataclass
class Upstream:
    """Replies in order, the last one for every further request; records what it was sent."""

    replies: list[Reply]
    requests: list[httpx.Request] = field(default_factory=list)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        reply = self.replies[min(len(self.requests), len(self.replies)) - 1]
        return reply(request)

    def sent(self, index: int = -1) -> dict[str, Any]:
        body: dict[str, Any] = orjson.loads(self.requests[index].content)
        return body


@dataclass
class Recorder:
    """An observer beside the gateway's own: the records they were all given."""

    records: list[Record] = field(default_factory=list)

    def observe(self, record: Record) -> None:
        self.records.append(record)


def observed(app: Edge) -> Recorder:
    """Every endpoint of `app` gives its records to the recorder too, after its observers."""
    recorder = Recorder()
    for endpoint in app.endpoints.values():
        for one in (
            (endpoint.anthropic, endpoint.openai) if isinstance(endpoint, ByClient) else (endpoint,)
        ):
            assert isinstance(one, Endpoint)
            one.deps = replace(one.deps, observers=(*one.deps.observers, recorder))
    return recorder


@dataclass
class Run:
    responses: list[httpx.Response]
    upstream: Upstream
    registry: CollectorRegistry
    calls: list[dict[str, Any]]  # the call log's lines
    records: list[Record]  # what the observers were given

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


def settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    base: dict[str, dict[str, Any]] = {
        "server": {"start_emulator": False},
        "metering": {"call_log": str(tmp_path / "calls.jsonl")},
        "routing": {"refresh_lifecycle": False, "shadow_log": str(tmp_path / "shadow.jsonl")},
        "state": {"redis_url": None, "settle_backlog_file": str(tmp_path / "backlog.jsonl")},
    }
    for name, values in sections.items():
        base[name] = {**base.get(name, {}), **values}
    return Settings(**base)


def run(
    tmp_path: Path,
    replies: list[Reply],
    requests: list[tuple[str, str, dict[str, str], bytes]],
    before: Callable[[Edge], None] = lambda _: None,
    **sections: dict[str, Any],
) -> Run:
    """Each request (method, path, headers, body) in turn through a fresh gateway, which
    `before` is given first."""
    upstream = Upstream(replies)
    registry = CollectorRegistry()
    app = create_app(settings(tmp_path, **sections), registry, httpx.MockTransport(upstream))
    before(app)
    recorder = observed(app)

    async def go() -> list[httpx.Response]:
        rest = app.rest
        async with rest.router.lifespan_context(rest):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                responses = [
                    await client.request(method, path, headers=headers, content=body)
                    for method, path, headers, body in requests
                ]
            for _ in range(20):  # background work (a shadow's pair) before the lifespan ends
                await asyncio.sleep(0)
            return responses

    responses = asyncio.run(go())
    log = tmp_path / "calls.jsonl"
    calls = [orjson.loads(line) for line in log.read_bytes().splitlines()] if log.exists() else []
    return Run(responses, upstream, registry, calls, recorder.records)


def message_request(**body: Any) -> bytes:
    return orjson.dumps(
        {
            "model": MODEL,
            "max_tokens": 100,
            "messages": [{"role": "user", "content": "Hello"}],
            **body,
        }
    )
