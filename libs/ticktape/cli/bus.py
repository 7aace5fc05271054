"""`ticktape creds` and `ticktape provision`: the two steps that give a NATS server ticktape does
not start (the Docker compose file's) the same authorization as `ticktape up`'s embedded one.

`ticktape creds --nats-conf FILE` writes one credentials file per role into the credentials
directory (nats.creds_dir, default <home>/creds; existing files are kept, so passwords survive a
restart) and the nats-server configuration for them (ticktape.infra.stack.embedded_config: a user
per role, no anonymous clients, max_payload, JetStream limits) to FILE, mode 0600.
`ticktape provision` then connects as admin, the only role that may create streams, and creates
or updates them (ticktape.bus.provision), waiting for the server to answer."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

from ticktape import config as cfg
from ticktape.bus import creds, permissions
from ticktape.bus.connect import connect_once
from ticktape.bus.provision import ensure_streams
from ticktape.cli.sessions import describe_error
from ticktape.infra.stack import embedded_config


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("creds", help="write the bus credentials (one file per role) and a nats-server config for them")
    p.add_argument(
        "--nats-conf",
        metavar="FILE",
        type=Path,
        help="also write the nats-server configuration (users, permissions, limits) here, mode 0600",
    )
    p.set_defaults(func=run_creds)
    p = sub.add_parser("provision", help="create or update the streams, as admin (for a server ticktape does not run)")
    p.add_argument("--wait", type=float, default=60.0, metavar="S", help="seconds to wait for the server (default 60)")
    p.set_defaults(func=run_provision)


def write_server_config(common: cfg.CommonSettings, path: Path) -> None:
    """The credentials files and, at path, the nats-server configuration that admits exactly them."""
    text = "\n".join(embedded_config(common)) + "\n"  # creates missing credentials files
    creds.ensure(creds.creds_dir(common), permissions.roles(), url=common.nats.url)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # passwords: never readable by others, not even for an instant
    path.write_text(text)


def run_creds(args: argparse.Namespace) -> int:
    try:
        common = cfg.load_common(cfg.load_raw())
        directory = creds.creds_dir(common)
        if args.nats_conf is not None:
            write_server_config(common, args.nats_conf)
        else:
            creds.ensure(directory, permissions.roles(), url=common.nats.url)
    except (cfg.ConfigError, creds.CredentialsError, OSError) as exc:
        print(f"ticktape creds: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    where = f"; nats-server config in {args.nats_conf}" if args.nats_conf is not None else ""
    print(f"ticktape creds: {len(permissions.roles())} roles in {directory}{where}")
    return 0


def run_provision(args: argparse.Namespace) -> int:
    try:
        common = cfg.load_common(cfg.load_raw())
        admin = common.nats.creds or str(creds.path_for(creds.creds_dir(common), permissions.ADMIN))
        options = creds.connect_options(admin)
        asyncio.run(_provision(common, options, args.wait))
    except (cfg.ConfigError, creds.CredentialsError) as exc:
        print(f"ticktape provision: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - unreachable server, refused credentials
        print(f"ticktape provision: {describe_error(exc)}", file=sys.stderr)
        return 2
    names = (common.nats.stream, common.nats.trades_stream, common.nats.dlq_stream)
    print(f"ticktape provision: streams ready ({', '.join(names)})")
    return 0


async def _provision(common: cfg.CommonSettings, options: dict[str, str], wait_s: float) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            nc = await connect_once(common.nats.url, connect_timeout=2, max_reconnect_attempts=0, **options)
            break
        except Exception as exc:
            if time.monotonic() >= deadline or "authorization violation" in str(exc).lower():
                raise
            await asyncio.sleep(0.5)  # the server is starting (compose starts it just before)
    try:
        await ensure_streams(nc.jetstream(), common.nats)
    finally:
        await nc.close()
