"""The Markdown report of bench/overhead.py: the header, the per-body table (summary.py),
then for each body the wrk and probe tables, memory, gateway minus floor, the targets."""

from __future__ import annotations

import time

from harness.proxies import GATEWAY_CORE, LOAD_CORE

from measure.cells import Cell, ProbeCell, Report
from measure.runner import CONCURRENCY, PROBE_CONCURRENCY, QUIET_LIMIT, QUIET_TRIES
from measure.summary import summary_table
from measure.targets import fmt, targets

REPLY_WORDS = 30  # the emulator's text deltas per stream (one per word)


def markdown(report: Report, command: str) -> str:
    bodies = report.bodies()
    sizes = "; ".join(f"{body} ({report.body_bytes.get(body, '?')} bytes)" for body in bodies)
    out = [
        "# Tollgate overhead benchmark",
        "",
        f"Command: `{command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  ",
        *(f"{key}: {value}  " for key, value in report.environment.items()),
        "",
        f"Emulator at `--latency none`, {REPLY_WORDS} text deltas per stream. The proxy under "
        f"test (gateway, floor or LiteLLM) pinned alone on core {GATEWAY_CORE}; emulator, wrk "
        f"and the probe on core {LOAD_CORE}. {report.args['seconds']:g} s per cell after "
        f"{report.args['warmup']:g} s warm-up. "
        f"Request body: {sizes}. "
        "Latency and throughput: wrk, closed loop, one thread, whole response. "
        "Added = through the proxy minus direct, same cell. CPU/req = the proxy process's "
        "utime+stime over the cell / requests; 'capacity' = 1 / CPU per request, what one "
        "fully busy core would serve.",
        "",
    ]
    out += summary_table(report)
    for body in bodies:
        out += body_sections(report.only(body), f", body {body}" if len(bodies) > 1 else "")
    if report.notes:
        out += ["## Notes", "", *(f"- {note}" for note in report.notes), ""]
    return "\n".join(out)


