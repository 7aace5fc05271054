"""`ticktape sessions`: list the sessions recorded in an events stream (also the shared --nats /
--stream options of export, import and replay)."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime
from typing import Any

from ticktape import config as cfg
from ticktape.bus.creds import CredentialsError
from ticktape.redact import redact_text


def add_bus_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nats", metavar="URL", help="NATS server (default: nats.url of the config, TICKTAPE_NATS_URL)")
    p.add_argument("--stream", metavar="NAME", help="stream to read (default: nats.stream of the config, TICKTAPE)")
    add_creds_arg(p)


def add_creds_arg(p: argparse.ArgumentParser, role: str = "admin") -> None:
    p.add_argument(
        "--creds",
        metavar="FILE",
        help=f"bus credentials file (default: nats.creds, else {role}.json in the credentials directory when there)",
    )


def bus_creds(args: argparse.Namespace, role: str = "admin") -> str | None:
    """The credentials file a command connects with: --creds, else nats.creds, else the role's file
    in the credentials directory (<home>/creds) when it exists, else none (a server without auth)."""
    from ticktape.bus import creds

    if getattr(args, "creds", None):
        return str(args.creds)
    common = cfg.load_common(cfg.load_raw())
    if common.nats.creds:
        return common.nats.creds
    path = creds.path_for(creds.creds_dir(common), role)
    return str(path) if path.exists() else None


def bus_settings(args: argparse.Namespace) -> tuple[str, str]:
    """(NATS URL, stream name): the options when given, else the configuration's."""
    common = cfg.load_common(cfg.load_raw())
    return args.nats or common.nats.url, args.stream or common.nats.stream


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("sessions", help="list recorded sessions (id, start, stop, config hash, code version, events)")
    add_bus_args(p)
    p.add_argument("--json", action="store_true", help="one JSON object per session instead of a table")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        url, stream = bus_settings(args)
        rows = asyncio.run(_rows(url, stream, bus_creds(args)))
    except (cfg.ConfigError, CredentialsError) as exc:
        print(f"ticktape sessions: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - unreachable server, missing stream: say which
        print(f"ticktape sessions: {describe_error(exc)}", file=sys.stderr)
        return 2
    if args.json:
        for row in rows:
            print(json.dumps(row, sort_keys=True))
        return 0
    if not rows:
        print(f"no sessions in stream {stream}")
        return 0
    head = ("SESSION", "STARTED (UTC)", "STOPPED (UTC)", "STATUS", "CONFIG", "CODE", "EVENTS")
    table = [head] + [
        (
            r["session_id"],
            _time(r["started_ns"]),
            _time(r["stopped_ns"]),
            r["status"],
            r["config_hash"],
            r["code_version"][:12],
            str(r["events"]),
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(head))]
    for row in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    return 0


async def _rows(url: str, stream: str, creds: str | None = None) -> list[dict[str, Any]]:
    from ticktape.replay.catalog import connect, list_sessions, open_stream

    nc = await connect(url, creds)
    try:
        js = nc.jetstream()
        ref = await open_stream(js, stream)
        rows = []
        for entry in await list_sessions(js, ref):
            m = entry.meta
            end = entry.end_seq if entry.end_seq is not None else ref.last_seq
            events = max(end - m.start_seq - (1 if m.stop_seq is not None else 0), 0)
            rows.append(
                {
                    "session_id": m.session_id,
                    "started_ns": m.started_ns,
                    "stopped_ns": m.stopped_ns,
                    "status": entry.status,
                    "config_hash": m.config_hash,
                    "code_version": m.code_version,
                    "dependencies": m.dependencies,
                    "start_seq": m.start_seq,
                    "end_seq": entry.end_seq,
                    "events": events,
                    "services": list(m.services),
                }
            )
        return rows
    finally:
        await nc.close()


def describe_error(exc: BaseException) -> str:
    """A one-line reason for a failure to reach or read the bus (without secrets: the reason may
    quote a URL)."""
    text = redact_text(str(exc) or type(exc).__name__)
    if type(exc).__name__ in ("NoServersError", "ConnectionRefusedError", "TimeoutError"):
        return f"cannot reach NATS ({text}); pass --nats URL or set TICKTAPE_NATS_URL"
    return text


def _time(ns: int | None) -> str:
    if ns is None:
        return "-"
    return datetime.fromtimestamp(ns / 1e9, tz=UTC).strftime("%Y-%m-%d %H:%M:%S")
