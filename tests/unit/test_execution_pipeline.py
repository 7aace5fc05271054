"""signal -> risk -> execution chained through one in-memory stream, on synthetic and real bars."""

from __future__ import annotations

import json
import re
import sqlite3
from collections import deque
from collections.abc import Iterable
from pathlib import Path

import msgspec
import pytest

from services.execution.config import ExecutionConfig
from services.execution.core import ExecutionCore, order_id_for
from services.risk.config import RiskConfig
from services.risk.core import RiskCore
from services.signal.config import EmaCrossConfig, SignalConfig
from services.signal.core import SignalCore
from ticktape import ids
from ticktape.clock import MINUTE_NS, NS_PER_MS, NS_PER_S
from ticktape.events import (
    AccountUpdated,
    BarClosed,
    EmergencyStop,
    Event,
    OrderApproved,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    PositionUpdated,
    SignalGenerated,
)
from ticktape.testing.data import shared_data

T0 = 1_700_000_000 * 1_000_000_000


def make_bar(open_time: int, o: float, h: float, lo: float, c: float, v: float, symbol: str = "BTCUSDT") -> BarClosed:
    close_time = open_time + MINUTE_NS - NS_PER_MS
    return BarClosed(
        event_id=ids.bar_id("binance", symbol, "1m", open_time),
        ts_event=close_time,
        ts_init=close_time,
        venue="binance",
        symbol=symbol,
        timeframe="1m",
        open_time=open_time,
        close_time=close_time,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        quote_volume=v * c,
    )


class Pipeline:
    """The three cores on one FIFO stream: every event reaches every core, in stream order,
    and each core's outputs are appended to the stream, as on the shared JetStream stream."""

    def __init__(self, signal: SignalConfig, risk: RiskConfig, execution: ExecutionConfig) -> None:
        self.signal = SignalCore(signal)
        self.risk = RiskCore(risk)
        self.execution = ExecutionCore(execution)
        self.log: list[Event] = []

    def run(self, inputs: Iterable[Event]) -> list[Event]:
        for event in inputs:
            queue: deque[Event] = deque([event])
            while queue:
                e = queue.popleft()
                self.log.append(e)
                for core in (self.signal, self.risk, self.execution):
                    queue.extend(core.handle(e))
        return self.log


