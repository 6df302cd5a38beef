"""What the benchmarks and the integration tests share: real servers on loopback ports.

- ports: `free_port`, `HOST`
- process: run a command until a block ends (`started`, `wait_ready`), pin it to a core,
  read its CPU and memory from /proc
- servers: `gateway emulate` / `gateway serve` as the tests run them (`emulator`, `gateway`,
  `gateway_process`, `server_process`, `metric`)
- redis_server: a redis-server of our own (`RedisServer`, `redis_server`)
- proxies: the pinned servers a benchmark measures (emulator, gateway, do-nothing proxies)
- litellm: LiteLLM's proxy, optional; checkout: another commit's gateway tree
- load: wrk and a raw-socket probe; stats: `percentile`; machine: a result's header;
  progress: `log` to stderr

Bench scripts run as `.venv/bin/python bench/x.py` import it as `harness` (their folder is on
sys.path); the tests import it as `bench.harness` (pytest puts the repository root on it).
"""

from .ports import HOST, free_port
from .process import rss_kib, rss_mb, started, wait_ready
from .redis_server import REDIS_SERVER, RedisServer, redis_server
from .servers import emulator, gateway, gateway_process, metric, server_process

__all__ = [
    "HOST",
    "REDIS_SERVER",
    "RedisServer",
    "emulator",
    "free_port",
    "gateway",
    "gateway_process",
    "metric",
    "redis_server",
    "rss_kib",
    "rss_mb",
    "server_process",
    "started",
    "wait_ready",
]
