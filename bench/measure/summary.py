"""One row per (body, proxy): added latency at c=1, throughput at c=64 and CPU per call —
the table for comparing proxies across body sizes and a gateway before and after a change
(`--ref`), in one run on one machine."""

from __future__ import annotations

from measure.cells import Report
from measure.targets import fmt

FLOOR = "floor-httpx-aiohttp"  # the stack the gateway is built on: throughput relative to it


def label(report: Report, path: str) -> str:
    head = report.environment.get("gateway code", "HEAD")
    if path.startswith("gateway-"):
        transport, _, commit = path.removeprefix("gateway-").partition("@")
        return f"Tollgate {commit or head} ({transport})"
    if path == "litellm":
        return f"LiteLLM proxy {report.environment.get('litellm', '')}".strip()
    client = path.removeprefix("floor-").replace("httpx-aiohttp", "httpx over aiohttp")
    return f"do-nothing proxy, {client}"


def summary_table(report: Report) -> list[str]:
    """The table, or nothing when the run measured no proxy."""
    rows: list[str] = []
    for body in report.bodies():
        direct = report.cell("direct", "json", 1, body)
        floor = report.cell(FLOOR, "json", 64, body)
        paths = dict.fromkeys(c.path for c in report.cells if c.body == body and c.path != "direct")
        for path in sorted(paths, key=lambda p: (not p.startswith("floor-"), p != "litellm")):
            c1 = report.cell(path, "json", 1, body)
            json64 = report.cell(path, "json", 64, body)
            stream64 = report.cell(path, "stream", 64, body)
            added = c1.p50_ms - direct.p50_ms if c1 and direct else None
            ratio = json64.rps / floor.rps if json64 and floor and floor.rps else None
            errors = sum(c.errors for c in (c1, json64, stream64) if c is not None)
            rows.append(
                f"| {body} ({report.body_bytes.get(body, '?')} B) | {label(report, path)} "
                f"| {fmt(added)} | {fmt(json64.rps if json64 else None, 0)} "
                f"| {fmt(ratio, 2)} | {fmt(stream64.rps if stream64 else None, 0)} "
                f"| {fmt(json64.proxy_cpu_ms_per_req if json64 else None)} | {errors} |"
            )
    if not rows:
        return []
    return [
        "## Proxies by body size",
        "",
        "+c1 p50 = the proxy's c=1 JSON p50 minus direct's; req/s and streams/s at c=64; "
        f"× floor = JSON req/s over {FLOOR}'s; CPU per JSON call = the proxy's CPU per "
        "request in the c=64 JSON cell. Body sizes: JSON / stream form.",
        "",
        "| body | proxy | +c1 p50 JSON ms | c64 req/s JSON | × floor | c64 streams/s "
        "| CPU per JSON call ms | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|",
        *rows,
        "",
    ]
