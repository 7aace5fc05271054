"""`ticktape status`: the screen, the health line and the halt fold, on hand-built snapshots."""

from __future__ import annotations

import json

import msgspec

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
from ticktape.events import EmergencyStop, ResumeTrading

S = 1_000_000_000
NOW = 1_800_000_000 * S


def snapshot(**changes: object) -> Snapshot:
    base = Snapshot(
        ts_ns=NOW - 2 * S,
        nats_url="nats://127.0.0.1:4222",
        stream="TICKTAPE",
        stream_present=True,
        stream_messages=1234,
        stream_last_seq=1240,
        home="/srv/ticktape",
        stack_state="running",
        services=(ServiceProc(name="execution", pid=4242, alive=True),),
        consumers=(
            Consumer(
                service="execution",
                durable="execution",
                stream="TICKTAPE",
                present=True,
                num_pending=3,
                num_ack_pending=1,
                num_redelivered=0,
                last_active_ns=NOW - 5 * S,
            ),
        ),
        venues=(
            Venue(
                venue="binance_usdm",
                universe_size=25,
                universe_as_of_ns=NOW - 600 * S,
                shards=(
                    Shard(shard=0, connected=True, symbols=13, last_frame_age_ms=40, reconnects=0),
                    Shard(shard=1, connected=True, symbols=12, last_frame_age_ms=55, reconnects=2),
                ),
                shards_ts_ns=NOW - 3 * S,
                last_bar_close_ns=NOW - 30 * S,
                last_bar_age_s=28.0,
                last_bar_subject="md.bar.binance_usdm.BTCUSDT.1m",
            ),
        ),
        accounts=(
            Account(
                account="paper-main",
                equity=10_250.5,
                initial_equity=10_000.0,
                realized_pnl=200.0,
                unrealized_pnl=60.5,
                gross_exposure=1500.0,
                open_positions=(
                    Position(
                        venue="binance_usdm",
                        symbol="BTCUSDT",
                        quantity=0.015,
                        avg_price=100_000.0,
                        mark_price=100_400.0,
                        unrealized_pnl=6.0,
                    ),
                ),
            ),
        ),
        halted=False,
        halted_accounts=(),
        dead_letters={},
        session=Session(session_id="s-20261201", started_ns=NOW - 3 * 3600 * S, stopped=False),
        health=Health(status="OK"),
    )
    snap = msgspec.structs.replace(base, **changes)
    return msgspec.structs.replace(snap, health=health(snap, Thresholds()))


def test_a_healthy_stack_renders_ok_with_every_section():
    snap = snapshot()
    assert snap.health == Health(status="OK")
    screen = render(snap, NOW)
    first, *rest = screen.splitlines()
    assert first == "ticktape status  OK"
    for section in ("SERVICES", "CONSUMERS", "VENUES", "ACCOUNTS", "DEAD LETTERS"):
        assert section in rest
    consumer = next(line for line in rest if line.strip().startswith("execution  execution"))
    assert consumer.split()[3:7] == ["3", "1", "0", "5s"]
    venue = next(line for line in rest if line.strip().startswith("binance_usdm"))
    assert venue.split()[1:5] == ["25", "2/2", "md.bar.binance_usdm.BTCUSDT.1m", "30s"]
    account = next(line for line in rest if line.strip().startswith("paper-main"))
    assert account.split()[1:] == ["10,250.50", "200.00", "60.50", "1,500.00", "no", "BTCUSDT:0.015@100000"]
    assert "session s-20261201 (running, started 3h ago)" in screen
    assert "trading active" in screen


def test_each_problem_is_a_reason_on_the_health_line():
    snap = snapshot(
        stack_state="stopping",
        services=(
            ServiceProc(name="execution", pid=4242, alive=False),
            ServiceProc(name="signal", pid=4243, alive=True),
            ServiceProc(name="risk", pid=4244, alive=True),
        ),
        consumers=(
            Consumer(service="signal", durable="signal", stream="TICKTAPE", present=False),
            Consumer(service="risk", durable="risk", stream="TICKTAPE", present=True, num_pending=5000),
        ),
        venues=(
            Venue(
                venue="binance_usdm",
                shards=(Shard(shard=1, connected=False, symbols=12, last_frame_age_ms=None, reconnects=9),),
                last_bar_close_ns=NOW - 900 * S,
                last_bar_age_s=900.0,
            ),
            Venue(venue="bybit"),
        ),
        dead_letters={"execution": 2, "risk": 1},
        halted=True,
        halted_accounts=("*",),
    )
    assert snap.health.status == "DEGRADED"
    assert snap.health.reasons == (
        "stack stopping",
        "service execution not running",
        "durable signal of signal missing on TICKTAPE",
        "durable risk lags 5000 > 1000",
        "no bar from binance_usdm for 15m",
        "binance_usdm shard(s) 1 disconnected",
        "no bar from bybit",
        "3 dead letter(s)",
        "trading halted (*)",
    )
    screen = render(snap, NOW)
    assert screen.splitlines()[0] == "ticktape status  DEGRADED: " + "; ".join(snap.health.reasons)
    assert "trading HALTED (*)" in screen
    assert "execution 2  risk 1" in screen
    assert "signal   signal   TICKTAPE  missing" in screen
    assert "execution DOWN (pid 4242)  signal up (pid 4243)" in screen


