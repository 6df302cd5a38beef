"""A misbehaving upstream for adversarial tests: raw bytes on a socket, not a web framework.

A plain asyncio TCP server on a free loopback port, in a thread. The test sets `mode` (and,
for some modes, `size` or `seconds`); each connection reads one request and answers in that
mode, then closes. Every mode is bounded in bytes and in time (`seconds`, at most
`MAX_SECONDS`), so a gateway that never gives up still cannot hang a test.

Modes:
    ok_json               a well-formed Messages JSON response (a control)
    not_http              bytes that are not an HTTP response at all
    huge_header           one header line of 1 MB
    many_headers          10,000 headers
    body_on_204           204 No Content followed by a body
    body_on_304           304 Not Modified followed by a body
    status_999 / _600     a status line with a status outside HTTP's 100-599
    endless_stream        an SSE stream of content events that never ends (until `seconds`)
    no_line_ends_sse      SSE headers, then `size` bytes with no line end
    huge_event_sse        a valid stream with one `data:` line of `size` bytes inside it
    huge_json             a JSON body of `size` bytes (Content-Length declared)
    huge_chunked_json     the same, chunked (no length declared)
    hang                  reads the request, then sends nothing (until `seconds`)
    hang_mid_json         headers and half a JSON body, then nothing (until `seconds`)
    slow_drip             a JSON body one byte every 0.2 s (until `seconds`)
    slow_drip_stream      a stream whose events come every 0.2 s (until `seconds`)
    content_length_stream an OpenAI chat stream sent with a Content-Length
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import orjson

from bench.harness import free_port

MAX_SECONDS = 120.0  # no mode runs longer than this, whatever `seconds` says
CHUNK = 64 * 1024

MESSAGE = {
    "id": "msg_hostile",
    "type": "message",
    "role": "assistant",
    "model": "claude-haiku-4-5-20251001",
    "content": [{"type": "text", "text": "hello"}],
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "usage": {"input_tokens": 10, "output_tokens": 2},
}

ANTHROPIC_START = (
    b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_hostile",'
    b'"type":"message","role":"assistant","model":"claude-haiku-4-5-20251001","content":[],'
    b'"stop_reason":null,"usage":{"input_tokens":10,"output_tokens":1}}}\n\n'
    b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
    b'"content_block":{"type":"text","text":""}}\n\n'
)
ANTHROPIC_DELTA = (
    b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
    b'"delta":{"type":"text_delta","text":"la "}}\n\n'
)
ANTHROPIC_END = (
    b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n'
    b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"},'
    b'"usage":{"output_tokens":7}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)


def _chat_chunk(payload: dict[str, object]) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


def chat_stream_with_usage() -> bytes:
    """An OpenAI chat stream as upstream sends it when asked for include_usage."""
    base = {"id": "chatcmpl-hostile", "object": "chat.completion.chunk", "model": "gpt-5.6-luna"}
    parts = [
        _chat_chunk({**base, "choices": [{"index": 0, "delta": {"role": "assistant"}}]})[:-3]
        + b',"usage":null}\n\n',
        _chat_chunk({**base, "choices": [{"index": 0, "delta": {"content": "Hello"}}]})[:-3]
        + b',"usage":null}\n\n',
        _chat_chunk({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})[:-3]
        + b',"usage":null}\n\n',
        _chat_chunk(
            {
                **base,
                "choices": [],
                "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
            }
        ),
        b"data: [DONE]\n\n",
    ]
    return b"".join(parts)


class HostileUpstream:
    def __init__(self) -> None:
        self.mode = "ok_json"
        self.size = 8 * 1024 * 1024  # bytes, for the modes that send a lot
        self.seconds = 30.0  # how long the timed modes keep going
        self.requests = 0  # requests read, one per connection
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("hostile upstream did not start")

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)
        if not self._thread.is_alive():
            self._loop.close()

    def _run(self) -> None:
        self._loop.run_until_complete(self._serve())

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._connection, "127.0.0.1", self.port)
        self._ready.set()
        async with server:
            await self._stop.wait()
        others = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)
        await asyncio.sleep(0.05)  # closed transports finish closing

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(min(self.seconds, MAX_SECONDS) + 5):
                await _read_request(reader)
                self.requests += 1
                await getattr(self, "_" + self.mode)(writer)
                await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass  # the server is stopping: a connection still in its mode just ends
        finally:
            writer.close()

    # Each mode writes one response; the connection closes after it.

    async def _ok_json(self, writer: asyncio.StreamWriter) -> None:
        writer.write(_json_response(orjson.dumps(MESSAGE)))

    async def _not_http(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\nthis is not HTTP at all\x00\xff\r\n\r\n")

    async def _huge_header(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\nx-big: " + b"a" * (1024 * 1024) + b"\r\n")
        writer.write(b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}")

    async def _many_headers(self, writer: asyncio.StreamWriter) -> None:
        writer.write(b"HTTP/1.1 200 OK\r\n")
        writer.write(b"".join(b"x-h%d: v\r\n" % i for i in range(10_000)))
        writer.write(b"content-type: application/json\r\ncontent-length: 2\r\n\r\n{}")

    async def _body_on_204(self, writer: asyncio.StreamWriter) -> None:
        body = orjson.dumps(MESSAGE)
        writer.write(
            b"HTTP/1.1 204 No Content\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )

    async def _body_on_304(self, writer: asyncio.StreamWriter) -> None:
        body = orjson.dumps(MESSAGE)
        writer.write(
            b"HTTP/1.1 304 Not Modified\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body)
        )

    async def _status_999(self, writer: asyncio.StreamWriter) -> None:
        writer.write(_json_response(orjson.dumps(MESSAGE), status=b"999 Whatever"))

    async def _status_600(self, writer: asyncio.StreamWriter) -> None:
        writer.write(_json_response(orjson.dumps(MESSAGE), status=b"600 Beyond"))

    async def _endless_stream(self, writer: asyncio.StreamWriter) -> None:
        writer.write(_stream_head())
        writer.write(ANTHROPIC_START)
        await self._for_a_while(writer, ANTHROPIC_DELTA * 20, every_s=0.05)

    async def _slow_drip_stream(self, writer: asyncio.StreamWriter) -> None:
        writer.write(_stream_head())
        writer.write(ANTHROPIC_START)
        await self._for_a_while(writer, ANTHROPIC_DELTA, every_s=0.2)

    async def _no_line_ends_sse(self, writer: asyncio.StreamWriter) -> None:
        writer.write(_stream_head())
        writer.write(ANTHROPIC_START + ANTHROPIC_DELTA)
        await self._send_size(writer, b"data: ", b"x")

    async def _huge_event_sse(self, writer: asyncio.StreamWriter) -> None:
        writer.write(_stream_head())
        writer.write(ANTHROPIC_START + ANTHROPIC_DELTA)
        await self._send_size(writer, b"event: ping\ndata: ", b"y")
        writer.write(b"\n\n" + ANTHROPIC_DELTA + ANTHROPIC_END)

    async def _huge_json(self, writer: asyncio.StreamWriter) -> None:
        head = b'{"type":"message","pad":"'
        total = max(self.size, len(head) + 2)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n" % total
        )
        await self._send_size(writer, head, b"z", total=total - 2)
        writer.write(b'"}')

    async def _huge_chunked_json(self, writer: asyncio.StreamWriter) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        )
        sent = 0
        block = b"z" * CHUNK
        while sent < self.size:
            writer.write(b"%x\r\n%s\r\n" % (len(block), block))
            sent += len(block)
            await writer.drain()
        writer.write(b"0\r\n\r\n")

    async def _hang(self, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(min(self.seconds, MAX_SECONDS))

    async def _hang_mid_json(self, writer: asyncio.StreamWriter) -> None:
        body = orjson.dumps(MESSAGE)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body[: len(body) // 2])
        )
        await writer.drain()
        await asyncio.sleep(min(self.seconds, MAX_SECONDS))

    async def _slow_drip(self, writer: asyncio.StreamWriter) -> None:
        body = orjson.dumps(MESSAGE)
        padded = body[:-1] + b',"pad":"' + b" " * 10_000 + b'"}'
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            b"content-length: %d\r\n\r\n" % len(padded)
        )
        loop = asyncio.get_running_loop()
        end = loop.time() + min(self.seconds, MAX_SECONDS)
        for byte in padded:
            if loop.time() > end:
                return
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.2)

    async def _content_length_stream(self, writer: asyncio.StreamWriter) -> None:
        body = chat_stream_with_usage()
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
            b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body)
        )

    async def _for_a_while(self, writer: asyncio.StreamWriter, data: bytes, every_s: float) -> None:
        loop = asyncio.get_running_loop()
        end = loop.time() + min(self.seconds, MAX_SECONDS)
        sent = 0
        while loop.time() < end and sent < self.size:
            writer.write(data)
            sent += len(data)
            await writer.drain()
            await asyncio.sleep(every_s)

    async def _send_size(
        self, writer: asyncio.StreamWriter, head: bytes, fill: bytes, total: int | None = None
    ) -> None:
        """`head`, then `fill` repeated up to `total` (else `size`) bytes in all."""
        total = self.size if total is None else total
        writer.write(head)
        sent = len(head)
        block = fill * CHUNK
        while sent < total:
            piece = block[: total - sent]
            writer.write(piece)
            sent += len(piece)
            await writer.drain()


async def _read_request(reader: asyncio.StreamReader) -> None:
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)


def _json_response(body: bytes, status: bytes = b"200 OK") -> bytes:
    return (
        b"HTTP/1.1 %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\n"
        b"connection: close\r\n\r\n%s" % (status, len(body), body)
    )


def _stream_head() -> bytes:
    return (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
        b"cache-control: no-cache\r\nconnection: close\r\n\r\n"
    )


@contextmanager
def hostile_upstream() -> Iterator[HostileUpstream]:
    upstream = HostileUpstream()
    upstream.start()
    try:
        yield upstream
    finally:
        upstream.stop()
