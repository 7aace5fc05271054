"""`ticktape replay SESSION|FILE`: --verify a recorded session, run a --config what-if on its market
data, or republish its market data --to-nats into a running stack."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from ticktape import config as cfg
from ticktape.bus.creds import CredentialsError
from ticktape.cli.sessions import add_bus_args, bus_creds, bus_settings, describe_error
from ticktape.depset import dependency_set, describe_difference
from ticktape.redact import redact_text
from ticktape.replay.fileformat import SUFFIX, SessionFileError
from ticktape.replay.records import SessionMeta
from ticktape.replay.snapshot_check import SnapshotCheck
from ticktape.replay.source import Source, open_source
from ticktape.replay.verify import VerifyResult

EXIT_MISMATCH = 1
EXIT_UNREADABLE = 2


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("replay", help="verify a recorded session, run a what-if, or republish its market data")
    p.add_argument("source", metavar="SESSION|FILE", help="a session id on the stream, or a session file")
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument(
        "--verify", action="store_true", help="re-run the cores over what they consumed and prove the outputs identical"
    )
    mode.add_argument(
        "--config",
        metavar="OTHER.yaml",
        type=Path,
        help="what-if: run the market data through the cores with these sections replaced",
    )
    mode.add_argument(
        "--to-nats",
        metavar="URL",
        dest="to_nats",
        help="republish the session's bars and control events into the stack at URL",
    )
    p.add_argument(
        "--out", metavar="DIR", type=Path, default=Path("replays"), help="what-if output directory (default ./replays)"
    )
    p.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="--to-nats pacing: event-time seconds per wall second (0 = no pacing; default 60)",
    )
    p.add_argument("--json", action="store_true", help="--verify: print the result as one JSON object")
    p.add_argument(
        "--with-history",
        action="store_true",
        help="--to-nats: also republish the market data recorded before the session",
    )
    p.add_argument(
        "--to-creds",
        metavar="FILE",
        dest="to_creds",
        help="--to-nats: credentials file for that server (it must allow publishing md.* and control.*)",
    )
    add_bus_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        url, stream = bus_settings(args)
        creds = bus_creds(args)
        if args.verify:
            return asyncio.run(_verify(args.source, url, stream, args.json, creds))
        if args.config is not None:
            return asyncio.run(_what_if(args.source, url, stream, args.config, args.out, creds))
        return asyncio.run(
            _republish(args.source, url, stream, args.to_nats, args.speed, args.with_history, creds, args.to_creds)
        )
    except (SessionFileError, cfg.ConfigError, CredentialsError) as exc:
        print(f"ticktape replay: {exc}", file=sys.stderr)
        return EXIT_UNREADABLE
    except Exception as exc:  # noqa: BLE001 - missing session/stream, unreachable server
        print(f"ticktape replay: {describe_error(exc)}", file=sys.stderr)
        return EXIT_UNREADABLE


def _load_specs(src: Source, doc: dict[str, Any], names: tuple[str, ...] | None) -> list[Any]:
    from ticktape.corespec import load_specs

    try:
        return load_specs(doc, names=names)
    except cfg.ConfigError as exc:
        raise cfg.ConfigError(
            f"session {src.meta.session_id} (code {src.meta.code_version[:12]}): "
            f"{str(exc).removeprefix('config error: ')}"
        ) from None


async def _verify(arg: str, url: str, stream: str, as_json: bool = False, creds: str | None = None) -> int:
    from ticktape.replay.progress import Progress
    from ticktape.replay.verify import Verifier

    async with open_source(arg, url, stream, creds) as src:
        deps_note = describe_difference(src.meta.dependencies, dependency_set())
        if deps_note and not as_json:
            # Said before any byte is compared, so a mismatch below is read in that light.
            print(deps_note, flush=True)
        specs = _load_specs(src, src.meta.config_doc(), src.meta.services or None)
        verifier = Verifier(specs, src.meta)
        checks = await _snapshot_check(src, specs)
        progress = Progress(src.total, "replay")
        last = 0
        async for rec in src.records:
            checks.before(rec.seq)
            verifier.feed(rec)
            last = rec.seq
            progress.advance(subject=rec.subject)
        result = verifier.finish()
        snaps = checks.finish(last)
        result.divergences.extend(snaps.divergences)
        progress.close()
    m = src.meta
    if as_json:
        doc = result_doc(m, result)
        doc["snapshots"] = {"checked": snaps.checked, "skipped": snaps.skipped}
        print(json.dumps(doc, sort_keys=True))
        return 0 if result.ok else EXIT_MISMATCH
    print(
        f"session {m.session_id} (config {m.config_hash}, code {m.code_version[:12]}, "
        f"{m.reason or 'no stop recorded'}) from {src.origin}: {result.messages} messages, "
        f"cores {', '.join(result.cores)}"
    )
    print_table(result)
    if snaps.checked or snaps.skipped:
        checked = ", ".join(f"{core} {n}" for core, n in sorted(snaps.checked.items())) or "none"
        print(f"snapshots: checked against the replayed state: {checked}; skipped: {sum(snaps.skipped.values())}")
    return 0 if result.ok else EXIT_MISMATCH


async def _snapshot_check(src: Source, specs: list[Any]) -> SnapshotCheck:
    """The check of the state snapshots in the session's bus (none for a session file: snapshots
    are a cache of state, not history, and are not exported; docs/determinism.md)."""
    from ticktape.config import NatsSettings
    from ticktape.snapshots.store import stored

    found = {}
    if src.js is not None:
        nats_doc = src.meta.config_doc().get("nats") or {}
        prefix = nats_doc.get("snapshots_bucket") or NatsSettings().snapshots_bucket
        found = await stored(src.js, str(prefix), [s.name for s in specs])
    return SnapshotCheck(specs, found, src.meta.start_seq)


def result_doc(meta: SessionMeta, result: VerifyResult) -> dict[str, Any]:
    first = result.divergences[0] if result.divergences else None
    return {
        "ok": result.ok,
        "session_id": meta.session_id,
        "config_hash": meta.config_hash,
        "dependencies": {
            "recorded": meta.dependencies,
            "current": dependency_set(),
            "same": meta.dependencies == dependency_set(),
        },
        "messages": result.messages,
        "cores": list(result.cores),
        "families": [
            {
                "family": f.family,
                "recorded": f.recorded_count,
                "replayed": f.replayed_count,
                "recorded_digest": f.recorded,
                "replayed_digest": f.replayed,
                "ok": f.ok,
            }
            for f in result.families
        ],
        "unconfirmed": result.unconfirmed,
        "problems": list(result.problems),
        "rejected": result.rejected,
        # events on a core's output subjects that no core produced (injected): see replay.verify
        "foreign": [
            {
                "core": d.core,
                "seq": d.recorded_seq,
                "subject": d.recorded_subject,
                "event_id": d.event_id,
                "type": d.type,
            }
            for d in result.foreign
        ],
        "divergence": None
        if first is None
        else {
            "core": first.core,
            "kind": first.kind,
            "reason": first.reason,
            "recorded_seq": first.recorded_seq,
            "recorded": first.recorded.decode(errors="replace") if first.recorded is not None else None,
            "replayed": first.replayed.decode(errors="replace") if first.replayed is not None else None,
            "input_seq": first.input_seq,
        },
    }


def print_table(result: VerifyResult) -> None:
    head = ("FAMILY", "RECORDED", "REPLAYED", "RECORDED DIGEST", "REPLAYED DIGEST", "")
    rows = [head] + [
        (
            f.family,
            str(f.recorded_count),
            str(f.replayed_count),
            f.recorded[:16],
            f.replayed[:16],
            "ok" if f.ok else "DIFFERS",
        )
        for f in result.families
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    for problem in result.problems:
        print(f"NOT VERIFIED: {problem}")
    for core, n in sorted(result.unconfirmed.items()):
        print(
            f"unconfirmed: {core} replay produced {n} more event(s) from input live had not processed "
            "when the session ended (it did not stop cleanly)"
        )
    for core, n in sorted(result.rejected.items()):
        print(f"note: {core} raised on {n} input(s); live, those inputs were dead-lettered")
    if result.ok:
        print("verified: every output of the session replays byte for byte")
        return
    for f in result.foreign:
        print(f"FOREIGN INPUT (seq {f.recorded_seq}, type {f.type}, {f.core}'s output): {f.reason}")
    d = next((d for d in result.divergences if d.kind != "foreign"), None)
    if d is None:
        if not result.foreign:
            print("MISMATCH: digests differ")
        return
    print(f"MISMATCH in {d.core}: {d.reason}")
    if d.recorded is not None:
        print(f"  recorded (seq {d.recorded_seq}, {d.recorded_subject}):\n    {d.recorded.decode(errors='replace')}")
    else:
        print("  recorded: nothing")
    if d.replayed is not None:
        print(
            f"  replayed (caused by seq {d.input_seq}, {d.input_subject}; {d.replayed_subject}):\n"
            f"    {d.replayed.decode(errors='replace')}"
        )
    else:
        print("  replayed: nothing")


async def _what_if(arg: str, url: str, stream: str, other: Path, out_dir: Path, creds: str | None = None) -> int:
    from ticktape.replay.fileformat import SessionWriter
    from ticktape.replay.progress import Progress
    from ticktape.replay.report import ReportBuilder
    from ticktape.replay.whatif import WhatIf, merge_config
    from ticktape.sessions import code_version

    if not other.is_file():
        raise cfg.ConfigError(f"--config {other} does not exist")
    doc = cfg.load_raw(path=other, env={})
    async with open_source(arg, url, stream, creds) as src:
        config = merge_config(src.meta.config_doc(), doc)
        run = WhatIf(src.meta, config, _load_specs(src, config, None), code_version(), dependency_set())
        out_dir.mkdir(parents=True, exist_ok=True)
        path = out_dir / f"{run.session_id}{SUFFIX}"
        report = ReportBuilder()
        progress = Progress(src.total, "what-if")
        with SessionWriter(path) as writer:
            async for rec in src.records:
                for item in run.feed(rec):
                    writer.add(item[0])
                    report.observe(*item)
                progress.advance(subject=rec.subject)
            for item in run.finish():
                writer.add(item[0])
                report.observe(*item)
            writer.finish(run.meta)
        progress.close()
    summary = report.write(out_dir / run.session_id, run.meta)
    print(f"what-if session {run.session_id} (config {run.config_hash}) of {src.meta.session_id}:")
    print(
        f"  {summary['signals']} signals, {summary['trade_count']} trades, P&L {summary['pnl']:.2f}, "
        f"max drawdown {summary['max_drawdown']:.2f} ({summary['max_drawdown_pct']:.2%})"
    )
    print(f"  session file: {path}")
    print(f"  report: {out_dir / run.session_id / 'index.html'}")
    return 0


async def _republish(
    arg: str,
    url: str,
    stream: str,
    to_url: str,
    speed: float,
    with_history: bool,
    creds: str | None = None,
    to_creds: str | None = None,
) -> int:
    from ticktape.replay.catalog import connect
    from ticktape.replay.progress import Progress
    from ticktape.replay.republish import republish

    async with open_source(arg, url, stream, creds) as src:
        target = await connect(to_url, to_creds)
        try:
            progress = Progress(src.total, "republish")
            done = await republish(
                target.jetstream(), src.records, speed=speed, with_history=with_history, on_message=progress.advance
            )
            progress.close()
        finally:
            await target.close()
    print(
        f"republished {done.published} market-data events of session {src.meta.session_id} to {redact_text(to_url)}"
        + (f"; {done.duplicates} dropped as duplicates (already on that stream)" if done.duplicates else "")
    )
    return 0
