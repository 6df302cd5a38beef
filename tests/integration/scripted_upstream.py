"""A scripted upstream for byte-level relay tests: it sends exactly the chunks it is given.

A real uvicorn server on a loopback port in a thread (a fake, not a mock); the
test sets the script, and can hold a chunk back until the client has seen the previous one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import uvicorn
from starlette.types import Receive, Scope, Send

from bench.harness import free_port


@dataclass
class Script:
    status: int = 200
    headers: list[tuple[bytes, bytes]] = field(
        default_factory=lambda: [(b"content-type", b"text/event-stream; charset=utf-8")]
    )
    chunks: list[bytes] = field(default_factory=list)
    pause_before: dict[int, threading.Event] = field(default_factory=dict)
    cut_after: int | None = None  # drop the connection after this many chunks


class ScriptedUpstream:
    def __init__(self) -> None:
        self.script = Script()
        self.requests: list[tuple[str, list[tuple[bytes, bytes]], bytes]] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.requests.append((scope["path"], scope["headers"], body))
        script = self.script
        await send(
            {"type": "http.response.start", "status": script.status, "headers": script.headers}
        )
        for index, chunk in enumerate(script.chunks):
            if index == script.cut_after:
                raise ConnectionAbortedError("scripted cut")
            gate = script.pause_before.get(index)
            if gate is not None:
                await asyncio.get_running_loop().run_in_executor(None, gate.wait, 10)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


@contextmanager
def scripted_upstream() -> Iterator[tuple[str, ScriptedUpstream]]:
    app = ScriptedUpstream()
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="critical", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(10)
