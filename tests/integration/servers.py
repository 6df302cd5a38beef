"""The emulator and the gateway as the integration tests run them: each a subprocess of the
CLI, started and stopped by the harness the benchmarks share (bench/harness/servers.py)."""

from bench.harness.servers import emulator, gateway, metric

__all__ = ["emulator", "gateway", "metric"]
