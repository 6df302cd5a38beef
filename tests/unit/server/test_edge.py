"""The edge's dispatch: the endpoints get the scope as the server made it, the FastAPI app
behind uvicorn's proxy headers (Edge.behind_proxies)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI

from gateway.cli import forwarded_allow_ips
from gateway.server.edge import Edge

FORWARDED = [(b"x-forwarded-for", b"203.0.113.7"), (b"x-forwarded-proto", b"https")]


def scope(path: str) -> dict[str, Any]:
    return {
        "type": "http",
        "method": "POST",
        "path": path,
        "headers": FORWARDED,
        "client": ("127.0.0.1", 5000),
        "scheme": "http",
    }


def test_only_the_app_behind_the_endpoints_reads_the_proxy_headers() -> None:
    seen: dict[str, tuple[Any, Any]] = {}

    async def endpoint(scope: Any, receive: Any, send: Any) -> None:
        seen["endpoint"] = (scope["client"], scope["scheme"])

    rest = FastAPI()
    edge = Edge({("POST", "/v1/messages"): endpoint}, rest)

    async def other(scope: Any, receive: Any, send: Any) -> None:
        seen["rest"] = (scope["client"], scope["scheme"])

    edge.rest = other  # type: ignore[assignment]
    edge.behind_proxies(forwarded_allow_ips())

    async def go() -> None:
        await edge(scope("/v1/messages"), None, None)  # type: ignore[arg-type]
        await edge(scope("/healthz"), None, None)  # type: ignore[arg-type]

    asyncio.run(go())
    assert seen["endpoint"] == (("127.0.0.1", 5000), "http")
    assert seen["rest"] == (("203.0.113.7", 0), "https")


def test_uvicorns_trusted_proxies_by_default(monkeypatch: Any) -> None:
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
    assert forwarded_allow_ips() == "127.0.0.1,::1"
    monkeypatch.setenv("FORWARDED_ALLOW_IPS", "*")
    assert forwarded_allow_ips() == "*"