def test_a_missing_durable_counts_only_for_a_service_the_stack_started():
    missing = (Consumer(service="signal", durable="signal", stream="TICKTAPE", present=False),)
    procs = (ServiceProc(name="execution", pid=4242, alive=True), ServiceProc(name="signal", pid=None, alive=False))
    not_started = snapshot(consumers=missing, services=procs)  # run/state, no signal.pid: `up --services`
    assert not_started.health == Health(status="OK")
    assert "signal -" in render(not_started, NOW)
    unknown = snapshot(consumers=missing, stack_state=None, services=())  # no run directory here
    assert unknown.health.reasons == ("durable signal of signal missing on TICKTAPE",)


def test_a_server_without_the_stream_is_degraded():
    snap = snapshot(stream_present=False, stream_messages=0, stream_last_seq=0, venues=(), accounts=())
    assert snap.health.reasons == ("no stream TICKTAPE",)
    assert "stream TICKTAPE: missing" in render(snap, NOW)


def test_thresholds_move_the_line():
    snap = snapshot()
    assert health(snap, Thresholds(max_lag=3)).reasons == ("durable execution lags 4 > 3",)
    assert health(snap, Thresholds(max_bar_age_s=10)).reasons == ("no bar from binance_usdm for 28s",)


def test_the_snapshot_encodes_to_json_with_stable_keys():
    doc = json.loads(msgspec.json.encode(snapshot()))
    assert list(doc) == [
        "ts_ns",
        "nats_url",
        "stream",
        "stream_present",
        "stream_messages",
        "stream_last_seq",
        "home",
        "stack_state",
        "services",
        "consumers",
        "venues",
        "accounts",
        "halted",
        "halted_accounts",
        "dead_letters",
        "session",
        "health",
        "workers",
        "strategies",
    ]
    assert doc["accounts"][0]["open_positions"][0]["quantity"] == 0.015
    assert msgspec.json.decode(msgspec.json.encode(snapshot()), type=Snapshot) == snapshot()


def _stop(account: str) -> EmergencyStop:
    return EmergencyStop(event_id=f"stop-{account}", ts_event=1, ts_init=1, reason="r", account=account)


def _resume(account: str) -> ResumeTrading:
    return ResumeTrading(event_id=f"resume-{account}", ts_event=1, ts_init=1, reason="r", account=account)


def test_halts_fold_the_latest_control_event_per_account():
    assert halts([]) == (False, {})
    assert halts([_stop("*")]) == (True, {})
    assert halts([_stop("*"), _resume("*")]) == (False, {})
    assert halts([_stop("*"), _resume("a")]) == (True, {"a": False})
    assert halts([_stop("a"), _stop("*"), _resume("*")]) == (False, {})
    assert halts([_stop("a"), _stop("b"), _resume("b")]) == (False, {"a": True, "b": False})


def worker(index: int, *, pid: int | None = 100, alive: bool = True, present: bool = True, pending: int = 0) -> Worker:
    return Worker(
        service="signal",
        index=index,
        workers=3,
        process=f"signal-p{index}",
        pid=pid,
        alive=alive,
        durable=f"signal-p{index}",
        present=present,
        num_pending=pending,
    )


def test_the_workers_and_the_managed_strategies_are_shown():
    snap = snapshot(
        workers=(worker(0, pending=7), worker(1, pid=101, alive=False), worker(2, pid=None, present=False)),
        strategies=(
            ManagedStrategy(id="mom", kind="ema_cross", status="paused", account="paper-b", revision=2),
            ManagedStrategy(id="rev", kind="rsi_reversion", status="live", account="", revision=1),
        ),
    )
    screen = render(snap, NOW)
    rows = screen.split("WORKERS\n")[1].split("\n\n")[0].splitlines()
    assert rows[1].split() == ["signal-p0", "1/3", "up", "(pid", "100)", "signal-p0", "7", "0"]
    assert rows[2].split() == ["signal-p1", "2/3", "DOWN", "(pid", "101)", "signal-p1", "0", "0"]
    assert rows[3].split() == ["signal-p2", "3/3", "-", "signal-p2", "missing"]
    managed = screen.split("MANAGED STRATEGIES\n")[1].split("\n\n")[0].splitlines()
    assert [r.split() for r in managed[1:]] == [
        ["mom", "ema_cross", "paused", "paper-b", "2"],
        ["rev", "rsi_reversion", "live", "-", "1"],
    ]


def test_a_worker_durable_missing_is_degraded_unless_its_process_was_not_started():
    started = snapshot(workers=(worker(0), worker(1, present=False)))
    assert health(started, Thresholds()).reasons == ("durable signal-p1 of worker signal-p1 missing on TICKTAPE",)
    not_started = snapshot(workers=(worker(0), worker(1, pid=None, present=False)))
    assert health(not_started, Thresholds()).status == "OK"
    here_unknown = snapshot(stack_state=None, workers=(worker(0), worker(1, pid=None, present=False)))
    assert health(here_unknown, Thresholds()).status == "DEGRADED"
