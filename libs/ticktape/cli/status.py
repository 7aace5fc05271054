"""`ticktape status`: one screen on a running stack, read from the bus and the run directory.

gather() makes a Snapshot (ticktape.cli.status_view: msgspec Structs, so `--json` prints it with
stable keys, a pure render() for the screen, health() for OK or DEGRADED and why). What it
reads, all of it without changing anything:
  services      <home>/run: the supervisor's state and each service's pid (alive or not)
  consumers     each registered service's durables (ServiceInfo.durables): pending, ack pending,
                redelivered, last active
  venues        the latest md.status.<venue> (shards), symbols.universe.<venue> (universe size)
                and md.bar.<venue>.> (the newest bar's close time and age)
  accounts      the latest accounts.<account> (equity) and positions.<account>.* (open positions)
  halted        the operator's control.> events and risk's risk.halted.> folded as risk folds them
  dead letters  per service, the message count of each dlq.<service> subject
  session       the latest sessions.> event

Connects as `admin` by default: stream and consumer info and reading a stream's last messages are
JetStream API requests, which are publishes, and `observer` publishes nothing (ticktape.bus.permissions);
admin is the only role allowed them. Status itself only asks for information and reads messages."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import TypeVar

import msgspec
import nats.errors
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from ticktape import config as cfg
from ticktape import registry, subjects
from ticktape.bus.connect import connect_command
from ticktape.bus.creds import CredentialsError
from ticktape.cli.sessions import add_creds_arg, bus_creds, describe_error
from ticktape.cli.status_view import (
    Account,
    Consumer,
    Health,
    Position,
    ServiceProc,
    Session,
    Shard,
    Snapshot,
    Thresholds,
    Venue,
    halts,
    health,
    render,
)
from ticktape.events import (
    AccountUpdated,
    BarClosed,
    EmergencyStop,
    MarketDataStatus,
    PositionUpdated,
    ResumeTrading,
    RiskHalted,
    SessionStarted,
    SessionStopped,
    UniverseUpdated,
)
from ticktape.events.codec import DecodeError, decode
from ticktape.events.envelope import Envelope
from ticktape.redact import redact_text
from ticktape.supervisor import alive, pid_of, state_of

CLEAR = "\x1b[H\x1b[2J"
EXIT_UNREACHABLE = 1
BAR_SCAN = 1000  # messages read backwards past an undecodable last bar, at most


# --- gathering: the bus and the run directory -------------------------------------------------

E = TypeVar("E", bound=Envelope)


async def _last(js: JetStreamContext, stream: str, subject: str, kind: type[E]) -> E | None:
    """The event of the stream's last message on subject, when it is a `kind`."""
    try:
        msg = await js.get_last_msg(stream, subject)
    except NotFoundError:
        return None
    try:
        event = decode(msg.data or b"")
    except DecodeError:
        return None
    return event if isinstance(event, kind) else None


async def _subjects(js: JetStreamContext, stream: str, pattern: str) -> dict[str, int]:
    """The stream's subjects matching pattern, with their message counts."""
    info = await js.stream_info(stream, subjects_filter=pattern)
    return dict(info.state.subjects or {})


async def _newest_bar(js: JetStreamContext, stream: str, venue: str) -> tuple[str, BarClosed] | None:
    """(subject, bar) of a venue's last bar: the last message on md.bar.<venue>.>, or when that is
    no bar (an undecodable input), the first bar before it, read backwards up to BAR_SCAN messages."""
    pattern = subjects.bars(subjects.token(venue), "*", "*")
    try:
        msg = await js.get_last_msg(stream, pattern)
    except NotFoundError:
        return None
    seq = msg.seq or 0
    for _ in range(BAR_SCAN):
        if msg.subject and subjects.matches(pattern, msg.subject):
            with contextlib.suppress(DecodeError):
                event = decode(msg.data or b"")
                if isinstance(event, BarClosed):
                    return msg.subject, event
        seq -= 1
        if seq < 1:
            return None
        with contextlib.suppress(NotFoundError):  # deleted or expired: keep going back
            msg = await js.get_msg(stream, seq)
    return None


async def _consumers(js: JetStreamContext, settings: cfg.NatsSettings) -> list[Consumer]:
    """Each registered service's durables on the events stream (missing ones too), and on the
    dead-letter stream for a service that reads it, when there (audit.dead_letters may be off)."""
    out = []
    for svc in registry.services():
        streams = [settings.stream] + ([settings.dlq_stream] if "dlq" in svc.reads else [])
        for durable in svc.durables:
            for name in streams:
                try:
                    ci = await js.consumer_info(name, durable)
                except NotFoundError:
                    if name == settings.stream:
                        out.append(Consumer(service=svc.name, durable=durable, stream=name, present=False))
                    continue
                active = ci.delivered.last_active if ci.delivered is not None else None
                out.append(
                    Consumer(
                        service=svc.name,
                        durable=durable,
                        stream=name,
                        present=True,
                        num_pending=ci.num_pending or 0,
                        num_ack_pending=ci.num_ack_pending or 0,
                        num_redelivered=ci.num_redelivered or 0,
                        last_active_ns=int(active.timestamp() * 1e9) if active is not None else None,
                    )
                )
    return out


