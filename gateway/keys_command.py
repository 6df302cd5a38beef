"""`gateway keys create|list|revoke`: gateway keys in the store `gateway serve` uses.

With `state.redis_url` that is Redis, shared by every replica at once. Without it, the
keys file (`state.keys_file`), which a single-process gateway re-reads within a second.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

from gateway.settings import Settings
from gateway.state.keys import NANO, GatewayKey, KeyExists, digest, new_secret
from gateway.state.stores import State, open_state


def add_parser(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    keys = commands.add_parser("keys", help="create, list and revoke gateway keys")
    actions = keys.add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser("create", parents=[common], help="create a key; prints it last")
    create.add_argument("--name", required=True)
    create.add_argument("--team", default="")
    create.add_argument("--daily-budget-usd", type=float)
    create.add_argument("--monthly-budget-usd", type=float)
    create.add_argument("--rpm", type=int, help="requests per minute")
    create.add_argument("--tpm", type=int, help="tokens per minute (cache reads excluded)")
    create.add_argument("--models", nargs="*", default=[], help="allowed models (globs)")
    create.add_argument("--steps", nargs="*", default=[], help="allowed x-gateway-step labels")
    create.add_argument(
        "--provider-key-env",
        help="environment variable holding its provider key: VAR (its provider told by the"
        " key, sk-ant-… for Anthropic), or anthropic=VAR,openai=VAR2",
    )
    create.add_argument("--on-outage", choices=["fail_open", "fail_closed"])
    create.set_defaults(run=_create)
    listing = actions.add_parser("list", parents=[common], help="keys, limits and spend")
    listing.set_defaults(run=_list)
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a key by name")
    revoke.add_argument("name")
    revoke.set_defaults(run=_revoke)


def _open(settings: Settings) -> State:
    # A CLI call may wait longer than a request would: it is one person waiting, once.
    state_settings = settings.state.model_copy(update={"timeout_ms": 5000})
    state = open_state(state_settings)
    if state.client is None:
        print(
            f"gateway: no state.redis_url: keys are kept in {settings.state.keys_file}, which"
            " only a single-process gateway started here reads (per process budgets and"
            " rate limits); set state.redis_url to share them between workers and replicas.",
            file=sys.stderr,
        )
    return state


def _create(args: argparse.Namespace, settings: Settings) -> int:
    secret = new_secret()
    key = GatewayKey(
        name=args.name,
        digest=digest(secret),
        team=args.team,
        daily_budget_usd=args.daily_budget_usd,
        monthly_budget_usd=args.monthly_budget_usd,
        rpm=args.rpm,
        tpm=args.tpm,
        models=tuple(args.models),
        steps=tuple(args.steps),
        provider_key_env=args.provider_key_env,
        on_outage=args.on_outage,
        created_at=time.time(),
    )

    async def run(state: State) -> None:
        await state.keys.create(key)

    try:
        _run(settings, run)
    except KeyExists:
        print(f"gateway: a key named {args.name!r} exists; revoke it first", file=sys.stderr)
        return 1
    print(f"created gateway key {args.name!r}; it is shown once, keep it now:")
    print(secret)
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    rows: list[tuple[GatewayKey, tuple[int, int, int, int] | None]] = []

    async def run(state: State) -> None:
        for key in await state.keys.list():
            # In memory, spend lives in the serving process: this one cannot see it.
            spent = await state.ledger.spent(key, time.time()) if state.client else None
            rows.append((key, spent))

    _run(settings, run)
    print(
        "name\tteam\tspent_today_usd\tdaily_budget_usd\tspent_month_usd\tmonthly_budget_usd"
        "\trpm\ttpm"
    )
    for key, spent in rows:
        today, month = (f"{s / NANO:.6f}" for s in spent[:2]) if spent else ("-", "-")
        cells = [
            key.name, key.team or "-", today, _or_dash(key.daily_budget_usd),
            month, _or_dash(key.monthly_budget_usd), _or_dash(key.rpm), _or_dash(key.tpm),
        ]  # fmt: skip
        print("\t".join(cells))
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    revoked: list[bool] = []

    async def run(state: State) -> None:
        revoked.append(await state.keys.revoke(args.name))

    _run(settings, run)
    if not revoked[0]:
        print(f"gateway: no key named {args.name!r}", file=sys.stderr)
        return 1
    print(f"revoked gateway key {args.name!r}")
    return 0


def _run(settings: Settings, work: Callable[[State], Awaitable[None]]) -> None:
    async def main() -> None:
        state = _open(settings)
        try:
            await work(state)
        finally:
            await state.aclose()

    asyncio.run(main())


def _or_dash(value: float | int | None) -> str:
    return "-" if value is None else str(value)
