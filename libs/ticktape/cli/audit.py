"""`ticktape audit verify [SESSION]`, `ticktape audit trace EVENT_ID` and `ticktape audit pubkey`:
check the audit log's hash chain and its signed checkpoints, walk an order or fill back to the
bar that caused it, print the public key that verifies the checkpoints.

Exit codes: 0 ok / found; 1 the chain is broken, a checkpoint's signature does not verify or no
checkpoint is signed by the key / the event is not in the log; 2 cannot check (no database, no
audit tables, unknown session, an unreadable --public-key, no key for pubkey); 78 invalid
configuration."""

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


class Unavailable(Exception):
    pass


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("audit", help="verify the audit log's hash chain; trace an event's causes")
    commands = p.add_subparsers(dest="audit_command", required=True)
    v = commands.add_parser(
        "verify",
        help="recompute the hash chain and check the checkpoints",
        description="Recompute the audit log's hash chain (every archived stream, or one session's "
        "range from its session.started to its session.stopped) and check the checkpoints: with a "
        "public key, their ed25519 signatures too, plus the latest signed checkpoint the archiver "
        "keeps beside its key under home (so a tail deleted with its checkpoints is caught). "
        "Prints 'ok: N events, head hash H' or the first broken link; exits 1 when broken.",
    )
    v.add_argument("session", nargs="?", help="verify only this session's range of the events stream")
    keys = v.add_mutually_exclusive_group()
    keys.add_argument(
        "--public-key",
        metavar="PATH",
        help="check every checkpoint's signature with this ed25519 public key (PEM); default: the .pub "
        "beside the audit service's key under home (audit.signing_key), when it exists",
    )
    keys.add_argument(
        "--no-signatures", action="store_true", help="check the hash chain only, not the checkpoints' signatures"
    )
    v.add_argument(
        "--stream",
        action="append",
        help="verify only this stream (repeatable; default: every archived stream, or nats.stream for a session)",
    )
    database_options(v)
    v.set_defaults(func=run_verify)
    t = commands.add_parser(
        "trace",
        help="print an event's causal chain back to its root cause",
        description="Follow causation_id from EVENT_ID back to the event that started it (a fill: "
        "order, approval, signal, bar), then list the events sharing its correlation id.",
    )
    t.add_argument("event_id")
    t.add_argument("--limit", type=int, default=200, help="list at most this many correlated events (default 200)")
    database_options(t)
    t.set_defaults(func=run_trace)
    k = commands.add_parser(
        "pubkey",
        help="print the public key that verifies the audit checkpoints, and its key id",
        description="Print the audit service's ed25519 public key (PEM) from beside its private key "
        "under home (audit.signing_key) and its key id. Keep a copy outside the machine: "
        "`ticktape audit verify --public-key COPY` then proves the log against its database.",
    )
    k.add_argument("--config", help="path to ticktape.yaml (default: ./ticktape.yaml if present)")
    k.add_argument("--json", action="store_true", help="print JSON instead of text")
    k.set_defaults(func=run_pubkey)


def database_options(p: argparse.ArgumentParser) -> None:
    """--dsn, --config and --json: the options of a command that reads PostgreSQL (resolve reads them)."""
    p.add_argument(
        "--dsn",
        help="PostgreSQL DSN (default: TICKTAPE_PG_DSN, postgres.dsn in the config, "
        "else the embedded server of a running `ticktape up` under home)",
    )
    p.add_argument("--config", help="path to ticktape.yaml (default: ./ticktape.yaml if present)")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")


def _raw(args: argparse.Namespace) -> dict[str, Any]:
    env = dict(os.environ)
    if args.config:
        env["TICKTAPE_CONFIG"] = str(Path(args.config).resolve())
    return cfg.load_raw(env=env)


def signing_key_path(raw: dict[str, Any]) -> Path:
    """The audit service's private key: audit.signing_key, else <home>/keys/audit-ed25519.pem."""
    from ticktape.audit import signing

    common = cfg.load_common(raw)
    section = raw.get("audit")
    configured = section.get("signing_key") if isinstance(section, dict) else None
    if configured is not None and not isinstance(configured, str):
        raise cfg.ConfigError(f"config error: audit.signing_key must be a path (got {configured!r})")
    return signing.key_path(common.home, configured)


