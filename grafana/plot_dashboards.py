"""Draws each dashboard in grafana/dashboards/ with matplotlib, from a live Prometheus.

Grafana is not needed: every panel's queries are run through Prometheus's HTTP API over
the last minutes and drawn where the panel sits on the dashboard's grid, so the picture
shows exactly what the JSON asks Grafana for. Output: grafana/screenshots/<dashboard>.png.

    python grafana/plot_dashboards.py --prometheus http://localhost:9090 --minutes 60
    python grafana/plot_dashboards.py --stack 240   # what made the committed pictures

`--stack SECONDS` starts the emulator (realistic latency), `gateway serve` and a
Prometheus with the repo's rules (the integration tests' helpers), drives the test
traffic (tests/integration/agent_traffic.py) for that long, then draws. Needs matplotlib
(`.venv/bin/pip install matplotlib`); the test suite does not.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import anthropic
import httpx
import matplotlib.pyplot as plt  # with no display, matplotlib draws with Agg
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
LEGEND_LABEL = re.compile(r"\{\{\s*(\w+)\s*\}\}")


class Prometheus:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")

    def get(self, path: str, **params: Any) -> Any:
        body = httpx.get(self.base_url + path, params=params, timeout=30).json()
        if body["status"] != "success":
            raise RuntimeError(f"{params.get('query')}: {body.get('error')}")
        return body["data"]["result"]


def legend(template: str, labels: dict[str, str]) -> str:
    text = LEGEND_LABEL.sub(lambda m: labels.get(m.group(1), ""), template).strip()
    return text or ",".join(f"{k}={v}" for k, v in labels.items() if k != "__name__") or "value"


def formatter(unit: str) -> Any:
    if unit == "percentunit":
        return FuncFormatter(lambda v, _: f"{v * 100:.0f}%")
    if unit == "currencyUSD":
        return FuncFormatter(lambda v, _: f"${v:,.4g}")
    if unit == "s":
        return FuncFormatter(lambda v, _: f"{v:.3g} s")
    return FuncFormatter(lambda v, _: f"{v:,.4g}")


def draw_stat(ax: Axes, panel: dict[str, Any], prom: Prometheus, window: str) -> None:
    unit = panel["fieldConfig"]["defaults"].get("unit", "short")
    expr = panel["targets"][0]["expr"].replace("$__range", window)
    result = prom.get("/api/v1/query", query=expr)
    value = float(result[0]["value"][1]) if result else float("nan")
    ax.text(0.5, 0.42, formatter(unit)(value, None), ha="center", va="center", fontsize=22)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_bars(ax: Axes, panel: dict[str, Any], prom: Prometheus, window: str) -> None:
    target = panel["targets"][0]
    result = prom.get("/api/v1/query", query=target["expr"].replace("$__range", window))
    bars = sorted(
        (float(s["value"][1]), legend(target["legendFormat"], s["metric"])) for s in result
    )
    ax.barh([name for _, name in bars], [value for value, _ in bars], color="tab:orange")
    ax.xaxis.set_major_formatter(formatter("short"))


def draw_series(
    ax: Axes, panel: dict[str, Any], prom: Prometheus, start: float, end: float, rate: str
) -> None:
    defaults = panel["fieldConfig"]["defaults"]
    step = max(1.0, (end - start) / 200)
    stacked = defaults.get("custom", {}).get("stacking", {}).get("mode") == "normal"
    stack_base: dict[float, float] = {}
    for target in panel["targets"]:
        expr = target["expr"].replace("$__rate_interval", rate)
        dashed = target["legendFormat"].startswith("budget")
        for series in prom.get("/api/v1/query_range", query=expr, start=start, end=end, step=step):
            times = [(float(t) - end) / 60 for t, _ in series["values"]]
            values = [float(v) for _, v in series["values"]]
            label = legend(target["legendFormat"], series["metric"])
            if stacked:
                base = [stack_base.get(t, 0.0) for t in times]
                top = [b + v for b, v in zip(base, values, strict=True)]
                ax.fill_between(times, base, top, alpha=0.35, label=label)
                stack_base.update(zip(times, top, strict=True))
            else:
                ax.plot(times, values, label=label, linestyle="--" if dashed else "-")
    for step_ in defaults.get("thresholds", {}).get("steps", []):
        if step_["value"] is not None:
            ax.axhline(step_["value"], color="red", linewidth=1.2)
    if "max" in defaults:
        ax.set_ylim(defaults.get("min", 0), defaults["max"] * 1.05)
    ax.yaxis.set_major_formatter(formatter(defaults.get("unit", "short")))
    ax.set_xlabel("minutes ago", fontsize=7)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=6, loc="upper left", ncol=2)


def plot(dashboard: Path, prom: Prometheus, minutes: float, rate: str) -> Path:
    spec = json.loads(dashboard.read_text())
    panels = spec["panels"]
    rows = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    figure = plt.figure(figsize=(18, rows * 0.42))
    grid = figure.add_gridspec(rows, 24, hspace=4, wspace=2, top=0.95, bottom=0.03)
    end = time.time()
    start = end - minutes * 60
    window = f"{int(minutes * 60)}s"
    for panel in panels:
        pos = panel["gridPos"]
        ax = figure.add_subplot(
            grid[pos["y"] : pos["y"] + pos["h"], pos["x"] : pos["x"] + pos["w"]]
        )
        ax.set_title(panel["title"], fontsize=9, loc="left", fontweight="bold")
        ax.tick_params(labelsize=7)
        if panel["type"] == "stat":
            draw_stat(ax, panel, prom, window)
        elif panel["type"] == "bargauge":
            draw_bars(ax, panel, prom, window)
        else:
            draw_series(ax, panel, prom, start, end, rate)
    figure.suptitle(f"{spec['title']} (last {minutes:.0f} minutes)", x=0.01, y=0.99, ha="left")
    output = HERE / "screenshots" / f"{dashboard.stem}.png"
    output.parent.mkdir(exist_ok=True)
    figure.savefig(output, dpi=90, bbox_inches="tight")
    plt.close(figure)
    return output


def plot_all(prom: Prometheus, minutes: float, rate: str) -> None:
    for dashboard in sorted((HERE / "dashboards").glob("*.json")):
        print(plot(dashboard, prom, minutes, rate))


def with_stack(seconds: float) -> None:
    sys.path.insert(0, str(ROOT))  # the integration tests' server helpers
    from tests.integration.agent_traffic import one_round
    from tests.integration.prometheus import prometheus
    from tests.integration.servers import emulator, gateway

    rules = sorted((ROOT / "deploy/prometheus/rules").glob("*.yml"))
    key = f"sk-ant-demo-{uuid.uuid4().hex}"
    with (
        emulator("--latency", "realistic") as upstream,
        gateway(upstream) as url,
        prometheus([url.removeprefix("http://")], rules) as api,
        anthropic.Anthropic(base_url=url, api_key=key, max_retries=0) as client,
    ):
        api.wait_for('up{job="gateway"} == 1')
        began = time.monotonic()
        round_no = 0
        while time.monotonic() - began < seconds:
            one_round(client, round_no, tag=key[-8:], faults=round_no % 5 == 4)
            round_no += 1
        time.sleep(3)
        plot_all(Prometheus(api.base_url), minutes=(time.monotonic() - began) / 60, rate="30s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prometheus", default="http://localhost:9090")
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--rate-interval", default="1m", help="what $__rate_interval becomes")
    parser.add_argument("--stack", type=float, metavar="SECONDS", help="run a stack and traffic")
    args = parser.parse_args()
    if args.stack:
        with_stack(args.stack)
    else:
        plot_all(Prometheus(args.prometheus), args.minutes, args.rate_interval)


if __name__ == "__main__":
    main()
