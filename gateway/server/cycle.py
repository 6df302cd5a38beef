"""A request cycle's `send`: uvicorn's httptools one, the same bytes, state and errors, with
the response head written in a few C calls instead of a Python step per header line.

uvicorn's loop checks each header line with two regular expressions, lowers its name and
compares it three times (~0.4 us a line; a provider's response has twenty lines or more).
Here the names are checked at once, joined, by taking out every byte uvicorn's pattern
allows (`bytes.translate`, a table lookup a byte), the values likewise (a byte left means a
bad line: uvicorn's own loop then says which, with its error); they are lowered at once,
and only the lines that set the framing (content-length, transfer-encoding, connection) are
read one by one, as uvicorn reads them.

It also says `connection: close` on a response that starts before the request's body was
read whole (a 401 or 404 answered from the head): the connection cannot be reused, and the
client must not wait to send on it.
"""

from __future__ import annotations

from typing import Any

from uvicorn.protocols.http.httptools_impl import HEADER_RE, HEADER_VALUE_RE, STATUS_LINE
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

from gateway.errors import CLOSE

_FRAMING = frozenset({b"content-length", b"transfer-encoding", b"connection"})
_CONNECTION_CLOSE = b"connection: close\r\n"
_CHUNKED = b"transfer-encoding: chunked\r\n"
# The bytes uvicorn's patterns allow in a header name, and in a value.
_NAME_BYTES = bytes(byte for byte in range(256) if not HEADER_RE.match(bytes((byte,))))
_VALUE_BYTES = bytes(byte for byte in range(256) if not HEADER_VALUE_RE.match(bytes((byte,))))


def _keeping(allowed: bytes) -> bytes:
    """A `bytes.translate` table that keeps each allowed byte and changes every other: the
    bytes it changes nothing in are returned as they are (the same object), which is the
    check, without the copy that deleting them makes."""
    return bytes(byte if byte in allowed else byte ^ 1 for byte in range(256))


_NAME_TABLE, _VALUE_TABLE = _keeping(_NAME_BYTES), _keeping(_VALUE_BYTES)


# The uvicorn whose `send` this one copies; under another, uvicorn's own is kept
# (edge_cycle.py's `ClosingCycle`).
COPIED_FROM = "0.54."


def closing_early(cycle: Any, message: Any) -> Any:
    """`message`, with `connection: close` if it starts a response before the request's body
    was read whole (and no connection header says otherwise): what uvicorn's own `send` is
    given under another uvicorn."""
    if message["type"] == "http.response.start" and cycle.more_body:
        given = list(message.get("headers", ()))
        if not any(name.lower() == b"connection" for name, _ in given):
            return {**message, "headers": [*given, CLOSE]}
    return message


async def send(cycle: Any, message: Any) -> None:
    """`RequestResponseCycle.send(message)` for `cycle` (uvicorn 0.54's, line for line but
    for the head's header lines), less the closing of an early response."""
    if cycle.flow.write_paused and not cycle.disconnected:
        await cycle.flow.drain()
    if cycle.disconnected:
        return
    if cycle.response_started:
        _body(cycle, message)
        return
    if message["type"] != "http.response.start":
        raise RuntimeError(
            f"Expected ASGI message 'http.response.start', but got '{message['type']}'."
        )
    given = list(message.get("headers", []))
    # Before the response counts as started: a header the app got wrong here still gets the
    # client uvicorn's 500, as it did when this was a wrapper around uvicorn's send.
    if cycle.more_body and not any(name.lower() == b"connection" for name, _ in given):
        given.append(CLOSE)  # answered before the request's body was read whole
    cycle.response_started = True
    cycle.waiting_for_100_continue = False
    status_code = message["status"]
    headers = cycle.default_headers + given
    if cycle.access_log:
        scope = cycle.scope
        cycle.access_logger.info(
            '%s - "%s %s HTTP/%s" %d',
            get_client_addr(scope),
            scope["method"],
            get_path_with_query_string(scope),
            scope["http_version"],
            status_code,
        )
    cycle.transport.write(_head(cycle, status_code, headers))


