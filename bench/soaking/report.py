"""The soak's verdicts and its Markdown report."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass

from harness.machine import machine

from soaking.config import (
    BASE_DELAY_S,
    FAMILIES,
    FAST,
    FAULT_RATES,
    FAULT_SEED,
    HEDGE_TTFT_MS,
    LEAVE_EARLY_MS,
    LEAVE_EARLY_SHARE,
    LEAVE_MID_SHARE,
    MAX_DELAY_S,
    OPENAI_SHARE,
    PACKAGES,
    PROVIDER_TIMEOUT_S,
    RSS_TOLERANCE_MB,
    SLOW_FAULT_MS,
    STEPS,
    STREAM_SHARE,
    WARMUP_MIN,
    WARMUP_SHARE,
)
from soaking.outcomes import COMPLETE, LEFT
from soaking.run import Run, Sample, bare


def slope_mb_per_100k(samples: list[Sample]) -> float:
    """Least-squares RSS growth against requests done."""
    if len(samples) < 2:
        return 0.0
    xs = [s.done for s in samples]
    ys = [s.rss_mb for s in samples]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return 0.0
    cov = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True))
    return cov / var * 100_000


def warmed_up(run: Run) -> Sample:
    """The first sample after warm-up (for a run too short to have one, the middle one)."""
    calls = max(run.requests * WARMUP_SHARE, WARMUP_MIN)
    after = [s for s in run.samples if s.done >= calls]
    return after[0] if after else run.samples[len(run.samples) // 2]


@dataclass
class Verdict:
    name: str
    passed: bool
    detail: str
    judged: bool = True


def verdicts(run: Run) -> list[Verdict]:
    warm = warmed_up(run)
    end = run.samples[-1]
    drift = end.rss_mb - warm.rss_mb
    judged = run.requests >= 2 * WARMUP_MIN
    gateway_500s = sum(
        n
        for key, n in run.outcomes.items()
        if "the gateway's own" in key or bare(key).startswith("VIOLATION 500")
    )
    total = sum(run.outcomes.values())
    return [
        Verdict(
            "every request ended complete, with a well-formed error, or left by its client",
            run.violations == 0 and total == run.requests,
            f"{total:,} requests, {run.violations} violations",
        ),
        Verdict(
            "no upstream response open after the clients are done",
            run.settled_open == 0,
            f"emulator open responses {run.settled_open} after {run.settle_s:.1f} s",
        ),
        Verdict(
            f"gateway RSS flat after warm-up (within {RSS_TOLERANCE_MB:g} MB)",
            abs(drift) <= RSS_TOLERANCE_MB or not judged,
            f"{warm.rss_mb:.1f} MB after warm-up → {end.rss_mb:.1f} MB at the end "
            f"({drift:+.1f} MB)"
            + ("" if judged else f"; not judged: under {2 * WARMUP_MIN:,} calls, still warming"),
            judged,
        ),
        Verdict("no 500 from the gateway itself", gateway_500s == 0, f"{gateway_500s}"),
    ]


def verdict_word(check: Verdict) -> str:
    return "n/a" if not check.judged else "pass" if check.passed else "FAIL"


def markdown(run: Run, command: str) -> str:
    total = sum(run.outcomes.values())
    checks = verdicts(run)
    passed = all(check.passed for check in checks)
    warm = warmed_up(run)
    after = [s for s in run.samples if s.done >= warm.done]
    peak = max(run.samples, key=lambda s: s.open_upstream)
    above = sum(s.open_upstream > s.in_flight for s in run.samples)
    out = [
        "# Tollgate fault soak",
        "",
        f"Command: `{command}`  ",
        f"Date: {time.strftime('%Y-%m-%d %H:%M:%S %Z')}  ",
        *(f"{key}: {value}  " for key, value in machine(PACKAGES).items()),
        "",
        f"**{'PASS' if passed else 'FAIL'}** — {total:,} requests in {run.seconds:.0f} s "
        f"({total / run.seconds:,.0f} req/s) at concurrency {run.concurrency}. Other processes "
        f"on the machine used {run.foreign_cores:.2f} cores meanwhile.",
        "",
        "| check | | measured |",
        "|---|---|---|",
        *(f"| {c.name} | **{verdict_word(c)}** | {c.detail} |" for c in checks),
        "",
        "## Setup",
        "",
        f"- Faults at seeded rates (seed {FAULT_SEED}) on every upstream attempt, retries and "
        "hedges included: " + ", ".join(f"{k} {v:.0%}" for k, v in FAULT_RATES.items()) + ". "
        f"`slow` = first byte after {SLOW_FAULT_MS} ms, past the gateway's "
        f"{PROVIDER_TIMEOUT_S:g} s provider timeout; 429s carry `retry-after: 1`.",
        f"- Gateway retries: 3 attempts per model, backoff {BASE_DELAY_S:g} s doubling to "
        f"{MAX_DELAY_S:g} s; `synthesis` falls back to the small tier; `tool_decision` "
        f"hedges after {HEDGE_TTFT_MS} ms.",
        f"- Emulator latency `realistic` with a fast profile ({FAST['ttft_base_ms']} ms to "
        f"first token, {FAST['output_tokens_per_s']:,} tokens/s; 30-word replies).",
        f"- Client mix: {OPENAI_SHARE:.0%} OpenAI Chat Completions (`chat`), the rest "
        f"Anthropic Messages (`messages`); {STREAM_SHARE:.0%} streams; steps "
        f"{', '.join(str(s) for s in STEPS)} equally; {LEAVE_EARLY_SHARE:.0%} give up when "
        "the response head has not come within "
        f"{LEAVE_EARLY_MS[0]:g}–{LEAVE_EARLY_MS[1]:g} ms; {LEAVE_MID_SHARE:.0%} of the other "
        f"streams close after their first two or three events; {FAMILIES} system prompts.",
        "",
        "## Outcomes",
        "",
        "| outcome | requests | share |",
        "|---|--:|--:|",
    ]
    for outcome, n in sorted(run.outcomes.items(), key=lambda item: (-item[1], item[0])):
        out.append(f"| {outcome} | {n:,} | {n / total:.3%} |")
    if run.outran:
        out += [
            "",
            "Planned departures that the response outran (counted by what the client got): "
            + ", ".join(f"{kind} {n:,}" for kind, n in sorted(run.outran.items()))
            + ".",
        ]
    out += ["", "## Faults injected (emulator) and the gateway's metrics", ""]
    faults = run.emulator_state.get("faults", {})
    attempts = run.emulator_state.get("responses", 0)
    out.append(
        "Injected: "
        + ", ".join(f"{kind} {n:,}" for kind, n in sorted(faults.items()))
        + f" — {sum(faults.values()):,} in all. Responses the emulator paced: {attempts:,}."
    )
    retries = sum(run.metrics.get("gateway_retries_total", {}).values())
    upstream_errors = run.metrics.get("gateway_upstream_errors_total", {})
    out += [
        "",
        f"Gateway: `gateway_retries_total` {retries:,.0f}; `gateway_upstream_errors_total` by "
        "status: "
        + ", ".join(f"{status} {n:,.0f}" for status, n in sorted(upstream_errors.items()))
        + ".",
        "",
        "`gateway_requests_total` by status against the client's count:",
        "",
        "| status | gateway | client |",
        "|---|--:|--:|",
    ]
    client = client_statuses(run.outcomes)
    by_status = run.metrics.get("gateway_requests_total", {})
    for status in sorted(set(by_status) | set(client)):
        out.append(f"| {status} | {by_status.get(status, 0):,.0f} | {client.get(status, 0):,} |")
    out.append(f"| **all** | {sum(by_status.values()):,.0f} | {sum(client.values()):,} |")
    out += [
        "",
        "Client side: 200 = complete; client_closed = left; cut = a stream ended by the "
        "gateway's error event; others: the error's status. The gateway's 200s include the "
        "one readiness call before the run. They differ by the departures that race the "
        "response's end: a client that gives up just as the gateway sends its last byte "
        "counts as left here and as answered there; one that leaves before its request "
        "reached the gateway is not counted there at all.",
        "",
        "## Gateway RSS and open upstream responses",
        "",
        f"RSS at start {run.rss_start_mb:.1f} MB; after warm-up ({warm.done:,} requests) "
        f"{warm.rss_mb:.1f} MB; at the end {run.samples[-1].rss_mb:.1f} MB; peak "
        f"{max(s.rss_mb for s in run.samples):.1f} MB; slope after warm-up "
        f"{slope_mb_per_100k(after):+.2f} MB per 100,000 requests. Open upstream = responses "
        "the emulator is still sending; in flight = client requests not yet ended. Open "
        f"upstream at most {peak.open_upstream} (with {peak.in_flight} in flight); above the "
        f"calls in flight in {above} of {len(run.samples)} samples (a hedge has two).",
        "",
        "| s | requests done | RSS MB | open upstream | in flight |",
        "|--:|--:|--:|--:|--:|",
    ]
    step = max(1, len(run.samples) // 25)
    shown = run.samples[::step]
    if shown[-1] is not run.samples[-1]:
        shown.append(run.samples[-1])
    for s in shown:
        out.append(
            f"| {s.seconds:.0f} | {s.done:,} | {s.rss_mb:.1f} | {s.open_upstream} | {s.in_flight} |"
        )
    if run.examples:
        out += ["", "## Violations", ""]
        for outcome, examples in run.examples.items():
            out.append(f"- **{outcome}**")
            out += [f"  - `{example}`" for example in examples]
    return "\n".join(out)


def client_statuses(outcomes: Counter[str]) -> Counter[str]:
    """The client's outcomes named as the gateway's status label would name them."""
    out: Counter[str] = Counter()
    for key, n in outcomes.items():
        outcome = bare(key)
        if outcome in COMPLETE:
            out["200"] += n
        elif outcome in LEFT:
            out["client_closed"] += n
        elif outcome.startswith("error event"):
            out["cut"] += n
        elif outcome.startswith("error json"):
            out[outcome.split()[2]] += n
        else:
            out["violation"] += n
    return out
