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
from typing import Any, TypeVar

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
    ManagedStrategy,
    Position,
    ServiceProc,
    Session,
    Shard,
    Snapshot,
    Thresholds,
    Venue,
    Worker,
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
    StrategyChanged,
    UniverseUpdated,
    WorkersChosen,
)
from ticktape.events.codec import DecodeError, decode
from ticktape.events.envelope import Envelope
from ticktape.redact import redact_text
from ticktape.serviceinfo import ServiceInfo
from ticktape.supervisor import alive, pid_of, state_of
from ticktape.workers import MAX_WORKERS, child_name, configured_count, every_durable
from ticktape.workers import durable as worker_durable

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
        # a service run as workers (ticktape.workers): whichever of its partition durables exist
        candidates = svc.durables if svc.workers is None else [d for b in svc.durables for d in every_durable(b)]
        for durable in candidates:
            for name in streams:
                try:
                    ci = await js.consumer_info(name, durable)
                except NotFoundError:
                    if name == settings.stream and durable in svc.durables:
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
    # a service's own durable is not missing while its workers read through theirs
    split = {svc.name for svc in registry.services() if svc.workers is not None}
    running = {(c.service, c.stream) for c in out if c.present and c.service in split}
    return [c for c in out if c.present or (c.service, c.stream) not in running]


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


async def _session(js: JetStreamContext, stream: str) -> tuple[Session | None, dict[str, Any]]:
    """(the latest session, its recorded configuration when it is running: {} otherwise)."""
    event = await _last(js, stream, subjects.ALL_SESSIONS, Envelope)
    if isinstance(event, SessionStarted):
        doc: Any = {}
        with contextlib.suppress(msgspec.DecodeError):
            doc = msgspec.json.decode(event.config_json or "{}")
        config = doc if isinstance(doc, dict) else {}
        return Session(session_id=event.session_id, started_ns=event.ts_event, stopped=False), config
    if isinstance(event, SessionStopped):
        return Session(session_id=event.session_id, started_ns=None, stopped=True), {}
    return None, {}


async def _worker_count(
    js: JetStreamContext, stream: str, svc: ServiceInfo, session: Session | None, config: dict[str, Any], seen: int
) -> int:
    """How many workers `svc` runs as: the session's WorkersChosen, else the count in its recorded
    configuration, else (no session) as many as the highest worker index `seen` implies."""
    if session is not None:
        chosen = await _last(js, stream, subjects.workers_chosen(svc.name), WorkersChosen)
        if chosen is not None and chosen.session_id == session.session_id:
            return chosen.workers
        counted = configured_count(config, svc.name)
        if counted is not None or not session.stopped:
            return counted or 1
    return max(1, seen)


async def _workers(
    js: JetStreamContext,
    stream: str,
    run_dir: Path,
    session: Session | None,
    config: dict[str, Any],
    consumers: list[Consumer],
) -> list[Worker]:
    """Each worker of the services that run as several, with its process and its durable's lag."""
    out = []
    by_durable = {c.durable: c for c in consumers if c.stream == stream}
    for svc in registry.services():
        if svc.workers is None:
            continue
        found = [i + 1 for i in range(MAX_WORKERS) if pid_of(run_dir, child_name(svc.name, i, MAX_WORKERS))]
        found += [
            i + 1 for b in svc.durables for i in range(MAX_WORKERS) if worker_durable(b, i, MAX_WORKERS) in by_durable
        ]
        count = await _worker_count(js, stream, svc, session, config, max(found, default=1))
        for index in range(count):
            process = child_name(svc.name, index, count)
            pid = pid_of(run_dir, process)
            for base in svc.durables:
                name = worker_durable(base, index, count)
                c = by_durable.get(name)
                out.append(
                    Worker(
                        service=svc.name,
                        index=index,
                        workers=count,
                        process=process,
                        pid=pid,
                        alive=pid is not None and alive(pid),
                        durable=name,
                        present=c is not None and c.present,
                        num_pending=c.num_pending if c is not None else 0,
                        num_ack_pending=c.num_ack_pending if c is not None else 0,
                    )
                )
    return out


async def _strategies(js: JetStreamContext, stream: str) -> list[ManagedStrategy]:
    """The managed strategies by id: the last StrategyChanged on each strategies.<id> (every change
    carries the whole entry)."""
    out = []
    for subject in sorted(await _subjects(js, stream, subjects.ALL_STRATEGIES)):
        change = await _last(js, stream, subject, StrategyChanged)
        if change is not None:
            out.append(
                ManagedStrategy(
                    id=change.strategy,
                    kind=change.kind,
                    status=change.status,
                    account=change.account,
                    revision=change.revision,
                )
            )
    return sorted(out, key=lambda s: s.id)


def _processes(run_dir: Path) -> tuple[ServiceProc, ...]:
    """Each registered service's pid in the supervisor's run directory, and whether it lives."""
    out = []
    for svc in registry.services():
        pid = pid_of(run_dir, svc.name)
        out.append(ServiceProc(name=svc.name, pid=pid, alive=pid is not None and alive(pid)))
        for index in range(MAX_WORKERS if svc.workers is not None and pid is None else 0):  # its workers
            name = child_name(svc.name, index, MAX_WORKERS)
            if (worker := pid_of(run_dir, name)) is not None:
                out.append(ServiceProc(name=name, pid=worker, alive=alive(worker)))
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
    session, config = await _session(js, stream) if info else (None, {})
    consumers = await _consumers(js, settings)
    workers = await _workers(js, stream, run_dir, session, config, consumers) if info else []
    split = {w.service for w in workers if w.workers > 1}  # their own durable is not expected
    consumers = [c for c in consumers if c.present or c.service not in split]
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
        consumers=tuple(consumers),
        venues=tuple(await _venues(js, stream, now_ns)) if info else (),
        accounts=tuple(
            msgspec.structs.replace(accounts[name], halted=overrides.get(name, everyone)) for name in sorted(accounts)
        ),
        halted=everyone or any(overrides.values()),
        halted_accounts=("*",) if everyone else tuple(sorted(a for a, h in overrides.items() if h)),
        dead_letters={s.removeprefix("dlq."): n for s, n in sorted(dlq.items())},
        session=session,
        health=Health(status="OK"),
        workers=tuple(workers),
        strategies=tuple(await _strategies(js, stream)) if info else (),
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