async def _venues(js: JetStreamContext, stream: str, now_ns: int) -> list[Venue]:
    """Every venue with a universe or a shard status: its latest of each, and its newest bar."""
    names = {s.split(".")[2] for s in await _subjects(js, stream, subjects.ALL_UNIVERSES)}
    names |= {s.split(".")[2] for s in await _subjects(js, stream, subjects.ALL_STATUS)}
    out = []
    for name in sorted(names):
        universe = await _last(js, stream, subjects.universe(name), UniverseUpdated)
        status = await _last(js, stream, subjects.status(name), MarketDataStatus)
        bar = await _newest_bar(js, stream, name)
        shards = tuple(
            Shard(
                shard=s.shard,
                connected=s.connected,
                symbols=s.symbols,
                last_frame_age_ms=s.last_frame_age_ms,
                reconnects=s.reconnects,
            )
            for s in (status.shards if status else ())
        )
        out.append(
            Venue(
                venue=name,
                universe_size=len(universe.symbols) if universe else None,
                universe_as_of_ns=universe.as_of if universe else None,
                shards=shards,
                shards_ts_ns=status.ts_event if status else None,
                last_bar_close_ns=bar[1].close_time if bar else None,
                last_bar_age_s=round((now_ns - bar[1].close_time) / 1e9, 3) if bar else None,
                last_bar_subject=bar[0] if bar else None,
            )
        )
    return out


async def _control(
    js: JetStreamContext, stream: str, last_seq: int
) -> list[EmergencyStop | ResumeTrading | RiskHalted]:
    """The operator's stop and resume events and risk's own halts, in stream order (few)."""
    from ticktape.bus.reader import read_range

    out: list[EmergencyStop | ResumeTrading | RiskHalted] = []
    filters = [f for f in (subjects.ALL_CONTROL, subjects.ALL_RISK_HALTS) if await _subjects(js, stream, f)]
    if not filters:
        return out
    async for msg in read_range(js, stream, filters, stop_seq=last_seq):
        with contextlib.suppress(DecodeError):
            event = decode(msg.data)
            if isinstance(event, EmergencyStop | ResumeTrading | RiskHalted):
                out.append(event)
    return out


async def _accounts(js: JetStreamContext, stream: str) -> dict[str, Account]:
    """Each account's latest AccountUpdated, with its open positions (the latest PositionUpdated
    of each of its symbols, when not flat)."""
    positions: dict[str, list[Position]] = {}
    for subject in sorted(await _subjects(js, stream, subjects.ALL_POSITIONS)):
        p = await _last(js, stream, subject, PositionUpdated)
        if p is not None and p.quantity != 0:
            positions.setdefault(p.account, []).append(
                Position(
                    venue=p.venue,
                    symbol=p.symbol,
                    quantity=p.quantity,
                    avg_price=p.avg_price,
                    mark_price=p.mark_price,
                    unrealized_pnl=p.unrealized_pnl,
                )
            )
    out: dict[str, Account] = {}
    for subject in sorted(await _subjects(js, stream, subjects.ALL_ACCOUNTS)):
        a = await _last(js, stream, subject, AccountUpdated)
        if a is not None:
            out[a.account] = Account(
                account=a.account,
                equity=a.equity,
                initial_equity=a.initial_equity,
                realized_pnl=a.realized_pnl,
                unrealized_pnl=a.unrealized_pnl,
                gross_exposure=a.gross_exposure,
            )
    for name, held in positions.items():
        out[name] = msgspec.structs.replace(out.get(name, Account(account=name)), open_positions=tuple(held))
    return out


async def _session(js: JetStreamContext, stream: str) -> Session | None:
    event = await _last(js, stream, subjects.ALL_SESSIONS, Envelope)
    if isinstance(event, SessionStarted):
        return Session(session_id=event.session_id, started_ns=event.ts_event, stopped=False)
    if isinstance(event, SessionStopped):
        return Session(session_id=event.session_id, started_ns=None, stopped=True)
    return None


def _processes(run_dir: Path) -> tuple[ServiceProc, ...]:
    """Each registered service's pid in the supervisor's run directory, and whether it lives."""
    out = []
    for svc in registry.services():
        pid = pid_of(run_dir, svc.name)
        out.append(ServiceProc(name=svc.name, pid=pid, alive=pid is not None and alive(pid)))
    return tuple(out)