def body_sections(report: Report, suffix: str) -> list[str]:
    """Every table of one body's cells; `suffix` names the body in each heading."""
    paths = list(dict.fromkeys(c.path for c in report.cells))
    out = [
        f"## Latency and throughput (wrk){suffix}",
        "",
        "| path | mode | c | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
        "| proxy CPU ms/req | capacity req/s | proxy core busy | core 0 busy | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for mode in ("json", "stream"):
        for concurrency in CONCURRENCY:
            direct = report.cell("direct", mode, concurrency)
            for path in paths:
                cell = report.cell(path, mode, concurrency)
                if cell is None:
                    continue
                add50 = cell.p50_ms - direct.p50_ms if direct and path != "direct" else None
                add99 = cell.p99_ms - direct.p99_ms if direct and path != "direct" else None
                cpu = cell.proxy_cpu_ms_per_req
                out.append(
                    f"| {path} | {mode} | {concurrency} | {cell.rps:,.0f} | {fmt(cell.p50_ms)} "
                    f"| {fmt(cell.p99_ms)} | {fmt(add50)} | {fmt(add99)} | {fmt(cpu)} "
                    f"| {fmt(1000 / cpu if cpu else None, 0)} "
                    f"| {fmt(cell.proxy_core_busy * 100 if cell.proxy_core_busy else None, 0)}% "
                    f"| {cell.load_core_busy * 100:.0f}% | {cell.errors} |"
                )
    if report.probes:
        out += probe_table(report, paths, suffix)
    out += ["", "## Memory", "", "| path | RSS after the cells MB |", "|---|--:|"]
    out += [f"| {path} | {mb:.1f} |" for path, mb in report.rss_after_mb.items()]
    for soak in report.soaks:
        out += [
            "",
            f"Soak, gateway-{soak.transport}: {soak.requests:,} requests (JSON and stream "
            f"alternating, c=64) in {soak.seconds:.0f} s, {soak.errors} errors. RSS MB at "
            f"start {soak.at(0):.1f}, middle {soak.at(0.5):.1f}, end {soak.at(1):.1f}, "
            f"peak {max(mb for _, mb in soak.rss_mb):.1f}.",
        ]
    gateways = [p for p in paths if p.startswith("gateway-")]
    floors = [p for p in paths if p.startswith("floor-")]
    out += floor_table(report, floors, gateways, suffix)
    if gateways and report.probes:  # the targets need the probe cells
        out += ["", f"## Targets{suffix}", ""]
        floor = floors[0] if floors else None
        reference = [] if floor is None else targets(report, floor)
        for path in gateways:
            head = "| target | limit | measured | |" + (f" {floor} |" if floor else "")
            out += [f"### {path}", "", head, "|---|--:|--:|---|" + ("--:|" if floor else "")]
            out += [
                target.row(reference[i] if reference else None)
                for i, target in enumerate(targets(report, path))
            ]
            out.append("")
    return out


def probe_table(report: Report, paths: list[str], suffix: str) -> list[str]:
    out = [
        "",
        f"## Time to first byte (raw-socket probe){suffix}",
        "",
        "TTFB = request written → status line read; first delta = → the chunk holding the "
        "first `content_block_delta`.",
        "",
        "| path | mode | c | TTFB p50 ms | added TTFB p50 ms | TTFB p99 ms "
        "| first delta p50 ms | total p50 ms | total p99 ms | samples | errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for mode, concurrencies in (("stream", PROBE_CONCURRENCY), ("json", (1,))):
        for concurrency in concurrencies:
            direct = report.probe("direct", mode, concurrency)
            for path in paths:
                probe = report.probe(path, mode, concurrency)
                if probe is None:
                    continue
                added = (
                    probe.ttfb_p50_ms - direct.ttfb_p50_ms if direct and path != "direct" else None
                )
                out.append(
                    f"| {path} | {mode} | {concurrency} | {fmt(probe.ttfb_p50_ms)} "
                    f"| {fmt(added)} | {fmt(probe.ttfb_p99_ms)} "
                    f"| {fmt(probe.first_delta_p50_ms)} | {fmt(probe.total_p50_ms)} "
                    f"| {fmt(probe.total_p99_ms)} | {probe.samples} | {probe.errors} |"
                )
    return out


def floor_table(report: Report, floors: list[str], gateways: list[str], suffix: str) -> list[str]:
    """CPU per request of the floors and the gateways, and each gateway minus each floor:
    what the gateway's own work costs above the stack it is built on."""
    if not floors or not gateways:
        return []
    columns = [
        (mode, c)
        for mode in ("json", "stream")
        for c in CONCURRENCY
        if any(report.cell(path, mode, c) for path in floors)
    ]

    def cpu(path: str) -> list[float | None]:
        cells = (report.cell(path, mode, c) for mode, c in columns)
        return [cell.proxy_cpu_ms_per_req if cell else None for cell in cells]

    def row(label: str, values: list[float | None]) -> str:
        return f"| {label} | " + " | ".join(fmt(v) for v in values) + " |"

    out = [
        "",
        f"## Gateway minus floor (proxy CPU ms per request){suffix}",
        "",
        "Floor = bench/passthrough.py, a do-nothing raw-ASGI passthrough under the same uvicorn, "
        "pinned the same way: `floor-httpx-aiohttp` relays through httpx-aiohttp's transport "
        "as the gateway does, `floor-aiohttp` through aiohttp's ClientSession directly.",
        "",
        "| path | " + " | ".join(f"{mode} c={c}" for mode, c in columns) + " |",
        "|---|" + "--:|" * len(columns),
    ]
    out += [row(path, cpu(path)) for path in (*floors, *gateways)]
    for gateway in gateways:
        for floor in floors:
            diff = [
                g - f if g is not None and f is not None else None
                for g, f in zip(cpu(gateway), cpu(floor), strict=True)
            ]
            out.append(row(f"**{gateway} minus {floor}**", diff))
    return out


def quiet_notes(report: Report) -> list[str]:
    """Says which cells ran while other processes were busy, and which still did at the end."""
    cells: list[Cell | ProbeCell] = [*report.cells, *report.probes]
    noisy = [
        f"{c.path} {c.body} {c.mode} c={c.concurrency}"
        f"{' probe' if isinstance(c, ProbeCell) else ''} ({c.foreign_cores:.0%})"
        for c in cells
        if c.foreign_cores > QUIET_LIMIT
    ]
    notes = []
    if report.reruns:
        notes.append(
            f"Re-run because other processes used more than {QUIET_LIMIT:.0%} of a core during "
            f"them (their share in brackets): {', '.join(report.reruns)}."
        )
    if noisy:
        notes.append(f"Still busy after {QUIET_TRIES} tries: {', '.join(noisy)}.")
    return notes


def ceiling_notes(report: Report) -> list[str]:
    """Says when the emulator, not the proxy, bounds a cell: its core is shared with wrk."""
    notes = []
    for body in report.bodies():
        for mode, target in (("json", 2500), ("stream", 1600)):
            direct = report.cell("direct", mode, 64, body)
            if direct is not None and direct.rps < target:
                notes.append(
                    f"Direct to the emulator, {body} {mode} at c=64 tops out at "
                    f"{direct.rps:,.0f} req/s with core {LOAD_CORE} {direct.load_core_busy:.0%} "
                    f"busy (emulator + wrk): the ≥ {target:,} target cannot be shown through any "
                    "proxy in this layout. The 'capacity' column (1 / proxy CPU per request) is "
                    "the proxy's own ceiling."
                )
    return notes
