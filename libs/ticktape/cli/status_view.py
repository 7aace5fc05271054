"""The view of `ticktape status`: the snapshot it gathers (msgspec Structs, so `--json` has stable
keys), its health (OK, or DEGRADED with a reason per problem), the screen (render), and the fold of
the operator's stop and resume events. Pure: no I/O and no clock, the time is a parameter."""

from __future__ import annotations

import msgspec

from ticktape.events import EmergencyStop, ResumeTrading, RiskHalted


class ServiceProc(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    pid: int | None
    alive: bool


class Consumer(msgspec.Struct, frozen=True, kw_only=True):
    service: str
    durable: str
    stream: str
    present: bool
    num_pending: int = 0
    num_ack_pending: int = 0
    num_redelivered: int = 0
    last_active_ns: int | None = None  # the last delivery, when the server reports it


class Worker(msgspec.Struct, frozen=True, kw_only=True):
    """One worker process of a service run as several (signal.workers > 1; one worker is the
    service itself): its process (pid file) and its durable on the events stream with its lag."""

    service: str
    index: int
    workers: int
    process: str
    pid: int | None
    alive: bool
    durable: str
    present: bool
    num_pending: int = 0
    num_ack_pending: int = 0


class ManagedStrategy(msgspec.Struct, frozen=True, kw_only=True):
    """A managed strategy (`ticktape strategies`) as its latest StrategyChanged on the log says."""

    id: str
    kind: str
    status: str
    account: str
    revision: int


class Shard(msgspec.Struct, frozen=True, kw_only=True):
    shard: int
    connected: bool
    symbols: int
    last_frame_age_ms: int | None
    reconnects: int


class Venue(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    universe_size: int | None = None
    universe_as_of_ns: int | None = None
    shards: tuple[Shard, ...] = ()
    shards_ts_ns: int | None = None
    last_bar_close_ns: int | None = None
    last_bar_age_s: float | None = None
    last_bar_subject: str | None = None


class Position(msgspec.Struct, frozen=True, kw_only=True):
    venue: str
    symbol: str
    quantity: float
    avg_price: float
    mark_price: float
    unrealized_pnl: float


class Account(msgspec.Struct, frozen=True, kw_only=True):
    account: str
    equity: float | None = None
    initial_equity: float | None = None
    realized_pnl: float | None = None
    unrealized_pnl: float | None = None
    gross_exposure: float | None = None
    halted: bool = False
    open_positions: tuple[Position, ...] = ()


class Session(msgspec.Struct, frozen=True, kw_only=True):
    session_id: str
    started_ns: int | None
    stopped: bool


class Health(msgspec.Struct, frozen=True, kw_only=True):
    status: str  # OK or DEGRADED
    reasons: tuple[str, ...] = ()


class Snapshot(msgspec.Struct, frozen=True, kw_only=True):
    ts_ns: int
    nats_url: str
    stream: str
    stream_present: bool  # False: no stack has provisioned this server's streams yet
    stream_messages: int
    stream_last_seq: int
    home: str
    stack_state: str | None  # run/state: running, stopping, stopped; None when there is none
    services: tuple[ServiceProc, ...]
    consumers: tuple[Consumer, ...]
    venues: tuple[Venue, ...]
    accounts: tuple[Account, ...]
    halted: bool
    halted_accounts: tuple[str, ...]  # "*" for every account
    dead_letters: dict[str, int]
    session: Session | None
    health: Health
    workers: tuple[Worker, ...] = ()  # of each service that runs as workers, for the current session
    strategies: tuple[ManagedStrategy, ...] = ()


class Thresholds(msgspec.Struct, frozen=True, kw_only=True):
    max_lag: int = 1000  # pending + ack pending messages of a durable
    max_bar_age_s: float = 180.0


def health(snap: Snapshot, limits: Thresholds) -> Health:
    """DEGRADED with a reason per problem (a service durable missing or lagging, a venue with no
    bar for too long, a shard down, dead letters, trading halted), else OK. When the run directory
    is there (stack_state), a service it has no pid of was not started (`ticktape up --services`):
    its durable is not expected."""
    reasons: list[str] = []
    started = {p.name for p in snap.services if p.pid is not None}
    if not snap.stream_present:
        reasons.append(f"no stream {snap.stream}")
    if snap.stack_state not in (None, "running"):
        reasons.append(f"stack {snap.stack_state}")
    for proc in snap.services:
        if proc.pid is not None and not proc.alive:
            reasons.append(f"service {proc.name} not running")
    for c in snap.consumers:
        if not c.present:
            if snap.stack_state is not None and c.service not in started:
                continue
            reasons.append(f"durable {c.durable} of {c.service} missing on {c.stream}")
        elif c.num_pending + c.num_ack_pending > limits.max_lag:
            reasons.append(f"durable {c.durable} lags {c.num_pending + c.num_ack_pending} > {limits.max_lag}")
    listed = {(c.durable, c.stream) for c in snap.consumers if not c.present}
    for w in snap.workers:  # a worker's durable the consumers above do not report missing
        if w.present or (w.durable, snap.stream) in listed or (snap.stack_state is not None and w.pid is None):
            continue
        reasons.append(f"durable {w.durable} of worker {w.process} missing on {snap.stream}")
    for v in snap.venues:
        if v.last_bar_age_s is None:
            reasons.append(f"no bar from {v.venue}")
        elif v.last_bar_age_s > limits.max_bar_age_s:
            reasons.append(f"no bar from {v.venue} for {_age(v.last_bar_age_s)}")
        down = [s.shard for s in v.shards if not s.connected]
        if down:
            reasons.append(f"{v.venue} shard(s) {','.join(map(str, down))} disconnected")
    total = sum(snap.dead_letters.values())
    if total:
        reasons.append(f"{total} dead letter(s)")
    if snap.halted:
        reasons.append(f"trading halted ({', '.join(snap.halted_accounts)})")
    return Health(status="DEGRADED" if reasons else "OK", reasons=tuple(reasons))


def render(snap: Snapshot, now_ns: int) -> str:
    """The status screen: health first, then one block per concern. Ages are relative to now_ns."""
    lines = [
        f"ticktape status  {snap.health.status}"
        + (f": {'; '.join(snap.health.reasons)}" if snap.health.reasons else "")
    ]
    lines.append(
        f"nats {snap.nats_url}  stream {snap.stream}: "
        + (f"{snap.stream_messages} msgs, last seq {snap.stream_last_seq}" if snap.stream_present else "missing")
        + f"  ({_age((now_ns - snap.ts_ns) / 1e9)} ago)"
    )
    session = "-"
    if snap.session is not None:
        started = _ago(snap.session.started_ns, now_ns)
        session = (
            f"{snap.session.session_id} ({'stopped' if snap.session.stopped else 'running'}, started {started} ago)"
        )
    lines.append(f"stack {snap.stack_state or 'not running here'} (home {snap.home})  session {session}")
    lines.append(f"trading {'HALTED (' + ', '.join(snap.halted_accounts) + ')' if snap.halted else 'active'}")

    lines += ["", "SERVICES"]
    procs = [
        f"{p.name} -" if p.pid is None else f"{p.name} {'up' if p.alive else 'DOWN'} (pid {p.pid})"
        for p in snap.services
    ]
    lines.append("  " + ("  ".join(procs) if procs else "-"))

    lines += ["", "CONSUMERS"]
    rows: list[tuple[str, ...]] = [
        ("service", "durable", "stream", "pending", "ack pending", "redelivered", "last active")
    ]
    for c in snap.consumers:
        if not c.present:
            rows.append((c.service, c.durable, c.stream, "missing", "", "", ""))
        else:
            rows.append(
                (
                    c.service,
                    c.durable,
                    c.stream,
                    str(c.num_pending),
                    str(c.num_ack_pending),
                    str(c.num_redelivered),
                    _ago(c.last_active_ns, now_ns),
                )
            )
    lines += _table(rows)

    if snap.workers:
        lines += ["", "WORKERS"]
        rows = [("worker", "of", "process", "durable", "pending", "ack pending")]
        for w in snap.workers:
            proc = "-" if w.pid is None else f"{'up' if w.alive else 'DOWN'} (pid {w.pid})"
            lag = (str(w.num_pending), str(w.num_ack_pending)) if w.present else ("missing", "")
            rows.append((w.process, f"{w.index + 1}/{w.workers}", proc, w.durable, *lag))
        lines += _table(rows)

    lines += ["", "MANAGED STRATEGIES"]
    rows = [("id", "kind", "status", "account", "revision")]
    rows += [(s.id, s.kind, s.status, s.account or "-", str(s.revision)) for s in snap.strategies]
    lines += _table(rows)

    lines += ["", "VENUES"]
    rows = [("venue", "universe", "shards up", "last bar", "bar age", "shard detail")]
    for v in snap.venues:
        up = sum(1 for s in v.shards if s.connected)
        detail = " ".join(
            f"#{s.shard}:{'up' if s.connected else 'DOWN'}/{s.symbols}sym/{s.reconnects}rc" for s in v.shards
        )
        rows.append(
            (
                v.venue,
                "-" if v.universe_size is None else str(v.universe_size),
                f"{up}/{len(v.shards)}" if v.shards else "-",
                v.last_bar_subject or "-",
                _ago(v.last_bar_close_ns, now_ns),
                detail or "-",
            )
        )
    lines += _table(rows)

    lines += ["", "ACCOUNTS"]
    rows = [("account", "equity", "realized", "unrealized", "gross exp", "halted", "open positions")]
    for a in snap.accounts:
        positions = " ".join(f"{p.symbol}:{p.quantity:g}@{p.avg_price:g}" for p in a.open_positions)
        rows.append(
            (
                a.account,
                _num(a.equity),
                _num(a.realized_pnl),
                _num(a.unrealized_pnl),
                _num(a.gross_exposure),
                "yes" if a.halted else "no",
                positions or "-",
            )
        )
    lines += _table(rows)

    lines += ["", "DEAD LETTERS"]
    dead = [f"{svc} {n}" for svc, n in sorted(snap.dead_letters.items())]
    lines.append("  " + ("  ".join(dead) if dead else "none"))
    return "\n".join(lines) + "\n"


def _table(rows: list[tuple[str, ...]]) -> list[str]:
    if len(rows) == 1:
        return ["  -"]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _age(seconds: float) -> str:
    s = max(0, int(seconds))
    if s < 120:
        return f"{s}s"
    if s < 7200:
        return f"{s // 60}m"
    if s < 172800:
        return f"{s // 3600}h"
    return f"{s // 86400}d"


def _ago(ts_ns: int | None, now_ns: int) -> str:
    return "-" if ts_ns is None else _age((now_ns - ts_ns) / 1e9)


def halts(events: list[EmergencyStop | ResumeTrading | RiskHalted]) -> tuple[bool, dict[str, bool]]:
    """Fold the operator's control events and risk's own halts in stream order as risk does:
    account '*' sets every account (and clears per-account overrides), another account only
    itself. Returns (halted for every account, per-account overrides)."""
    everyone = False
    accounts: dict[str, bool] = {}
    for event in events:
        halted = isinstance(event, EmergencyStop | RiskHalted)
        if event.account == "*":
            everyone = halted
            accounts = {}
        else:
            accounts[event.account] = halted
    return everyone, accounts
