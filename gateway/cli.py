"""The `gateway` command: serve, emulate, demo, check, keys."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from pydantic import BaseModel

from gateway.app import create_app
from gateway.cascade.lifecycle import Lifecycle
from gateway.cascade.table import RoutingTable
from gateway.catalog import ModelCatalog
from gateway.keys_command import add_parser as add_keys_parser
from gateway.server.edge import Edge
from gateway.server.heap import freeze_startup_heap
from gateway.server.protocol import edge_protocol
from gateway.settings import ConfigError, Settings, config_path, load_settings

CONFIG_ENV = "GATEWAY_CONFIG"
QUIET: dict[str, Any] = {"log_level": "warning", "access_log": False}
SectionT = TypeVar("SectionT", bound=BaseModel)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.config is not None:
        os.environ[CONFIG_ENV] = str(args.config)  # for worker processes, which re-load it
    try:
        settings = load_settings(args.config)
    except ConfigError as error:
        print(f"gateway: invalid configuration\n{error}", file=sys.stderr)
        return 2
    return int(args.run(args, settings))


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config", type=Path, help="YAML config (default: ./config/gateway.yaml if present)"
    )
    parser = argparse.ArgumentParser(prog="gateway", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the gateway")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int)
    serve.set_defaults(run=_serve)

    emulate = commands.add_parser(
        "emulate", parents=[common], help="run the offline provider emulator"
    )
    emulate.add_argument("--host")
    emulate.add_argument("--port", type=int)
    emulate.add_argument("--latency", choices=["none", "realistic", "simulated"])
    emulate.add_argument("--virtual-clock", action="store_true", default=None)
    emulate.add_argument("--strict-models", action="store_true", default=None)
    emulate.set_defaults(run=_emulate)

    demo = commands.add_parser(
        "demo", parents=[common], help="emulator + gateway, and a sample session through both"
    )
    demo.set_defaults(run=_demo)

    check = commands.add_parser(
        "check", parents=[common], help="validate the configuration and exit"
    )
    check.set_defaults(run=_check)
    add_keys_parser(commands, common)
    return parser


def _overridden(section: SectionT, args: argparse.Namespace, *names: str) -> SectionT:
    """A settings section with the command-line flags that were given laid over it."""
    given = {name: getattr(args, name) for name in names if getattr(args, name) is not None}
    return section.model_copy(update=given)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    server = _overridden(settings.server, args, "host", "port", "workers")
    settings = settings.model_copy(update={"server": server})
    emulator = _start_emulator(args.config) if emulator_wanted(settings) else None
    print(
        f"gateway: listening on http://{server.host}:{server.port}\n"
        f'  anthropic SDK: anthropic.Anthropic(base_url="http://{server.host}:{server.port}")\n'
        f"  upstream: anthropic {settings.providers.anthropic.base_url}"
        + (" (the emulator, started with it)" if emulator else ""),
        flush=True,
    )
    # Upstream's date and server headers pass through; uvicorn must not add its own.
    options = {**QUIET, "host": server.host, "port": server.port}
    options |= {"server_header": False, "date_header": False}
    # uvicorn's proxy headers, in front of the FastAPI app only (Edge.behind_proxies).
    options["proxy_headers"] = False
    # SIGTERM: stop accepting, let in-flight streams finish up to the grace, then exit.
    options |= {"timeout_graceful_shutdown": server.shutdown_grace_s}
    # The client edge's limits (docs/limits.md): head size and time, the connection cap in
    # the protocol; idle connections through uvicorn's keep-alive timer, which the protocol
    # also arms for a new connection; the body's size and time in server/intake.py.
    options["http"] = edge_protocol(
        server.max_header_bytes,
        server.max_headers,
        server.head_timeout_s,
        server.max_connections,
        server.linger_s,
        server.linger_max_bytes,
    )
    options["timeout_keep_alive"] = server.idle_timeout_s
    # uvicorn re-raises the SIGTERM it caught once it has drained: that is a clean exit (0).
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        if server.workers > 1:
            if settings.state.redis_url is None or not settings.state.redis_url.get_secret_value():
                print(
                    "gateway: no state.redis_url: each worker keeps its own budgets, rate"
                    " limits and prefix registry",
                    file=sys.stderr,
                )
            # Each worker builds its own app from the same config file and environment, and
            # writes its metrics where every worker's /metrics reads them all (the sum).
            with tempfile.TemporaryDirectory(prefix="tollgate-metrics-") as metrics_dir:
                os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
                target = "gateway.cli:app_from_environment"
                uvicorn.run(target, factory=True, workers=server.workers, **options)
        else:
            app = create_app(settings)
            app.behind_proxies(forwarded_allow_ips())
            freeze_startup_heap()
            uvicorn.run(app, **options)
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(timeout=10)
    return 0


def emulator_wanted(settings: Settings) -> bool:
    """`serve` starts the emulator only if asked to and a provider's base_url points at it."""
    if not settings.server.start_emulator:
        return False
    emulator = settings.emulator
    address = f"http://{emulator.host}:{emulator.port}"
    providers = (settings.providers.anthropic, settings.providers.openai)
    return any(provider.base_url.rstrip("/") == address for provider in providers)


