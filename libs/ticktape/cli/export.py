"""`ticktape export SESSION FILE` and `ticktape import FILE`: sessions as portable files.

The file holds every message of the events stream from its first up to the session's end (cores
carry state across sessions, so replaying a session needs all of its history), with the
session's own messages marked. See ticktape.replay.fileformat for the format."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ticktape import config as cfg
from ticktape.bus.creds import CredentialsError
from ticktape.cli.sessions import add_bus_args, add_creds_arg, bus_creds, bus_settings, describe_error
from ticktape.replay.fileformat import (
    MAX_LINE_BYTES,
    SUFFIX,
    Header,
    SessionFileError,
    SessionWriter,
    check_session_file,
)

if TYPE_CHECKING:
    from ticktape.replay.importer import Imported


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write a recorded session (with the history it needs) to a session file")
    p.add_argument("session", metavar="SESSION", help="session id (see `ticktape sessions`)")
    p.add_argument("file", metavar="FILE", type=Path, help=f"output file (conventionally *{SUFFIX})")
    add_bus_args(p)
    p.set_defaults(func=run_export)

    p = sub.add_parser("import", help="load a session file into a new stream (never the live one by default)")
    p.add_argument("file", metavar="FILE", type=Path)
    p.add_argument("--nats", metavar="URL", help="NATS server (default: nats.url of the config, TICKTAPE_NATS_URL)")
    p.add_argument("--stream", metavar="NAME", help="stream to create (default: SESSION_<session id>)")
    add_creds_arg(p)
    p.add_argument(
        "--keep-subjects",
        action="store_true",
        help="store subjects as recorded instead of under imported.<session id>. "
        "(only on a server where no stream captures them)",
    )
    p.add_argument("--check", action="store_true", help="only verify the file's integrity; import nothing")
    p.add_argument(
        "--max-line-mib",
        metavar="N",
        type=int,
        default=MAX_LINE_BYTES // 2**20,
        help="refuse a file with a line longer than N MiB (default: %(default)s; a line holds one message)",
    )
    p.set_defaults(func=run_import)


def run_export(args: argparse.Namespace) -> int:
    try:
        url, stream = bus_settings(args)
        header = asyncio.run(_export(url, stream, args.session, args.file, bus_creds(args)))
    except (cfg.ConfigError, CredentialsError) as exc:
        print(f"ticktape export: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - missing session/stream, unreachable server
        print(f"ticktape export: {describe_error(exc)}", file=sys.stderr)
        return 2
    _describe(args.file, header)
    return 0


async def _export(url: str, stream: str, session_id: str, path: Path, creds: str | None = None) -> Header:
    from ticktape.replay.catalog import connect, find_session, open_stream, session_records
    from ticktape.replay.progress import Progress

    nc = await connect(url, creds)
    try:
        js = nc.jetstream()
        ref = await open_stream(js, stream)
        entry = await find_session(js, ref, session_id)
        first = (await js.stream_info(ref.name)).state.first_seq
        if first > 1 and not ref.prefix:
            print(
                f"ticktape export: warning: stream {ref.name} starts at seq {first}; earlier history "
                "has expired, so a replay starts from partial state",
                file=sys.stderr,
            )
        end = entry.end_seq if entry.end_seq is not None else ref.last_seq
        progress = Progress(max(end - first + 1, 0), "export")
        with SessionWriter(path) as writer:
            async for rec in session_records(js, ref, entry):
                writer.add(rec)
                progress.advance()
            header = writer.finish(entry.meta)
        progress.close()
        return header
    finally:
        await nc.close()


def run_import(args: argparse.Namespace) -> int:
    max_line = max(args.max_line_mib, 1) * 2**20
    try:
        if args.check:
            _describe(args.file, check_session_file(args.file, max_line))
            print("integrity: ok (every line matches the hash chain; counts match the header)")
            return 0
        url = args.nats or cfg.load_common(cfg.load_raw()).nats.url
        imported = asyncio.run(_import(url, args.file, args.stream, args.keep_subjects, bus_creds(args), max_line))
    except SessionFileError as exc:
        print(f"ticktape import: {exc}", file=sys.stderr)
        return 1
    except (cfg.ConfigError, CredentialsError) as exc:
        print(f"ticktape import: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    except Exception as exc:  # noqa: BLE001 - existing stream, overlapping subjects, unreachable server
        print(f"ticktape import: {describe_error(exc)}", file=sys.stderr)
        return 2
    where = f"subjects under {imported.stream.prefix!r}" if imported.stream.prefix else "subjects as recorded"
    print(
        f"imported session {imported.session_id}: {imported.messages} messages into stream "
        f"{imported.stream.name} ({where})"
    )
    print(f"replay it with: ticktape replay {imported.session_id} --stream {imported.stream.name} --verify")
    return 0


async def _import(
    url: str, path: Path, stream: str | None, keep: bool, creds: str | None = None, max_line: int = MAX_LINE_BYTES
) -> Imported:
    from ticktape.replay.catalog import connect
    from ticktape.replay.importer import import_session_file

    nc = await connect(url, creds)
    try:
        return await import_session_file(
            nc.jetstream(), path, stream=stream, keep_subjects=keep, max_line_bytes=max_line
        )
    finally:
        await nc.close()


def _describe(path: Path, header: Header) -> None:
    s = header.session
    ranges = ", ".join(f"{r.name} seq {r.first_seq}..{r.last_seq}" for r in header.streams) or "no messages"
    print(
        f"{path}: session {s.session_id} (config {s.config_hash}, code {s.code_version[:12]}): "
        f"{header.counts.messages} messages, {header.counts.in_session} in the session; {ranges}"
    )
