"""`ticktape strategies list | show | add | pause | resume | retire`: the managed strategies.

They live in PostgreSQL's `strategies` table (ticktape.strategies_table) and every change is also
published, as the operator, as a StrategyChanged event on strategies.<id>; the running signal
service applies it on the next bar, without a restart (services/signal/managed.py). `add` first
asks the signal core of this configuration whether it could run the strategy, so a bad kind,
params (named by key path, e.g. params.fast) or timeframe is refused before anything is stored.

Exit codes: 0 done; 1 refused (bad input, unknown strategy, a change its status does not allow);
2 cannot reach PostgreSQL or NATS; 78 invalid configuration."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec
import nats.errors

from ticktape import config as cfg
from ticktape import strategies_table as table
from ticktape import subjects
from ticktape.bus.connect import connect_command
from ticktape.bus.creds import CredentialsError
from ticktape.bus.permissions import OPERATOR
from ticktape.bus.publisher import msg_headers
from ticktape.cli.audit import Unavailable, database_options, resolve
from ticktape.cli.sessions import add_creds_arg, bus_creds, describe_error
from ticktape.events import StrategyChanged
from ticktape.events.codec import encode

EXIT_OK, EXIT_REFUSED, EXIT_UNAVAILABLE = 0, 1, 2
NAME = "ticktape strategies"
CHANGES = {
    "pause": "stop signalling (it stays warm; what it last signalled stays the target)",
    "resume": "signal again (the next bar signals its target if it differs from the last signalled)",
    "retire": "stop it for good",
}


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("strategies", help="list, show, add, pause, resume or retire managed strategies")
    commands = p.add_subparsers(dest="strategies_command", required=True)
    ls = commands.add_parser("list", help="every managed strategy")
    database_options(ls)
    ls.set_defaults(func=run_list)
    show = commands.add_parser("show", help="one managed strategy")
    show.add_argument("id")
    database_options(show)
    show.set_defaults(func=run_show)
    add = commands.add_parser("add", help="add a strategy (checked like a config entry, then warmed up from history)")
    add.add_argument("id", help="its id and name: a subject token (letters, digits, _ -)")
    add.add_argument("--kind", required=True, help="a built-in kind, an installed one, or module:Class")
    add.add_argument("--params", default="{}", help="its parameters as a JSON object (default: {})")
    add.add_argument("--venue", default="*", help="venue selector (fnmatch; default: *)")
    add.add_argument("--symbols", default="*", help="comma-separated symbol selectors (fnmatch; default: *)")
    add.add_argument("--timeframes", default="", help="comma-separated timeframes (default: signal.timeframe)")
    add.add_argument(
        "--account",
        default="",
        help="the account that trades it, alone (default: the accounts whose strategies list it or '*')",
    )
    add.add_argument("--paused", action="store_true", help="add it paused (warmed up, signalling nothing)")
    database_options(add)
    _bus_args(add)
    add.set_defaults(func=run_add)
    for action, help_text in CHANGES.items():
        c = commands.add_parser(action, help=help_text)
        c.add_argument("id")
        database_options(c)
        _bus_args(c)
        c.set_defaults(func=run_change, action=action)


def _bus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nats", metavar="URL", help="NATS server (default: nats.url of the config, TICKTAPE_NATS_URL)")
    add_creds_arg(p, OPERATOR)


def run_list(args: argparse.Namespace) -> int:
    return _run(args, lambda conn, _raw: _print_rows(args, conn, None))


def run_show(args: argparse.Namespace) -> int:
    return _run(args, lambda conn, _raw: _print_rows(args, conn, args.id))


def run_add(args: argparse.Namespace) -> int:
    try:
        params = json.loads(args.params)
    except json.JSONDecodeError as exc:
        return _refused(f"params: not JSON ({exc})")
    if not isinstance(params, dict):
        return _refused(f"params: must be a JSON object (got {type(params).__name__})")
    new = {
        "kind": args.kind,
        "params": params,
        "venue": args.venue,
        "symbols": _split(args.symbols),
        "timeframes": _split(args.timeframes),
        "account": args.account,
        "status": "paused" if args.paused else "live",
    }
    return _run(args, lambda conn, raw: _change(args, conn, raw, "add", new))


def run_change(args: argparse.Namespace) -> int:
    return _run(args, lambda conn, raw: _change(args, conn, raw, args.action, None))


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _refused(message: str) -> int:
    print(f"{NAME}: {message}", file=sys.stderr)
    return EXIT_REFUSED


def _run(args: argparse.Namespace, body: Callable[[Any, dict[str, Any]], Any]) -> int:
    if args.config:
        os.environ["TICKTAPE_CONFIG"] = str(Path(args.config).resolve())  # this process's commands read it
    try:
        dsn, _ = resolve(args)
        raw = cfg.load_raw()
        return int(asyncio.run(_with_connection(dsn, lambda conn: body(conn, raw))))
    except (cfg.ConfigError, CredentialsError) as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    except table.StrategyError as exc:
        return _refused(f"{getattr(args, 'id', '')}: {exc}".lstrip(": "))
    except Unavailable as exc:
        print(f"{NAME}: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


async def _with_connection(dsn: str, body: Callable[[Any], Any]) -> int:
    import psycopg

    from ticktape.redact import redact_text

    try:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        raise Unavailable(f"cannot connect to PostgreSQL: {redact_text(str(exc).strip())}") from None
    try:
        await table.apply_migrations(conn)
        return int(await body(conn))
    except psycopg.Error as exc:  # the server went away or refused mid-change: the transaction rolled back
        raise Unavailable(f"PostgreSQL failed ({redact_text(str(exc).strip())}); nothing changed") from None
    finally:
        await conn.close()


async def _print_rows(args: argparse.Namespace, conn: Any, strategy_id: str | None) -> int:
    found = await table.rows(conn, strategy_id)
    if strategy_id is not None and not found:
        raise table.UnknownStrategy("no such strategy")
    if args.json:
        body = found[0] if strategy_id is not None else found
        print(msgspec.json.encode(body).decode())
        return EXIT_OK
    if strategy_id is not None:
        for key, value in msgspec.structs.asdict(found[0]).items():
            print(f"{key:<11} {json.dumps(value) if isinstance(value, dict | tuple) else value}")
        return EXIT_OK
    head = ("id", "kind", "status", "version", "venue", "symbols", "timeframes")
    print(f"{head[0]:<24} {head[1]:<20} {head[2]:<8} {head[3]:>7}  {head[4]:<14} {head[5]:<20} {head[6]:<12} account")
    for r in found:
        print(
            f"{r.id:<24} {r.kind:<20} {r.status:<8} {r.version:>7}  {r.venue:<14} {','.join(r.symbols):<20} "
            f"{','.join(r.timeframes) or '-':<12} {r.account or '-'}"
        )
    return EXIT_OK


async def _change(
    args: argparse.Namespace, conn: Any, raw: dict[str, Any], action: Any, new: dict[str, Any] | None
) -> int:
    common = cfg.load_common(raw)
    url = args.nats or common.nats.url
    creds = bus_creds(args, OPERATOR)
    check = table.checker(raw, common) if action == "add" else None
    ts_ns = time.time_ns()
    if check is not None and new is not None:  # refused before connecting, as before storing
        check(table.change_event(None, "add", ts_ns, new={**new, "id": args.id}))
    try:
        nc, errors = await connect_command(url, "ticktape-operator", creds)
    except Exception as exc:  # noqa: BLE001 - unreachable server or refused credentials
        raise Unavailable(describe_error(exc)) from None
    seq = 0

    async def publish(event: StrategyChanged) -> None:
        nonlocal seq
        try:
            ack = await nc.jetstream(timeout=5).publish(
                subjects.for_event(event), encode(event), headers=msg_headers(event)
            )
        except nats.errors.TimeoutError:
            reason = f"the server refused it: {errors[-1]}" if errors else "no answer from JetStream"
            raise Unavailable(f"publishing {subjects.for_event(event)} failed ({reason}); nothing changed") from None
        except nats.errors.Error as exc:
            raise Unavailable(f"publishing failed ({describe_error(exc)}); nothing changed") from None
        seq = ack.seq

    try:
        event = await table.apply(conn, args.id, action, ts_ns, publish, new=new, check=check)
    finally:
        await nc.close()
    if args.json:
        (row,) = await table.rows(conn, args.id)
        print(msgspec.json.encode({"strategy": row, "event_id": event.event_id, "stream_seq": seq}).decode())
    else:
        print(
            f"{NAME}: {event.strategy} {event.action} -> {event.status} (version {event.revision}; "
            f"{subjects.for_event(event)} event {event.event_id}, stream seq {seq})"
        )
    return EXIT_OK
