"""Renders the Grafana dashboards in grafana/dashboards/ from the panel lists below.

The JSON files are what Grafana loads (provisioning/dashboards/tollgate.yml) and what the
observability test evaluates; this script is the one place they are written. Run
`python grafana/render_dashboards.py` after editing a panel; `--check` exits 1 if a
committed JSON file differs from what the script renders.

Queries use the recording rules of deploy/prometheus/rules/recording.yml where one exists,
so a dashboard, an alert and a runbook all mean the same thing by "cache hit ratio".
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OUTPUT = Path(__file__).resolve().parent / "dashboards"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}  # provisioning/datasources/
RATE = "$__rate_interval"


@dataclass(frozen=True)
class Query:
    expr: str
    legend: str = ""
    instant: bool = False


@dataclass(frozen=True)
class Panel:
    title: str
    queries: tuple[Query, ...]
    unit: str = "short"
    kind: str = "timeseries"  # timeseries | stat | bargauge
    width: int = 12
    height: int = 8
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # merged into fieldConfig.defaults
    time_from: str | None = None  # a panel-relative time range, e.g. "now/d" (today so far)


def q(expr: str, legend: str = "", instant: bool = False) -> Query:
    return Query(" ".join(expr.split()), legend, instant)


def quantile(phi: float, histogram: str, by: str = "") -> str:
    """The phi-quantile of a histogram's observations over the panel's rate interval."""
    labels = f"{by}, le" if by else "le"
    return f"histogram_quantile({phi}, sum by ({labels}) (rate({histogram}_bucket[{RATE}])))"


def ratio_line(limit: float) -> dict[str, Any]:
    """A red horizontal line at `limit` (the alert threshold) on a 0-100% axis."""
    return {
        "min": 0,
        "max": 1,
        "custom": {"thresholdsStyle": {"mode": "line"}},
        "thresholds": {
            "mode": "absolute",
            "steps": [{"color": "transparent", "value": None}, {"color": "red", "value": limit}],
        },
    }


COST_AND_CACHE_PANELS = (
    Panel(
        "Spend today",
        (q("sum(increase(gateway_cost_usd_total[$__range]))"),),
        unit="currencyUSD",
        kind="stat",
        width=6,
        height=4,
        time_from="now/d",
    ),
    Panel(
        "Projected this month",
        (q("sum(job:gateway_cost_usd_projected_per_day:rate1h) * 30"),),
        unit="currencyUSD",
        kind="stat",
        width=6,
        height=4,
        description="The last hour's spend rate, times 24 hours, times 30 days.",
    ),
    Panel(
        "Spend rate",
        (q("sum(job:gateway_cost_usd_per_hour:rate5m)"),),
        unit="currencyUSD",
        kind="stat",
        width=6,
        height=4,
        description="Dollars per hour, over the last 5 minutes.",
    ),
    Panel(
        "Cache hit ratio",
        (q("job:gateway_cache_hit_ratio:rate5m", "{{job}}"),),
        unit="percentunit",
        kind="stat",
        width=6,
        height=4,
        description="cache_read / (input + cache_read + cache_write_5m + cache_write_1h).",
    ),
    Panel(
        "Cost by step ($/hour)",
        (q("step:gateway_cost_usd_per_hour:rate5m", "{{step}}"),),
        unit="currencyUSD",
    ),
    Panel(
        "Cost by model ($/hour)",
        (q("model:gateway_cost_usd_per_hour:rate5m", "{{model}}"),),
        unit="currencyUSD",
    ),
    Panel(
        "Cache hit ratio by step",
        (q("step:gateway_cache_hit_ratio:rate5m", "{{step}}"),),
        unit="percentunit",
        description="The red line is the GatewayCacheHitRatioLow threshold (20%).",
        options=ratio_line(0.2),
    ),
    Panel(
        "Tokens by type (per second)",
        (q(f"sum by (type) (rate(gateway_tokens_total[{RATE}]))", "{{type}}"),),
        options={"custom": {"stacking": {"mode": "normal"}, "fillOpacity": 30}},
    ),
    Panel(
        "Effective input price ($ per million input tokens)",
        (q("model:gateway_cost_usd_per_million_input_tokens:rate1h", "{{model}}"),),
        unit="currencyUSD",
        description=(
            "Spend per million input tokens sent (uncached, cache reads and writes), output "
            "included. Falls toward a tenth of the list price as the cache starts working."
        ),
    ),
    Panel(
        "Top cache-miss causes",
        (
            q(
                "topk(10, sum by (cause) (increase(gateway_cache_missed_tokens_total[$__range])))",
                "{{cause}}",
                instant=True,
            ),
        ),
        kind="bargauge",
        description="Input tokens billed at full price because of each miss cause.",
    ),
    Panel(
        "Cache misses by cause (per second)",
        (q(f"sum by (cause) (rate(gateway_cache_miss_cause_total[{RATE}]))", "{{cause}}"),),
    ),
    Panel(
        "Wasted cache writes (share of writes, 1h)",
        (q("step:gateway_cache_wasted_write_ratio:rate1h", "{{step}}"),),
        unit="percentunit",
        description="Cache-write tokens that expired unread. Alert above 50%.",
        options=ratio_line(0.5),
    ),
    Panel(
        "Rewrites applied (per second)",
        (q(f"sum by (rule) (rate(gateway_rewrites_total[{RATE}]))", "{{rule}}"),),
    ),
    Panel(
        "Requested vs served model (calls per second)",
        (
            q(
                f"sum by (requested, served) (rate(gateway_model_calls_total[{RATE}]))",
                "{{requested}} -> {{served}}",
            ),
            q(
                f'sum by (rule) (rate(gateway_rewrites_total{{rule=~"route|pin"}}[{RATE}]))',
                "model changed by {{rule}}",
            ),
        ),
        description=(
            "Calls by the model the client asked for and the one that served them (an alias "
            "resolves to its snapshot), and how many had their model changed by the gateway "
            "(route: step cascade, pin: alias to snapshot)."
        ),
    ),
)

# Canaries and the cascade: each step's models side by side on what decides a switch.
ERRORS = 'status=~"5..|429|stream_error|cut"'
CALLS_BY_STEP_MODEL = f"sum by (step, model) (rate(gateway_requests_total[{RATE}]))"
CASCADE = (
    Panel(
        "Cost per call by step and model",
        (
            q(
                f"sum by (step, model) (rate(gateway_cost_usd_total[{RATE}]))"
                f" / {CALLS_BY_STEP_MODEL}",
                "{{step}} {{model}}",
            ),
        ),
        unit="currencyUSD",
        width=8,
        description="A canary's candidate beside the step's model: same step, same traffic.",
    ),
    Panel(
        "Request duration p95 by step and model",
        (
            q(
                quantile(0.95, "gateway_request_duration_seconds", "step, model"),
                "{{step}} {{model}}",
            ),
        ),
        unit="s",
        width=8,
    ),
    Panel(
        "Error ratio by step and model",
        (
            q(
                f"(sum by (step, model) (rate(gateway_requests_total{{{ERRORS}}}[{RATE}]))"
                f" or {CALLS_BY_STEP_MODEL} * 0) / {CALLS_BY_STEP_MODEL}",
                "{{step}} {{model}}",
            ),
        ),
        unit="percentunit",
        width=8,
    ),
)

TTFT = "step:gateway_time_to_first_token_seconds"
LATENCY = (
    Panel(
        "Time to first token by step, against budget",
        (
            q(f"{TTFT}:p50_rate5m", "p50 {{step}}"),
            q(f"{TTFT}:p95_rate5m", "p95 {{step}}"),
            q(f"{TTFT}:budget and on (step) {TTFT}:p95_rate5m", "budget {{step}}"),
        ),
        unit="s",
        width=24,
        description="p95 above its step's budget for 15 minutes fires an alert.",
        options={"custom": {"lineWidth": 2}},
    ),
    Panel(
        "Request duration p50 / p95 by step",
        (
            q(quantile(0.5, "gateway_request_duration_seconds", "step"), "p50 {{step}}"),
            q(quantile(0.95, "gateway_request_duration_seconds", "step"), "p95 {{step}}"),
        ),
        unit="s",
    ),
    Panel(
        "Output tokens per second (median stream, by model)",
        (q(quantile(0.5, "gateway_output_tokens_per_second", "model"), "{{model}}"),),
    ),
    Panel(
        "Latency budget breaches (per second)",
        (
            q(
                f"sum by (step, phase) (rate(gateway_latency_budget_breaches_total[{RATE}]))",
                "{{step}} {{phase}}",
            ),
        ),
    ),
    Panel(
        "Gateway overhead p50 / p99",
        (
            q(quantile(0.5, "gateway_overhead_seconds"), "p50"),
            q(quantile(0.99, "gateway_overhead_seconds"), "p99"),
        ),
        unit="s",
        description="Time spent in the gateway itself, upstream wait excluded.",
    ),
    Panel(
        "Upstream errors by status (per second)",
        (
            q(
                f"sum by (provider, status) (rate(gateway_upstream_errors_total[{RATE}]))",
                "{{provider}} {{status}}",
            ),
        ),
    ),
    Panel(
        "Retries (per second)",
        (q(f"sum by (provider) (rate(gateway_retries_total[{RATE}]))", "{{provider}}"),),
    ),
    Panel(
        "Error ratio",
        (
            q("job:gateway_request_error_ratio:rate5m", "calls failed"),
            q("provider:gateway_upstream_error_ratio:rate5m", "upstream {{provider}}"),
        ),
        unit="percentunit",
        description="Calls failed: 5xx, 429, broken streams. Upstream: attempts per call.",
    ),
    Panel(
        "Calls by status (per second)",
        (q(f"sum by (status) (rate(gateway_requests_total[{RATE}]))", "{{status}}"),),
    ),
)

COST_AND_CACHE = COST_AND_CACHE_PANELS + CASCADE
DASHBOARDS = {
    "cost-and-cache": ("Tollgate: Cost & cache", COST_AND_CACHE),
    "latency": ("Tollgate: Latency", LATENCY),
}


def panel_json(panel: Panel, panel_id: int, x: int, y: int) -> dict[str, Any]:
    targets = [
        {
            "datasource": DATASOURCE,
            "refId": chr(ord("A") + i),
            "expr": query.expr,
            "legendFormat": query.legend,
            "instant": query.instant,
            "range": not query.instant,
        }
        for i, query in enumerate(panel.queries)
    ]
    defaults: dict[str, Any] = {"unit": panel.unit, **panel.options}
    result: dict[str, Any] = {
        "id": panel_id,
        "type": panel.kind,
        "title": panel.title,
        "description": panel.description,
        "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": panel.width, "h": panel.height},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
        "targets": targets,
    }
    if panel.kind == "bargauge":
        result["options"] = {"orientation": "horizontal", "displayMode": "basic"}
    if panel.time_from:
        result["timeFrom"] = panel.time_from
    return result


def dashboard_json(uid: str, title: str, panels: tuple[Panel, ...]) -> dict[str, Any]:
    laid_out, x, y, row_height = [], 0, 0, 0
    for panel_id, panel in enumerate(panels, start=1):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        laid_out.append(panel_json(panel, panel_id, x, y))
        x, row_height = x + panel.width, max(row_height, panel.height)
    return {
        "uid": f"tollgate-{uid}",
        "title": title,
        "tags": ["tollgate"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": laid_out,
    }


def render() -> dict[Path, str]:
    return {
        OUTPUT / f"{uid}.json": json.dumps(dashboard_json(uid, title, panels), indent=2) + "\n"
        for uid, (title, panels) in DASHBOARDS.items()
    }


def main(argv: list[str]) -> int:
    rendered = render()
    if "--check" in argv:
        stale = [p for p, text in rendered.items() if not p.exists() or p.read_text() != text]
        for path in stale:
            print(f"{path} is out of date: run python {Path(__file__).name}", file=sys.stderr)
        return 1 if stale else 0
    for path, text in rendered.items():
        path.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
