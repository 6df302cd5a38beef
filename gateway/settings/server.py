"""The gateway's edge (host, workers, the client-facing limits) and its upstreams: where each
provider is, and how long and how much the gateway waits for and holds of it."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from gateway.settings.section import Section


class ServerSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=1, le=65535)
    workers: int = Field(default=1, ge=1)
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    # The client to providers: aiohttp's, called directly, or httpx's own (`httpcore`); aiohttp
    # costs less per call (docs/benchmarks.md).
    upstream_transport: Literal["aiohttp", "httpcore"] = "aiohttp"
    # `gateway serve` starts `gateway emulate` beside itself, so the defaults run with no keys:
    # only when a provider's base_url is the emulator's address (emulator.host:emulator.port).
    start_emulator: bool = True
    # On SIGTERM: stop accepting, let in-flight requests and streams finish for up to this
    # long, then cut what is left and exit. Kubernetes' grace period must be longer (deploy/k8s).
    shutdown_grace_s: int = Field(default=30, ge=0)
    # Request line plus headers, and the number of headers: past either, 431 and close.
    max_header_bytes: int = Field(default=64 * 1024, gt=0)
    max_headers: int = Field(default=100, gt=0)
    # The client edge (docs/limits.md): from a request's first byte to the end of its head,
    # past it 408 and close (slowloris); a body must arrive whole within body_timeout_s of
    # its head, past it 408 and close, its bytes released (32 MiB in 60 s is ~4.5 Mbit/s).
    head_timeout_s: float = Field(default=10.0, gt=0)
    body_timeout_s: float = Field(default=60.0, gt=0)
    # Request bodies being received at once (declared lengths counted up front), per worker:
    # past it, 503 and close. What slow or withholding uploads can pin in memory: room for
    # one body of max_body_bytes and some small ones beside it.
    max_incoming_body_bytes: int = Field(default=40 * 1024 * 1024, gt=0)
    # An error sent before the body was read whole: the rest of the body is read and dropped
    # for up to this long before the close, so that the client reads the error, not a reset.
    linger_s: float = Field(default=5.0, ge=0)
    # ... and for up to this many bytes: past them the connection is closed at once (a client
    # declaring a 10**12-byte body would otherwise have ~15 GB read in 5 s on loopback).
    linger_max_bytes: int = Field(default=64 * 1024 * 1024, ge=0)
    # A connection with no request in progress (new, or kept alive after a response) is
    # closed after this long: longer than a load balancer's own idle timeout (AWS ALB: 60 s),
    # so that the balancer, not the gateway, closes a pooled connection.
    idle_timeout_s: float = Field(default=75.0, gt=0)
    # Connections (or requests in progress) per worker process: past it, 503 and close.
    max_connections: int = Field(default=1024, ge=1)


class ProviderSettings(Section):
    """Where a provider is, and how long and how much the gateway waits for and holds of it
    (docs/limits.md, "Upstream")."""

    base_url: str
    api_key: SecretStr | None = None
    # Per read: the longest silence from the provider, its response headers included (a JSON
    # answer's headers come only once the whole answer is made). Past it: 504, not retried
    # on the same model (it took the call; another try would bill it again).
    timeout_s: float = Field(default=120.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)  # past it: 504, retried
    # A whole call: every attempt and backoff, and reading a JSON body; a step's
    # `timeout_s` replaces it (and stream_timeout_s). Past it: 504.
    total_timeout_s: float = Field(default=600.0, gt=0)
    # A stream, from its first attempt to its last byte: past it, the stream is ended with the
    # wire format's error event.
    stream_timeout_s: float = Field(default=1800.0, gt=0)
    # A JSON response held whole (to read its usage): past it, 502.
    max_response_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    # One SSE line or event held by a stream's parsers: past it, the event is skipped by the
    # meter (its bytes still reach the client) and the usage filter passes bytes unchanged.
    max_event_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    # This upstream is Tollgate's emulator: the client's x-emulator-* headers (faults, the
    # virtual clock) are forwarded to it; to any other upstream they are stripped. An
    # upstream that `server.start_emulator` starts at the emulator's address counts as one.
    emulator: bool = False


class ProvidersSettings(Section):
    anthropic: ProviderSettings = ProviderSettings(base_url="http://127.0.0.1:8090")
    openai: ProviderSettings = ProviderSettings(base_url="http://127.0.0.1:8090")
