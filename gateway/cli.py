"""The `gateway` command: serve, emulate, demo, check."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import uvicorn

from gateway.settings import ConfigError, Settings, config_path, load_settings


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
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

    emulate = commands.add_parser(
        "emulate", parents=[common], help="run the offline provider emulator"
    )
    emulate.add_argument("--host")
    emulate.add_argument("--port", type=int)
    emulate.add_argument("--latency", choices=["none", "realistic", "simulated"])
    emulate.add_argument("--virtual-clock", action="store_true", default=None)
    emulate.set_defaults(run=_emulate)

    check = commands.add_parser(
        "check", parents=[common], help="validate the configuration and exit"
    )
    check.set_defaults(run=_check)
    return parser


def _emulate(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.emulator.app import create_emulator_app

    overrides = {
        "host": args.host,
        "port": args.port,
        "latency": args.latency,
        "virtual_clock": args.virtual_clock,
    }
    emulator = settings.emulator.model_copy(
        update={key: value for key, value in overrides.items() if value is not None}
    )
    settings = settings.model_copy(update={"emulator": emulator})
    print(
        f"emulator: Anthropic API on http://{emulator.host}:{emulator.port} "
        f"(latency {emulator.latency}, virtual clock {'on' if emulator.virtual_clock else 'off'})",
        flush=True,
    )
    uvicorn.run(
        create_emulator_app(settings),
        host=emulator.host,
        port=emulator.port,
        log_level="warning",
        access_log=False,
    )
    return 0


def _check(args: argparse.Namespace, settings: Settings) -> int:
    path = config_path(args.config)
    print(f"configuration OK ({path or 'embedded defaults'})")
    return 0
