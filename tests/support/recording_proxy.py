"""A loopback recording proxy: forwards every request to one upstream, logs each exchange.

Run it in front of the emulator (or between the gateway and the emulator) to see exactly
what a client sends:

    python -m tests.support.recording_proxy --upstream http://127.0.0.1:8090 \
        --port 8091 --out /tmp/rec.jsonl

Each exchange is two JSON lines with the same `seq`: the request's method, path, headers
(credentials left out), body (parsed JSON, or text), its size in bytes and the response's
status and headers, written as soon as the upstream answered (so a reader that sees the
client's call done finds it); then, when the response has ended, its body (as text), size
and duration. Streams are relayed chunk by chunk
as they arrive, so a client sees the upstream's pacing. Bodies are bounded: a request or
response over MAX_RECORDED_BYTES is logged by size only.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

# Never written to a recording: whoever reads it must not learn a key.
CREDENTIAL_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "cookie", "set-cookie", "proxy-authorization"}
)
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer", "host"}
)
MAX_RECORDED_BYTES = 8 * 1024 * 1024
UPSTREAM_TIMEOUT_S = 600.0


def recorded_headers(headers: list[tuple[str, str]]) -> list[list[str]]:
    return [[k, v] for k, v in headers if k.lower() not in CREDENTIAL_HEADERS]


def parsed_body(raw: bytes) -> Any:
    if len(raw) > MAX_RECORDED_BYTES:
        return {"omitted_bytes": len(raw)}
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return {"text": raw.decode("utf-8", "replace")}


def ended_tool_loop(raw: bytes) -> bytes:
    """The request as the upstream should see it to end an OpenAI tool loop: after a tool's
    output, `tool_choice: none`. For an emulator that reads `USE_TOOL:` from the last user
    message whatever came after it; the recording keeps the original."""
    try:
        body = json.loads(raw)
    except ValueError:
        return raw
    if not isinstance(body, dict) or not body.get("tools"):
        return raw
    items = body.get("input") or body.get("messages")
    last = items[-1] if isinstance(items, list) and items else None
    if isinstance(last, dict) and (
        last.get("type") == "function_call_output" or last.get("role") == "tool"
    ):
        return json.dumps({**body, "tool_choice": "none"}).encode()
    return raw


def create_app(upstream: str, out: Path, end_tool_loops: bool = False) -> Starlette:
    client = httpx.AsyncClient(base_url=upstream, timeout=UPSTREAM_TIMEOUT_S)
    lock = threading.Lock()
    sequence = iter(range(1 << 62))

    def write(entry: dict[str, Any]) -> None:
        with lock, out.open("a", encoding="utf-8") as file:
            file.write(json.dumps(entry, ensure_ascii=False) + "\n")

    async def forward(request: Request) -> Response:
        started = time.time()
        raw = await request.body()
        path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        headers = [
            (k, v)
            for k, v in request.headers.items()
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"
        ]
        sent = ended_tool_loop(raw) if end_tool_loops else raw
        upstream_request = client.build_request(request.method, path, headers=headers, content=sent)
        response = await client.send(upstream_request, stream=True)
        entry: dict[str, Any] = {
            "seq": next(sequence),
            "time": round(started, 3),
            "method": request.method,
            "path": path,
            "headers": recorded_headers(list(request.headers.items())),
            "body_bytes": len(raw),
            "body": parsed_body(raw),
            "status": response.status_code,
            "response_headers": recorded_headers(list(response.headers.items())),
        }
        # Written before the response is relayed: whoever reads the log after the client's
        # call returned finds its request there, with no wait.
        write(entry)
        out_headers = {k: v for k, v in response.headers.items() if k.lower() not in HOP_BY_HOP}

        async def relay() -> AsyncIterator[bytes]:
            received = bytearray()
            try:
                async for chunk in response.aiter_raw():
                    if len(received) <= MAX_RECORDED_BYTES:
                        received += chunk
                    yield chunk
            finally:
                await response.aclose()
                write(
                    {
                        "seq": entry["seq"],
                        "response_bytes": len(received),
                        "response_body": bytes(received[:MAX_RECORDED_BYTES]).decode(
                            "utf-8", "replace"
                        ),
                        "seconds": round(time.time() - started, 3),
                    }
                )

        return StreamingResponse(relay(), status_code=response.status_code, headers=out_headers)

    methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        await client.aclose()

    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)], lifespan=lifespan)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--upstream", required=True, help="base URL to forward to")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True, help="JSONL file, appended to")
    parser.add_argument(
        "--end-tool-loops",
        action="store_true",
        help="send OpenAI calls that follow a tool output with tool_choice none",
    )
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    app = create_app(args.upstream.rstrip("/"), args.out, args.end_tool_loops)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