def _head(cycle: Any, status_code: int, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The status line and header lines, the framing read from them as uvicorn reads it."""
    content = [STATUS_LINE[status_code]]
    has_connection_close = False
    if headers:
        names, values = zip(*headers, strict=True)
        # A byte the table changes is one the pattern does not allow; `a` may be in a name
        # and a tab in a value, so the separators are never one.
        joined_names, joined_values = b"a".join(names), b"\t".join(values)
        if (
            joined_names.translate(_NAME_TABLE) is not joined_names
            or joined_values.translate(_VALUE_TABLE) is not joined_values
        ):
            _check_each(headers)
        # A valid name holds no newline: one lower() for all of them.
        lowered = b"\n".join(names).lower().split(b"\n")
        if not _FRAMING.isdisjoint(lowered):
            has_connection_close = _framing(cycle, lowered, values)
        content += (b"\r\n".join(map(b": ".join, zip(lowered, values, strict=True))), b"\r\n")
    if not cycle.keep_alive and not has_connection_close:
        content.append(_CONNECTION_CLOSE)
    if (
        cycle.chunked_encoding is None
        and cycle.scope["method"] != "HEAD"
        and status_code not in (204, 304)
    ):
        # Neither content-length nor transfer-encoding specified
        cycle.chunked_encoding = True
        content.append(_CHUNKED)
    content.append(b"\r\n")
    return b"".join(content)


def _check_each(headers: list[tuple[bytes, bytes]]) -> None:
    """uvicorn's checks, line by line: the first bad name or value raises its error."""
    for name, value in headers:
        if HEADER_RE.search(name):
            raise RuntimeError("Invalid HTTP header name.")
        if HEADER_VALUE_RE.search(value):
            raise RuntimeError("Invalid HTTP header value.")


def _framing(cycle: Any, lowered: list[bytes], values: tuple[bytes, ...]) -> bool:
    """The body's framing and the connection's end from the lines that say them, in order;
    True if one says `connection: close`."""
    has_connection_close = False
    for name, value in zip(lowered, values, strict=True):
        if name not in _FRAMING:
            continue
        if name == b"content-length" and cycle.chunked_encoding is None:
            cycle.expected_content_length = int(value.decode())
            cycle.chunked_encoding = False
        elif name == b"transfer-encoding" and value.lower() == b"chunked":
            cycle.expected_content_length = 0
            cycle.chunked_encoding = True
        elif name == b"connection":
            connection = [token.lower().strip() for token in value.split(b",")]
            if b"close" in connection:
                cycle.keep_alive = False
                has_connection_close = True
    return has_connection_close


def _body(cycle: Any, message: Any) -> None:
    if cycle.response_complete:
        raise RuntimeError(
            f"Unexpected ASGI message '{message['type']}' sent, after response already completed."
        )
    if message["type"] != "http.response.body":
        raise RuntimeError(
            f"Expected ASGI message 'http.response.body', but got '{message['type']}'."
        )
    body = message.get("body", b"")
    more_body = message.get("more_body", False)
    if cycle.scope["method"] == "HEAD":
        cycle.expected_content_length = 0
    elif cycle.chunked_encoding:
        content = [b"%x\r\n" % len(body), body, b"\r\n"] if body else []
        if not more_body:
            content.append(b"0\r\n\r\n")
        cycle.transport.write(b"".join(content))
    else:
        num_bytes = len(body)
        if num_bytes > cycle.expected_content_length:
            raise RuntimeError("Response content longer than Content-Length")
        cycle.expected_content_length -= num_bytes
        cycle.transport.write(body)
    if not more_body:
        if cycle.expected_content_length != 0:
            raise RuntimeError("Response content shorter than Content-Length")
        cycle.response_complete = True
        cycle.message_event.set()
        if not cycle.keep_alive:
            cycle.transport.close()
        cycle.on_response()
