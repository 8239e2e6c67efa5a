"""The ``dryapi-gateway`` command: serve, emulator, routing check, keys."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import shutil
import signal
import sys
import tempfile
from collections.abc import Sequence
from types import FrameType
from typing import Any

import msgspec

from app.observability.logging import configure_logging
from app.routing.loader import LoadedRouting, RoutingError, load_routing
from app.settings import SettingsError, is_loopback_host, load_settings
from app.store import is_memory_url


def _fail(message: str) -> int:
    print(f"dryapi-gateway: {message}", file=sys.stderr)
    return 1


def _load(path: str) -> LoadedRouting | None:
    try:
        return load_routing(path)
    except RoutingError as exc:
        print(f"{exc.source}: invalid routing ({len(exc.problems)} problem(s)):", file=sys.stderr)
        for where, message in exc.problems:
            print(f"  {where or '<root>'}: {message}", file=sys.stderr)
        return None


# serve ---------------------------------------------------------------------------------------


def _start_local_emulator(routing: LoadedRouting, gateway_port: int) -> str:
    """Run routing.yaml's local endpoints in an emulator thread; return its /v2 base URL."""
    from app.emulator import EmulatorEndpoint, create_emulator_app
    from app.serving import ServerThread

    endpoints = {
        name: EmulatorEndpoint(handler=spec.handler, concurrency=spec.concurrency, env=dict(spec.env))
        for name, spec in routing.config.local.endpoints.items()
    }
    # Handlers fetch staged uploads from the gateway itself, which is on loopback here.
    allow = os.environ.get("MEDIA_FETCH_ALLOWLIST", "")
    os.environ["MEDIA_FETCH_ALLOWLIST"] = ",".join(filter(None, [allow, f"127.0.0.1:{gateway_port}", "127.0.0.1"]))
    server = ServerThread(create_emulator_app(endpoints, preload=True)).start()
    return f"{server.url}/v2"


def _has_memory_store() -> bool:
    try:
        import fakeredis  # noqa: F401  (the `local` extra)
    except ImportError:
        return False
    return True


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from app.serving import server_options

    os.environ["DRYAPI_HOST"] = args.host
    os.environ["DRYAPI_PORT"] = str(args.port)
    if args.routing:
        os.environ["DRYAPI_ROUTING"] = args.routing
    routing = _load(os.environ.get("DRYAPI_ROUTING", "./routing.yaml"))
    if routing is None:
        return 1
    redis_url = os.environ.get("REDIS_URL", "memory://") or "memory://"
    if is_memory_url(redis_url) and args.workers > 1:
        return _fail("REDIS_URL=memory:// keeps state in one process; use a Redis server with --workers > 1")
    if is_memory_url(redis_url) and not _has_memory_store():
        return _fail(
            "REDIS_URL=memory:// needs the in-process store: install the `local` extra "
            "(pip install 'dryapi-gateway[local]') or set REDIS_URL to a Redis server"
        )
    if not os.environ.get("DRYAPI_SIGNING_SECRET") and is_loopback_host(args.host):
        # Every worker process must sign and verify with the same secret.
        os.environ["DRYAPI_SIGNING_SECRET"] = secrets.token_hex(32)
    try:
        settings = load_settings(host=args.host)
    except SettingsError as exc:
        return _fail(str(exc))
    if args.local:
        os.environ["DRYAPI_LOCAL_UPSTREAM"] = _start_local_emulator(routing, args.port)
        print(f"dryapi-gateway: local mode, emulator at {os.environ['DRYAPI_LOCAL_UPSTREAM']}", file=sys.stderr)
    print(f"dryapi-gateway: serving on http://{args.host}:{args.port}/v1", file=sys.stderr)
    configure_logging(settings.log_format)
    metrics_dir = _metrics_dir(args.workers)
    # uvicorn re-raises SIGTERM once its graceful shutdown is done: exit 0 then, a clean stop.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.run(
            "app.main:app",
            host=args.host,
            port=args.port,
            workers=args.workers,
            access_log=False,  # the app logs requests itself; server logs would show query strings
            log_config=None,  # server loggers go through the app's structlog setup (app/observability)
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=settings.drain_s,
            **server_options(settings, from_env=True),
        )
    finally:
        if metrics_dir:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    return 0


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _metrics_dir(workers: int) -> str | None:
    """Worker processes share Prometheus values through files in a fresh directory, removed at exit."""
    if workers <= 1:
        return None
    parent = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    path = tempfile.mkdtemp(prefix="dryapi-metrics-", dir=parent if parent and os.path.isdir(parent) else None)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return path


# emulator ------------------------------------------------------------------------------------


