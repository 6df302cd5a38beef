"""Which headers cross the gateway: hop-by-hop ones never do, nor the gateway's own controls.

RFC 9110 §7.6.1 lists the hop-by-hop fields, and any field a `Connection` header names is
one too; content-length is recomputed by whoever frames the body, and host belongs to the
upstream origin. `x-gateway-*` are the gateway's own, both ways: the client's controls are
not sent upstream, and an upstream's are not relayed beside the gateway's. `x-emulator-*`
control Tollgate's emulator and reach no other upstream (upstream.py). What the gateway
echoes from a request into a response header must be safe there: a model name is 1 to 256
printable ASCII characters, without spaces (a control character would break the response,
non-ASCII would reach the client garbled).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from operator import itemgetter

HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
        b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection",
    }
)  # fmt: skip
NOT_FORWARDED_UP = HOP_BY_HOP | {b"host", b"content-length", b"accept-encoding"}
GATEWAY_PREFIX = b"x-gateway-"
EMULATOR_PREFIX = b"x-emulator-"
MODEL_NAME = re.compile(r"[\x21-\x7e]{1,256}")

RawHeaders = list[tuple[bytes, bytes]]


def upstream_request_headers(client_headers: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The client's headers as sent upstream: auth, versions, betas and unknown ones pass."""
    headers = list(client_headers)
    # Most requests name no Connection option and send no gateway control: then each line
    # needs one set lookup. (A name that starts with the prefix, or lowers to `connection`,
    # would show it in the names joined, or lowered and joined. `find`, not `in`: a bytes
    # `in` first tries its operand as an int, and raises and clears a TypeError.)
    joined = b"\n".join([name for name, _ in headers])
    if joined.find(GATEWAY_PREFIX) < 0 and joined.lower().find(b"connection") < 0:
        return [line for line in headers if line[0] not in NOT_FORWARDED_UP]
    named = connection_options(headers)
    return [
        (name, value)
        for name, value in headers
        if name not in NOT_FORWARDED_UP
        and not name.startswith(GATEWAY_PREFIX)
        and (not named or name not in named)
    ]


_NAME = itemgetter(0)
_EMULATOR_LINE = b"\n" + EMULATOR_PREFIX


def without_emulator_headers(headers: RawHeaders) -> RawHeaders:
    """The request headers for an upstream that is not the emulator."""
    # Most carry no emulator control: the names joined (in C, no frame a line) show none
    # after a line break (a name with one in it is looked at line by line, as before).
    names = b"\n" + b"\n".join(map(_NAME, headers))
    if names.find(_EMULATOR_LINE) < 0 or not any(n.startswith(EMULATOR_PREFIX) for n, _ in headers):
        return headers
    return [(n, v) for n, v in headers if not n.startswith(EMULATOR_PREFIX)]


def connection_options(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The fields `Connection` headers name (lowercased): hop-by-hop, never forwarded."""
    named: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            named.update(token.strip().lower() for token in value.split(b","))
    named.discard(b"")
    return frozenset(named)


def is_json(content_type: bytes | None) -> bool:
    """Whether a Content-Type is application/json: the media type case-insensitively, any
    parameters (charset) after it."""
    if content_type is None:
        return False
    return content_type.split(b";", 1)[0].strip().lower() == b"application/json"


def safe_model_name(name: str) -> bool:
    return MODEL_NAME.fullmatch(name) is not None


def with_credential(headers: RawHeaders, credential: bytes) -> RawHeaders:
    """The client's headers with its credential (a gateway key) replaced by `credential`,
    in the header the client used: x-api-key, else Authorization: Bearer."""
    swapped = False
    out: RawHeaders = []
    for name, value in headers:
        if name == b"x-api-key":
            value, swapped = credential, True
        elif name == b"authorization":
            value, swapped = b"Bearer " + credential, True
        out.append((name, value))
    return out if swapped else [*out, (b"x-api-key", credential)]


def client_response_headers(
    upstream_headers: Iterable[tuple[bytes, bytes]], own: RawHeaders, *, keep_length: bool = True
) -> RawHeaders:
    """Upstream's response headers, less hop-by-hop ones, those its `Connection` names, and
    upstream's own `x-gateway-*`, plus the gateway's `x-gateway-*`. Without `keep_length` (a
    body the gateway may change), less Content-Length too."""
    kept = [(name.lower(), value) for name, value in upstream_headers]
    names = [name for name, _ in kept]
    return lowered_response_headers(names, [value for _, value in kept], own, keep_length)


_WITHOUT_LENGTH = HOP_BY_HOP | {b"content-length"}
_GATEWAY_LINE = b"\n" + GATEWAY_PREFIX


def lowered_response_headers(
    names: list[bytes], values: Sequence[bytes], own: RawHeaders, keep_length: bool = True
) -> RawHeaders:
    """`client_response_headers` of lines whose names are lowered already. Most responses
    keep every line: then none is filtered one by one, and a single line to go (upstream's
    Content-Length) is taken out by its index."""
    dropped = HOP_BY_HOP if keep_length else _WITHOUT_LENGTH
    named = connection_options(zip(names, values, strict=True)) if b"connection" in names else ()
    dropped = dropped.union(named).intersection(names)
    kept = list(zip(names, values, strict=True))
    lines = b"\n" + b"\n".join(names)
    if lines.find(_GATEWAY_LINE) < 0:  # `find`: `in` would raise and clear a TypeError first
        if not dropped:
            return kept + own
        if len(dropped) == 1:
            (name,) = dropped
            if names.count(name) == 1:
                del kept[names.index(name)]
                return kept + own
    return [
        (name, value)
        for name, value in kept
        if name not in dropped and not name.startswith(GATEWAY_PREFIX)
    ] + own


def first_values(headers: Sequence[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    """Each name's first value, as `header_value` finds it: one pass in C for a request that
    reads several headers (the later of a name's lines is put first and then replaced)."""
    return dict(reversed(headers))


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None