def app_from_environment() -> Edge:
    """The app factory for `--workers N`: uvicorn imports it in each worker process."""
    app = create_app(load_settings(Path(p) if (p := os.environ.get(CONFIG_ENV)) else None))
    app.behind_proxies(forwarded_allow_ips())
    freeze_startup_heap()
    return app


def forwarded_allow_ips() -> str:
    """The proxies uvicorn trusts by default (its Config's `forwarded_allow_ips`)."""
    return os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")


def _start_emulator(config: Path | None) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "gateway", "emulate"]
    if config is not None:
        command += ["--config", str(config)]
    return subprocess.Popen(command)


def _emulate(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.emulator.app import create_emulator_app

    emulator = _overridden(
        settings.emulator, args, "host", "port", "latency", "virtual_clock", "strict_models"
    )
    settings = settings.model_copy(update={"emulator": emulator})
    print(
        f"emulator: Anthropic API on http://{emulator.host}:{emulator.port} "
        f"(latency {emulator.latency}, virtual clock {'on' if emulator.virtual_clock else 'off'})",
        flush=True,
    )
    uvicorn.run(create_emulator_app(settings), host=emulator.host, port=emulator.port, **QUIET)
    return 0


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.demo import run_demo

    return run_demo(settings)


def _check(args: argparse.Namespace, settings: Settings) -> int:
    path = config_path(args.config)
    today = dt.datetime.now(dt.UTC).date()
    for warning in [*retirement_warnings(settings, today), *deprecation_warnings(settings)]:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"configuration OK ({path or 'embedded defaults'})")
    return 0


DEPRECATED_REWRITE = {
    "tool_forms_max_entries": "learned_state_max_bytes",
    "registry_max_entries": "learned_state_max_bytes",
}


def deprecation_warnings(settings: Settings) -> list[str]:
    """Settings still accepted but ignored, and what replaced them."""
    return [
        f"rewrite.{name} is deprecated and ignored: rewrite.{instead} bounds it in bytes"
        for name, instead in DEPRECATED_REWRITE.items()
        if name in settings.rewrite.model_fields_set
    ]


def retirement_warnings(settings: Settings, today: dt.date) -> list[str]:
    """Config that points at a model retiring within the warning window (or retired)."""
    catalog = ModelCatalog.load(settings.models)
    lifecycle = Lifecycle(catalog)
    window = settings.routing.retirement_window_days
    warnings = []
    for where, model in RoutingTable(settings.routing, catalog).configured_models():
        left = lifecycle.retiring_within(model, today, window)
        if left is not None:
            when = f"retired {-left} days ago" if left <= 0 else f"retires in {left} days"
            warnings.append(f"{where}: {model} {when}; pin a current model")
    return warnings