def of(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def assert_consistent(p: Pipeline) -> None:
    """Positions reported by execution equal the fills, and risk's view agrees."""
    log = p.log
    fills = of(log, OrderFilled)
    for (account, symbol), pos in _last_positions(log).items():
        signed = sum(
            f.quantity if f.side == "buy" else -f.quantity for f in fills if (f.account, f.symbol) == (account, symbol)
        )
        assert pos.quantity == pytest.approx(signed, abs=1e-9)
        assert p.risk.books[account].positions[("binance", symbol)] == pos.quantity
    for acct in of(log, AccountUpdated):
        assert acct.equity == pytest.approx(
            acct.initial_equity + acct.realized_pnl + acct.unrealized_pnl - acct.fees_paid
        )
    for f in fills:  # every fill is a submitted order's, at the open of a later bar
        assert f.order_id in {s.order_id for s in of(log, OrderSubmitted)}
    assert not p.risk.pending or set(p.risk.pending) == set(p.execution.pending)


def _last_positions(log: list[Event]) -> dict[tuple[str, str], PositionUpdated]:
    last: dict[tuple[str, str], PositionUpdated] = {}
    for e in of(log, PositionUpdated):
        last[(e.account, e.symbol)] = e
    return last


def test_chain_when_signal_fires_then_order_fills_next_bar_with_one_correlation_id() -> None:
    p = Pipeline(
        SignalConfig(strategies=(EmaCrossConfig(name="x", fast=2, slow=4),)),
        msgspec.convert({"accounts": [{"strategies": ["x"]}]}, RiskConfig),
        ExecutionConfig(),
    )
    closes = [100.0, 101.0, 102.0, 103.0, 104.0, 105.0]
    bars = [make_bar(T0 + i * MINUTE_NS, c - 0.5, c + 1, c - 1, c, 1.0) for i, c in enumerate(closes)]
    log = p.run(bars)

    (sig,) = of(log, SignalGenerated)
    signal_bar = bars[3]
    assert (sig.side, sig.causation_id) == ("long", signal_bar.event_id)
    (appr,) = of(log, OrderApproved)
    assert (appr.causation_id, appr.quantity) == (sig.event_id, 0.1 * 10_000 / 103.0)
    (sub,) = of(log, OrderSubmitted)
    assert (sub.causation_id, sub.order_id) == (appr.event_id, order_id_for(appr.event_id))
    (fill,) = of(log, OrderFilled)
    assert (fill.causation_id, fill.event_id) == (sub.event_id, ids.child_id(bars[4].event_id, "execution.fill", 0))
    assert fill.price == bars[4].open * (1 + 2.0 / 1e4)
    chain = [sig, appr, sub, fill, of(log, PositionUpdated)[0]]
    assert {e.correlation_id for e in chain} == {signal_bar.event_id}
    assert log.index(sub) < log.index(bars[4]) < log.index(fill)
    assert_consistent(p)
    assert not p.risk.pending and not p.execution.pending


def test_chain_when_emergency_stop_then_risk_rejects_and_nothing_is_pending() -> None:
    p = Pipeline(
        SignalConfig(strategies=(EmaCrossConfig(name="x", fast=2, slow=4),)),
        msgspec.convert({"accounts": [{"strategies": ["x"]}]}, RiskConfig),
        ExecutionConfig(),
    )
    stop = EmergencyStop(event_id="stop", ts_event=T0, ts_init=T0, reason="test")
    bars = [make_bar(T0 + i * MINUTE_NS, c, c, c, c, 1.0) for i, c in enumerate([1.0, 2, 3, 4, 5])]
    log = p.run([stop, *bars])
    assert [r.reason for r in of(log, OrderRejected)] == ["halted"]
    assert not of(log, OrderSubmitted)


def load_octobot_1m(path: Path) -> list[BarClosed]:
    """The capture's 1m BTC/USDT candles as bars, one per open time, oldest first."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT candle FROM ohlcv WHERE time_frame = '1m' AND symbol = 'BTC/USDT'").fetchall()
    candles: dict[int, list[float]] = {}
    for (raw,) in rows:
        t, o, h, lo, c, v = json.loads(raw)
        candles[int(t)] = [o, h, lo, c, v]
    return [make_bar(t * NS_PER_S, *candles[t]) for t in sorted(candles)]


def test_chain_when_real_bars_then_default_config_signals_approves_and_fills() -> None:
    path = shared_data("octobot", "AbstractExchangeHistoryCollector_1581774962.1269426.data")
    bars = load_octobot_1m(path)
    assert len(bars) > 400

    def run() -> Pipeline:
        p = Pipeline(SignalConfig(), RiskConfig(), ExecutionConfig())
        p.run(bars)
        return p

    p = run()
    log = p.log
    signals = of(log, SignalGenerated)
    assert {s.strategy for s in signals} == {"ensemble9", "ema_cross_9_21"}
    approvals = of(log, OrderApproved)
    assert approvals and all(a.strategy == "ensemble9" for a in approvals)
    assert not of(log, OrderRejected)
    fills = of(log, OrderFilled)
    assert len(fills) >= len(approvals) - 1  # the last one may still wait for its next bar
    for f in fills:
        appr = next(a for a in approvals if order_id_for(a.event_id) == f.order_id)
        assert f.correlation_id == appr.correlation_id == ids.bar_id("binance", "BTCUSDT", "1m", appr.bar_open_time)
        assert f.bar_open_time == appr.bar_open_time + MINUTE_NS
    assert_consistent(p)
    assert [msgspec.json.encode(e) for e in run().log] == [msgspec.json.encode(e) for e in log]


BANNED = re.compile(
    r"\b(time\.time|time\.monotonic|datetime\.now|datetime\.utcnow|uuid4|uuid1|asyncio|await)\b"
    r"|^\s*import random|^\s*from random",
    re.M,
)


@pytest.mark.parametrize("service", ["signal", "risk", "execution"])
def test_cores_when_read_then_use_no_clock_randomness_or_io(service: str) -> None:
    root = Path(__file__).resolve().parents[2] / "services" / service
    for name in ("core.py", "config.py", "ema.py", "strategies.py", "paper.py", "portfolio.py"):
        f = root / name
        if f.exists():
            assert not BANNED.search(f.read_text()), f"{f} uses a clock, randomness or async"
