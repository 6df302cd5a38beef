"""A real Prometheus (the Debian package's binary) on a loopback port, and its query API.

Used by test_observability.py to scrape a real `gateway serve` with the repo's rules, and
by grafana/plot_dashboards.py to draw the dashboards' queries.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench.harness import free_port, server_process

PROMETHEUS = shutil.which("prometheus")
PROMTOOL = shutil.which("promtool")
MISSING = "needs `prometheus` and `promtool` (Debian package prometheus; .ci/run installs it)"


class QueryError(Exception):
    pass


class PrometheusAPI:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url

    def _get(self, path: str, **params: str) -> Any:
        response = httpx.get(self.base_url + path, params=params, timeout=10)
        body = response.json()
        if body.get("status") != "success":
            raise QueryError(f"{params.get('query', path)}: {body.get('error', body)}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result: [{"metric": {...}, "value": [t, "v"]}, ...]."""
        data = self._get("/api/v1/query", query=expr)
        result: list[dict[str, Any]] = data["result"]
        return result if data["resultType"] != "scalar" else [{"metric": {}, "value": result}]

    def query_range(self, expr: str, start: float, end: float, step: float) -> Any:
        return self._get(
            "/api/v1/query_range", query=expr, start=str(start), end=str(end), step=str(step)
        )["result"]

    def wait_for(self, expr: str, timeout: float = 60) -> list[dict[str, Any]]:
        """Polls until `expr` returns data; its result."""
        deadline = time.monotonic() + timeout
        while not (result := self.query(expr)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no data for {expr} after {timeout} s")
            time.sleep(0.2)
        return result


@contextmanager
def prometheus(
    targets: Sequence[str], rule_files: Sequence[Path], interval: str = "1s"
) -> Iterator[PrometheusAPI]:
    """Prometheus scraping `targets` (host:port) as job "gateway", evaluating `rule_files`."""
    assert PROMETHEUS, MISSING
    with tempfile.TemporaryDirectory(prefix="prometheus-") as tmp:
        config = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(path) for path in rule_files],
            "scrape_configs": [
                {"job_name": "gateway", "static_configs": [{"targets": list(targets)}]}
            ],
        }
        config_path = Path(tmp, "prometheus.yml")
        config_path.write_text(yaml.safe_dump(config))
        port = free_port()
        command = [
            PROMETHEUS,
            f"--config.file={config_path}",
            f"--storage.tsdb.path={tmp}/data",
            f"--web.listen-address=127.0.0.1:{port}",
        ]
        with server_process(command, f"http://127.0.0.1:{port}", "/-/ready") as base_url:
            yield PrometheusAPI(base_url)