def default_public_key(raw: dict[str, Any]) -> Path:
    """The .pub beside the audit service's signing key."""
    from ticktape.audit import signing

    return signing.public_path(signing_key_path(raw))


def _witnesses(args: argparse.Namespace, key: Any) -> Any:
    """stream -> the latest signed checkpoint the archiver kept beside its key under home, when
    it was signed by `key` (a witness of another key belongs to another log)."""
    from ticktape.audit import signing

    private = signing_key_path(_raw(args))

    def witness(stream: str) -> Any:
        path = signing.witness_path(private, stream)
        found = signing.read_witness(path) if path is not None else None
        ok = found is not None and key is not None and found.key_id == key.key_id and found.stream == stream
        return found if ok else None

    return witness


def resolve(args: argparse.Namespace) -> tuple[str, cfg.CommonSettings]:
    """The DSN to read and the common settings (config errors propagate as ConfigError)."""
    common = cfg.load_common(_raw(args))
    dsn = args.dsn or common.postgres.dsn or _embedded_dsn(common)
    if not dsn:
        raise Unavailable(
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
    except Unavailable as exc:
        print(f"ticktape audit: {exc}", file=sys.stderr)
        return EXIT_UNAVAILABLE


async def _with_connection(dsn: str, body: Any) -> int:
    import psycopg

    try:
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        raise Unavailable(f"cannot connect to PostgreSQL: {redact_text(str(exc).strip())}") from None
    try:
        return await body(conn)
    except psycopg.errors.UndefinedTable:
        raise Unavailable(
            "this database has no audit log (audit_log): is the audit service running against it?"
        ) from None
    except psycopg.errors.UndefinedColumn:
        raise Unavailable(
            "the audit tables predate signed checkpoints: start the audit service once to migrate them"
        ) from None
    finally:
        await conn.close()


def _public_key(args: argparse.Namespace) -> Any:
    """The signing.PublicKey to check signatures with, or None (--no-signatures, or no --public-key
    and none under home: then only the chain is checked, and a note says so on stderr)."""
    from ticktape.audit import signing

    if args.no_signatures:
        return None
    path = Path(args.public_key) if args.public_key else default_public_key(_raw(args))
    if not args.public_key and not path.exists():
        print(
            f"ticktape audit: no public key at {path}: checkpoint signatures not checked "
            "(pass --public-key to check them)",
            file=sys.stderr,
        )
        return None
    try:
        return signing.load_public(path)
    except signing.SigningKeyError as exc:
        raise Unavailable(str(exc)) from None


def run_verify(args: argparse.Namespace) -> int:
    from ticktape.audit import verify

    async def body(conn: Any, common: cfg.CommonSettings) -> int:
        key = _public_key(args)
        witnesses = _witnesses(args, key)
        if args.session:
            stream = (args.stream or [common.nats.stream])[0]
            found = await verify.verify_session(conn, stream, args.session, key, witnesses)
            if found is None:
                raise Unavailable(
                    f"no session {args.session!r} in stream {stream}: no session.started "
                    f"on {_session_subject(args.session)}"
                )
            outcomes = [found]
        else:
            outcomes = await verify.verify_all(conn, args.stream, key, witnesses)
        ok = all(o.ok for o in outcomes)
        if args.json:
            doc = {"ok": ok, "key_id": key.key_id if key else None, "streams": [o.to_json() for o in outcomes]}
            print(json.dumps(doc, indent=2))
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


def run_pubkey(args: argparse.Namespace) -> int:
    from ticktape.audit import signing

    try:
        path = default_public_key(_raw(args))
        key = signing.load_public(path)
    except cfg.ConfigError as exc:
        print(f"ticktape audit: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    except signing.SigningKeyError as exc:
        print(f"ticktape audit: {exc} (the audit service writes it on its first start)", file=sys.stderr)
        return EXIT_UNAVAILABLE
    pem = signing.public_pem(key.key).decode()
    if args.json:
        print(json.dumps({"key_id": key.key_id, "path": str(path), "pem": pem}))
    else:
        print(f"# ticktape audit checkpoint key {key.key_id} ({path})")
        print(pem, end="")
    return EXIT_OK