async def gather(
    js: JetStreamContext, settings: cfg.NatsSettings, home: Path, nats_url: str, limits: Thresholds
) -> Snapshot:
    """A snapshot of the stack and its health, from JetStream information, last messages and the
    run directory (nothing is changed)."""
    stream = settings.stream
    now_ns = time.time_ns()
    try:
        info = await js.stream_info(stream)
    except NotFoundError:  # a server no stack has provisioned yet: the rest is empty
        info = None
    last_seq = info.state.last_seq if info is not None else 0
    everyone, overrides = halts(await _control(js, stream, last_seq) if info else [])
    accounts = await _accounts(js, stream) if info else {}
    try:
        dlq = await _subjects(js, settings.dlq_stream, subjects.ALL_DLQ)
    except NotFoundError:
        dlq = {}
    run_dir = home / "run"
    snap = Snapshot(
        ts_ns=now_ns,
        nats_url=redact_text(nats_url),
        stream=stream,
        stream_present=info is not None,
        stream_messages=info.state.messages if info is not None else 0,
        stream_last_seq=last_seq,
        home=str(home),
        stack_state=state_of(run_dir),
        services=_processes(run_dir),
        consumers=tuple(await _consumers(js, settings)),
        venues=tuple(await _venues(js, stream, now_ns)) if info else (),
        accounts=tuple(
            msgspec.structs.replace(accounts[name], halted=overrides.get(name, everyone)) for name in sorted(accounts)
        ),
        halted=everyone or any(overrides.values()),
        halted_accounts=("*",) if everyone else tuple(sorted(a for a, h in overrides.items() if h)),
        dead_letters={s.removeprefix("dlq."): n for s, n in sorted(dlq.items())},
        session=await _session(js, stream) if info else None,
        health=Health(status="OK"),
    )
    return msgspec.structs.replace(snap, health=health(snap, limits))


async def snapshot(url: str, creds: str | None, settings: cfg.NatsSettings, home: Path, limits: Thresholds) -> Snapshot:
    """Connect once, gather, close. A JetStream request the server refuses (a credential without
    the JetStream API, such as observer's) times out: PermissionError says so instead."""
    nc, errors = await connect_command(url, "ticktape-status", creds)
    try:
        return await gather(nc.jetstream(timeout=5), settings, home, nats_url=url, limits=limits)
    except nats.errors.TimeoutError:
        if errors:
            raise PermissionError(
                f"the server refused a request: {errors[-1]} (status needs the JetStream API: the admin credential)"
            ) from None
        raise
    finally:
        await nc.close()


# --- the command -------------------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status", help="one screen: services, consumer lag, shards, universe, bars, accounts, halts, dead letters"
    )
    p.add_argument("--nats", metavar="URL", help="NATS server (default: nats.url of the config, TICKTAPE_NATS_URL)")
    p.add_argument("--home", help="state directory (default: TICKTAPE_HOME or ./.ticktape)")
    add_creds_arg(p)
    p.add_argument("--json", action="store_true", help="print the snapshot as JSON (one object per refresh)")
    p.add_argument("--watch", action="store_true", help="refresh until Ctrl-C")
    p.add_argument("--interval", type=float, default=2.0, metavar="S", help="seconds between refreshes (default 2)")
    p.add_argument(
        "--max-lag",
        type=int,
        default=Thresholds().max_lag,
        help="pending messages of a durable above which it is DEGRADED",
    )
    p.add_argument(
        "--max-bar-age",
        type=float,
        default=Thresholds().max_bar_age_s,
        metavar="S",
        help="seconds since a venue's newest bar closed above which it is DEGRADED",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.home:
        os.environ["TICKTAPE_HOME"] = args.home
    try:
        common = cfg.load_common(cfg.load_raw())
        url = args.nats or common.nats.url
        creds = bus_creds(args)
    except (cfg.ConfigError, CredentialsError) as exc:
        print(f"ticktape status: {exc}", file=sys.stderr)
        return cfg.EXIT_CONFIG
    limits = Thresholds(max_lag=args.max_lag, max_bar_age_s=args.max_bar_age)
    home = Path(common.home).resolve()
    if args.watch:
        try:
            return asyncio.run(_watch(args, url, creds, common.nats, home, limits))
        except KeyboardInterrupt:  # before the loop's own handler was installed
            return 0
    try:
        snap = asyncio.run(snapshot(url, creds, common.nats, home, limits))
    except (OSError, nats.errors.Error, CredentialsError) as exc:
        print(f"ticktape status: {describe_error(exc)}", file=sys.stderr)
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        return 0
    sys.stdout.write(_screen(snap, args.json))
    return 0


def _screen(snap: Snapshot, as_json: bool) -> str:
    return msgspec.json.encode(snap).decode() + "\n" if as_json else render(snap, time.time_ns())


async def _watch(
    args: argparse.Namespace,
    url: str,
    creds: str | None,
    settings: cfg.NatsSettings,
    home: Path,
    limits: Thresholds,
) -> int:
    """Refresh every args.interval seconds until Ctrl-C or SIGTERM. The signals only set a flag
    the loop checks (never an exception inside a refresh, which a library could swallow)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    while not stop.is_set():
        try:
            out = _screen(await snapshot(url, creds, settings, home, limits), args.json)
        except (OSError, nats.errors.Error, CredentialsError) as exc:
            out = f"ticktape status: {describe_error(exc)}\n"  # a stack restarting: say so and keep trying
        if stop.is_set():
            break
        sys.stdout.write(out if args.json else CLEAR + out)
        sys.stdout.flush()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=args.interval)
    return 0