def cmd_emulator(args: argparse.Namespace) -> int:
    import uvicorn

    from app.emulator import EmulatorEndpoint, create_emulator_app

    endpoints: dict[str, Any] = {}
    for spec in args.endpoint:
        endpoint_id, sep, target = spec.partition("=")
        if not sep or ":" not in target:
            return _fail(f"--endpoint must look like ID=module:function, got {spec!r}")
        endpoints[endpoint_id] = EmulatorEndpoint(handler=target, concurrency=args.concurrency)
    app = create_emulator_app(endpoints, api_key=os.environ.get("RUNPOD_API_KEY") or None, preload=True)
    print(f"dryapi-gateway emulator: http://{args.host}:{args.port}/v2/{{endpoint_id}}", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


# routing check -------------------------------------------------------------------------------


def cmd_routing_check(args: argparse.Namespace) -> int:
    path = args.file or os.environ.get("DRYAPI_ROUTING", "./routing.yaml")
    routing = _load(path)
    if routing is None:
        return 1
    config = routing.config
    print(f"{path}: valid (sha256 {routing.sha256[:12]})")
    for surface, surface_cfg in config.surfaces.items():
        names = ", ".join(surface_cfg.models) or "no models"
        print(f"  {surface}: mode={surface_cfg.mode} default={surface_cfg.default_model} models: {names}")
        for slug, route in surface_cfg.models.items():
            if len(route.endpoints) > 1:  # several endpoints: how the choice will weigh them
                shares = ", ".join(f"{ref.provider} (weight {ref.weight:g})" for ref in route.endpoints)
                print(f"    {slug}: endpoints {shares}")
    health = config.health
    print(f"  health: /health every {health.poll_interval_s:g}s; cooling {health.cooling_s:g}s "
          f"after {health.cooling_failures} failures in a row")
    print(f"  local endpoints: {', '.join(config.local.endpoints) or 'none'}")
    return 0


# keys ----------------------------------------------------------------------------------------


async def _with_store(action: Any) -> Any:
    from app.keys import KeyStore
    from app.store import Keys, create_redis

    settings = load_settings()
    if is_memory_url(settings.redis_url):
        raise SettingsError("keys live in Redis: set REDIS_URL to the gateway's Redis server")
    redis = create_redis(settings.redis_url)
    try:
        return await action(KeyStore(redis, Keys(settings.redis_prefix)))
    finally:
        await redis.aclose()


async def _create_key(args: argparse.Namespace) -> Any:
    from app.netguard import check_url

    settings = load_settings()
    webhook_url = args.webhook_url or ""
    if webhook_url:  # the same check as the API's: https, and no private destination
        await check_url(webhook_url, param="webhook_url", allowlist=settings.webhook_allowlist, require_https=True)
    return await _with_store(
        lambda s: s.create(args.name, tier=args.tier, admin=args.admin, webhook_url=webhook_url)
    )


async def _usage_report(args: argparse.Namespace) -> Any:
    from app import usage
    from app.store import Keys, create_redis

    settings = load_settings()
    if is_memory_url(settings.redis_url):
        raise SettingsError("usage lives in Redis: set REDIS_URL to the gateway's Redis server")
    start, end = usage.report_range(args.from_, args.to)
    redis = create_redis(settings.redis_url)
    try:
        return await usage.report(redis, Keys(settings.redis_prefix), args.id, start, end)
    finally:
        await redis.aclose()


def cmd_keys_usage(args: argparse.Namespace) -> int:
    from app import usage
    from app.errors import InvalidRequest

    try:
        body = asyncio.run(_usage_report(args))
    except (SettingsError, InvalidRequest) as exc:
        return _fail(str(exc))
    print(msgspec.json.encode(body).decode() if args.json else usage.format_report(body))
    return 0


def _micro(raw: str) -> int:
    """A USD amount on the command line, in micro-USD."""
    from app.billing.pricing import usd_to_micro

    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an amount in USD: {raw!r}") from None
    if not math.isfinite(value) or value < 0 or value > 1_000_000:
        raise argparse.ArgumentTypeError(f"an amount must be between 0 and 1000000 USD, got {raw!r}")
    return usd_to_micro(value)


async def _with_ledger(key_id: str, action: Any) -> Any:
    """``action(ledger)`` for an existing key; a key never billed starts at routing.yaml's sign-up balance."""
    from app.billing.ledger import Ledger
    from app.billing.pricing import usd_to_micro
    from app.keys import KeyStore
    from app.store import Keys, create_redis

    settings = load_settings()
    if is_memory_url(settings.redis_url):
        raise SettingsError("balances live in Redis: set REDIS_URL to the gateway's Redis server")
    routing = _load(settings.routing_path)
    if routing is None:
        raise SettingsError(f"cannot read the routing file {settings.routing_path} (its billing section)")
    initial = usd_to_micro(routing.config.billing.initial_balance_usd)
    redis = create_redis(settings.redis_url)
    try:
        keys = Keys(settings.redis_prefix)
        if await KeyStore(redis, keys).get(key_id) is None:
            raise SettingsError(f"no key with id {key_id}")
        return await action(Ledger(redis, keys, initial_micro=initial, ttl_days=settings.ledger_ttl_days))
    finally:
        await redis.aclose()


def cmd_keys_billing(args: argparse.Namespace) -> int:
    from app.billing.ledger import entry_view
    from app.billing.pricing import usd

    try:
        if args.keys_command == "topup":
            balance = asyncio.run(_with_ledger(args.id, lambda ledger: ledger.topup(args.id, args.amount,
                                                                                    note=args.note)))
            print(f"balance of {args.id}: {usd(balance):.6f} USD")
            return 0
        views = asyncio.run(_with_ledger(args.id, lambda ledger: ledger.entries(args.id, count=args.limit)))
    except (SettingsError, ValueError) as exc:
        return _fail(str(exc))
    rows = [entry_view(entry) for entry in views]
    if args.json:
        print(msgspec.json.encode(rows).decode())
        return 0
    for row in rows:
        what = " ".join(f"{name}={row[name]}" for name in ("job_id", "task", "model", "note") if name in row)
        print(f"{row['at']}  {row['kind']:<7} {row['amount']:>12.6f}  balance {row['balance']:.6f}  {what}")
    return 0


def cmd_keys(args: argparse.Namespace) -> int:
    from app.errors import InvalidRequest

    try:
        if args.keys_command == "create":
            issued = asyncio.run(_create_key(args))
            if args.balance is not None:
                asyncio.run(_with_ledger(issued.id, lambda ledger: ledger.open(issued.id, args.balance)))
            if args.json:
                print(msgspec.json.encode(issued).decode())
            else:
                print(f"id:             {issued.id}")
                print(f"key:            {issued.key}")
                print(f"webhook_secret: {issued.webhook_secret}")
                if issued.webhook_url:
                    print(f"webhook_url:    {issued.webhook_url}")
                print("Store the key and webhook secret now: they are not shown again.")
            return 0
        if args.keys_command == "list":
            records = asyncio.run(_with_store(lambda s: s.list()))
            rows = [
                {"id": r.id, "name": r.name, "tier": r.tier, "admin": r.admin, "created": r.created,
                 "webhook_url": r.webhook_url or None}
                for r in records
            ]
            if args.json:
                print(msgspec.json.encode(rows).decode())
            else:
                for row in rows:
                    print(f"{row['id']}  {row['name']}  tier={row['tier']}  admin={row['admin']}")
            return 0
        revoked = asyncio.run(_with_store(lambda s: s.revoke(args.id)))
        if not revoked:
            return _fail(f"no key with id {args.id}")
        print(f"revoked {args.id}")
        return 0
    except (SettingsError, InvalidRequest) as exc:
        return _fail(str(exc))


# parser --------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dryapi-gateway", description="OpenAI-compatible gateway to RunPod")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.add_argument("--routing", help="routing file (default $DRYAPI_ROUTING or ./routing.yaml)")
    serve.add_argument("--local", action="store_true", help="run routing.yaml's local handlers in-process")
    serve.set_defaults(func=cmd_serve)

    emulator = commands.add_parser("emulator", help="run a RunPod-compatible serverless emulator")
    emulator.add_argument("--host", default="127.0.0.1")
    emulator.add_argument("--port", type=int, default=8001)
    emulator.add_argument("--endpoint", action="append", required=True, metavar="ID=module:function")
    emulator.add_argument("--concurrency", type=int, default=1, help="jobs each endpoint runs at once")
    emulator.set_defaults(func=cmd_emulator)

    routing = commands.add_parser("routing", help="routing.yaml tools")
    routing_commands = routing.add_subparsers(dest="routing_command", required=True)
    check = routing_commands.add_parser("check", help="validate a routing file")
    check.add_argument("file", nargs="?")
    check.set_defaults(func=cmd_routing_check)

    keys = commands.add_parser("keys", help="manage API keys")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = keys_commands.add_parser("create", help="issue a key (shown once)")
    create.add_argument("--name", required=True)
    create.add_argument("--tier", default="default")
    create.add_argument("--admin", action="store_true")
    create.add_argument("--webhook-url", help="account-level webhook for every async job that names none (https)")
    create.add_argument("--json", action="store_true")
    create.add_argument("--balance", type=_micro, metavar="USD", help="opening balance (default: the sign-up one)")
    listing = keys_commands.add_parser("list", help="list keys (never the keys themselves)")
    listing.add_argument("--json", action="store_true")
    revoke = keys_commands.add_parser("revoke", help="revoke a key")
    revoke.add_argument("id")
    for sub in (create, listing, revoke):
        sub.set_defaults(func=cmd_keys)
    usage = keys_commands.add_parser("usage", help="a key's usage per UTC day and surface")
    usage.add_argument("id")
    usage.add_argument("--from", dest="from_", metavar="YYYY-MM-DD", help="first UTC day (default today)")
    usage.add_argument("--to", metavar="YYYY-MM-DD", help="last UTC day (default today)")
    usage.add_argument("--json", action="store_true")
    usage.set_defaults(func=cmd_keys_usage)
    topup = keys_commands.add_parser("topup", help="add USD to a key's balance")
    topup.add_argument("id")
    topup.add_argument("amount", type=_micro, metavar="USD")
    topup.add_argument("--note", help="kept with the ledger entry (an invoice number, say)")
    ledger = keys_commands.add_parser("ledger", help="a key's holds, settlements, refunds and top-ups")
    ledger.add_argument("id")
    ledger.add_argument("--limit", type=int, default=1000, help="newest entries to show")
    ledger.add_argument("--json", action="store_true")
    for sub in (topup, ledger):
        sub.set_defaults(func=cmd_keys_billing)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
