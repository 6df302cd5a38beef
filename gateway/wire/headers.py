"""Which headers cross the gateway: hop-by-hop ones never do, nor the gateway's own controls.

RFC 9110 §7.6.1 lists the hop-by-hop fields; content-length is recomputed by whoever
frames the body, and host belongs to the upstream origin.
"""

from __future__ import annotations

from collections.abc import Iterable

HOP_BY_HOP = frozenset(
    {
        b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
        b"trailer", b"transfer-encoding", b"upgrade", b"proxy-connection",
    }
)  # fmt: skip
NOT_FORWARDED_UP = HOP_BY_HOP | {b"host", b"content-length", b"accept-encoding"}
GATEWAY_PREFIX = b"x-gateway-"

RawHeaders = list[tuple[bytes, bytes]]


def upstream_request_headers(client_headers: Iterable[tuple[bytes, bytes]]) -> RawHeaders:
    """The client's headers as sent upstream: auth, versions, betas and unknown ones pass."""
    return [
        (name, value)
        for name, value in client_headers
        if name not in NOT_FORWARDED_UP and not name.startswith(GATEWAY_PREFIX)
    ]


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
    """Upstream's response headers, less hop-by-hop ones, plus the gateway's `x-gateway-*`.
    Without `keep_length` (a body the gateway may change), less Content-Length too."""
    dropped = HOP_BY_HOP if keep_length else HOP_BY_HOP | {b"content-length"}
    kept = [(name.lower(), value) for name, value in upstream_headers]
    return [(n, v) for n, v in kept if n not in dropped] + own


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None
