"""`ticktape audit verify [SESSION]` and `ticktape audit trace EVENT_ID`: check the audit log's
hash chain, and walk an order or fill back to the bar that caused it.

Exit codes: 0 ok / found; 1 the chain is broken / the event is not in the log; 2 cannot check
(no database, no audit tables, unknown session); 78 invalid configuration."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from ticktape import config as cfg
from ticktape.redact import redact_text

EXIT_OK, EXIT_FAILED, EXIT_UNAVAILABLE = 0, 1, 2


class _Unavailable(Exception):
    pass


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="verify the audit log's hash chain; trace an event's causes")
    commands = p.add_subparsers(dest="audit_command", required=True)
    v = commands.add_parser(
        "verify",
        help="recompute the hash chain and check the checkpoints",
        description="Recompute the audit log's hash chain (every archived stream, or one session's "
        "range from its session.started to its session.stopped) and check the checkpoints. "
        "Prints 'ok: N events, head hash H' or the first broken link; exits 1 when broken.",
    )
    v.add_argument("session", nargs="?", help="verify only this session's range of the events stream")
    v.add_argument(
        "--stream",
        action="append",
        help="verify only this stream (repeatable; default: every archived stream, or nats.stream for a session)",
    )
    _common_options(v)
    v.set_defaults(func=run_verify)
    t = commands.add_parser(
        "trace",
        help="print an event's causal chain back to its root cause",
        description="Follow causation_id from EVENT_ID back to the event that started it (a fill: "
        "order, approval, signal, bar), then list the events sharing its correlation id.",
    )
    t.add_argument("event_id")
    t.add_argument("--limit", type=int, default=200, help="list at most this many correlated events (default 200)")
    _common_options(t)
    t.set_defaults(func=run_trace)


def _common_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--dsn",
        help="PostgreSQL DSN (default: TICKTAPE_PG_DSN, postgres.dsn in the config, "
        "else the embedded server of a running `ticktape up` under home)",
    )
    p.add_argument("--config", help="path to ticktape.yaml (default: ./ticktape.yaml if present)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def resolve(args: argparse.Namespace) -> tuple[str, cfg.CommonSettings]:
    """The DSN to read and the common settings (config errors propagate as ConfigError)."""
    env = dict(os.environ)
    if args.config:
        env["TICKTAPE_CONFIG"] = str(Path(args.config).resolve())
    common = cfg.load_common(cfg.load_raw(env=env))
    dsn = args.dsn or common.postgres.dsn or _embedded_dsn(common)
    if not dsn:
        raise _Unavailable(
            "no PostgreSQL to read: pass --dsn, set TICKTAPE_PG_DSN or postgres.dsn, "
            "or run it next to a running `ticktape up`"
        )
    return dsn, common


def _embedded_dsn(common: cfg.CommonSettings) -> str | None:
    from ticktape.infra.postgres import app_dsn
    from ticktape.infra.stack import running_postmaster

    data_dir = Path(common.home).resolve() / "postgres"
    port = running_postmaster(data_dir)
    return app_dsn(data_dir, port) if port else None


def _run(args: argparse.Namespace, body: Any) -> int:
    try:
        dsn, common = resolve(args)
        return asyncio.run(_with_connection(dsn, lambda conn: body(conn, common)))
    except cfg.ConfigError as exc:
        print(f"ticktape audit: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    except _Unavailable as exc:
        print(f"ticktape audit: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


async def _with_connection(dsn: str, body: Any) -> int:
    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        raise _Unavailable(f"cannot connect to PostgreSQL: {redact_text(str(exc).strip())}") from None
    try:
        return await body(conn)
    except psycopg.errors.UndefinedTable:
        raise _Unavailable(
            "this database has no audit log (audit_log): is the audit service running against it?"
        ) from None
    finally:
        await conn.close()


def run_verify(args: argparse.Namespace) -> int:
    from ticktape.audit import verify

    async def body(conn: Any, common: cfg.CommonSettings) -> int:
        if args.session:
            stream = (args.stream or [common.nats.stream])[0]
            found = await verify.verify_session(conn, stream, args.session)
            if found is None:
                raise _Unavailable(
                    f"no session {args.session!r} in stream {stream}: no session.started "
                    f"on {_session_subject(args.session)}"
                )
            outcomes = [found]
        else:
            outcomes = await verify.verify_all(conn, args.stream)
        ok = all(o.ok for o in outcomes)
        if args.json:
            print(json.dumps({"ok": ok, "streams": [o.to_json() for o in outcomes]}, indent=2))
        elif not outcomes:
            print("ok: 0 events, the audit log is empty")
        else:
            for outcome in outcomes:
                print(outcome.describe())
        return EXIT_OK if ok else EXIT_FAILED

    return _run(args, body)


def _session_subject(session_id: str) -> str:
    from ticktape import subjects

    return subjects.session(session_id)


def run_trace(args: argparse.Namespace) -> int:
    from ticktape.audit import queries, trace

    async def body(conn: Any, common: cfg.CommonSettings) -> int:
        found = await queries.causal_chain(conn, args.event_id, prefer_stream=common.nats.stream)
        if found is None:
            if args.json:
                print(json.dumps({"event_id": args.event_id, "found": False}))
            else:
                print(f"no event {args.event_id} in the audit log")
            return EXIT_FAILED
        first = found.rows[0]  # the event asked for: its event_id is args.event_id
        correlation: str = first.correlation_id or args.event_id
        correlated, total = await queries.correlated(conn, correlation, limit=max(0, args.limit))
        if args.json:
            doc = trace.to_json(
                args.event_id,
                found.rows,
                missing=found.missing,
                cycle=found.cycle,
                correlation_id=correlation,
                correlated=correlated,
                correlated_total=total,
            )
            print(json.dumps({"found": True, **doc}, indent=2))
        else:
            text = trace.to_text(
                args.event_id,
                found.rows,
                missing=found.missing,
                cycle=found.cycle,
                correlation_id=correlation,
                correlated=correlated,
                correlated_total=total,
            )
            print(text)
        return EXIT_OK

    return _run(args, body)
