"""Replay compatibility of issue #8's risk controls, and their replay.

tests/fixtures/sessions/pre-issue8-*.ttsession.gz were recorded by the cores as they were before
these controls existed (see the README beside them): operator stops and resumes while signals
that would reduce a position arrive (then rejected "halted"), per-account and global stops, a
top-level `accounts:` configuration and a legacy risk.accounts / execution.accounts one. They must
still verify byte for byte, and would not if the new default (reduce_while_halted) were applied
to them. A session recorded with every new control on, and a drawdown breach on real bars (a
crash), replay byte for byte too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.bars import wave_bars
from tests.support.pipeline import run_cores
from ticktape import ids
from ticktape.cli.main import main
from ticktape.clock import MINUTE_NS, NS_PER_MS
from ticktape.corespec import load_specs
from ticktape.events import (
    AccountUpdated,
    BarClosed,
    EmergencyStop,
    Event,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    PositionUpdated,
    ResumeTrading,
    RiskHalted,
)
from ticktape.events.codec import decode
from ticktape.replay.fileformat import SessionFile, write_session_file
from ticktape.replay.records import Record, SessionMeta
from ticktape.replay.simulate import simulate_session
from ticktape.replay.verify import Verifier, VerifyResult
from ticktape.testing.data import shared_data

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sessions"
PRE_ISSUE8 = sorted(FIXTURES.glob("pre-issue8-*.ttsession.gz"))


def read(path: Path) -> tuple[SessionMeta, list[Record]]:
    with SessionFile(path) as f:
        return f.session, list(f.records())


def verify(meta: SessionMeta, records: list[Record], config: dict[str, Any] | None = None) -> VerifyResult:
    doc = meta.config_doc() if config is None else config
    verifier = Verifier(load_specs(doc, names=meta.services or None), meta)
    for rec in records:
        verifier.feed(rec)
    return verifier.finish()


def test_the_fixtures_are_there_and_exercise_halts_on_reducing_signals() -> None:
    assert [p.name for p in PRE_ISSUE8] == ["pre-issue8-accounts.ttsession.gz", "pre-issue8-legacy.ttsession.gz"]
    for path in PRE_ISSUE8:
        meta, records = read(path)
        assert "reduce_while_halted" not in meta.config
        events = [decode(r.data) for r in records]
        assert sum(isinstance(e, EmergencyStop) for e in events) == 3
        assert sum(isinstance(e, OrderRejected) and e.reason == "halted" for e in events) >= 10


@pytest.mark.parametrize("path", PRE_ISSUE8, ids=lambda p: p.name)
def test_a_session_recorded_before_the_risk_controls_replays_byte_for_byte(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["replay", str(path), "--verify"]) == 0, capsys.readouterr().out[-2000:]


@pytest.mark.parametrize("path", PRE_ISSUE8, ids=lambda p: p.name)
def test_it_replays_with_reduce_while_halted_off_as_it_ran_and_would_diverge_with_it_on(path: Path) -> None:
    meta, records = read(path)
    doc = meta.config_doc()
    assert doc["risk"]["reduce_while_halted"] is False  # absent from the recording: off, as it ran
    assert verify(meta, records).ok
    today = {**doc, "risk": {**doc.get("risk", {}), "reduce_while_halted": True}}
    result = verify(meta, records, today)
    assert not result.ok
    assert result.divergences[0].core == "risk"


GUARDED = {
    "signal": {"strategies": [{"kind": "ema_cross", "name": "fast", "fast": 3, "slow": 8}]},
    "accounts": [
        {
            "name": "guarded",
            "strategies": ["*"],
            "limits": {
                "fraction": 0.5,
                "max_notional_per_symbol": 8000,
                "stop_loss": 0.02,
                "take_profit": 0.04,
                "cooldown_minutes": 10,
                "max_open_positions": 1,
                "max_order_notional": 6000,
                "max_drawdown": 0.01,
                "on_breach": "flatten",
            },
        },
        {"name": "plain", "strategies": ["*"]},
    ],
    "risk": {"max_daily_loss": 0.5, "reduce_while_halted": True},
}


def test_a_session_with_every_control_on_replays_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = sorted(
        wave_bars("BTCUSDT", 130) + wave_bars("ETHUSDT", 130, period=30), key=lambda b: (b.open_time, b.symbol)
    )
    inputs: list[Event] = []
    for i, b in enumerate(bars):
        inputs.append(b)
        t = b.ts_init + 1
        if i == 150:
            inputs.append(
                EmergencyStop(event_id="s1", ts_event=t, ts_init=t, reason="drill", account="plain", flatten=True)
            )
        if i == 200:
            inputs.append(ResumeTrading(event_id="r1", ts_event=t, ts_init=t, reason="done"))
    meta, records = simulate_session(inputs, GUARDED, "20250101T000000Z-ctrl01")
    events = [decode(r.data) for r in records]
    reasons = {(type(e).__name__, getattr(e, "reason", None)) for e in events}
    assert {("RiskHalted", "max_drawdown"), ("OrderRejected", "max_open_positions")} <= reasons
    assert {("OrderRejected", "max_order_notional"), ("OrderSubmitted", "take_profit")} <= reasons
    assert ("OrderSubmitted", "flatten") in reasons
    path = tmp_path / "controls.ttsession.gz"
    write_session_file(path, meta, records)
    assert main(["replay", str(path), "--verify"]) == 0, capsys.readouterr().out[-2000:]


def crash_bars() -> list[BarClosed]:
    """Real 1m bars (freqtrade's UNITTEST/BTC capture, 2017-11-12): a 34 % fall over six hours."""
    rows = json.loads(shared_data("freqtrade", "UNITTEST_BTC-1m.json").read_text())[9600:10200]
    out = []
    for t_ms, o, h, lo, c, v in rows:
        t = int(t_ms) * 1_000_000
        out.append(
            BarClosed(
                event_id=ids.bar_id("binance", "UNITTESTBTC", "1m", t),
                ts_event=t + MINUTE_NS - NS_PER_MS,
                ts_init=t + MINUTE_NS,
                venue="binance",
                symbol="UNITTESTBTC",
                timeframe="1m",
                open_time=t,
                close_time=t + MINUTE_NS - NS_PER_MS,
                open=o,
                high=h,
                low=lo,
                close=c,
                volume=v,
                quote_volume=v * c,
            )
        )
    return out


CRASH = {
    "signal": {"strategies": [{"kind": "ema_cross", "name": "x", "fast": 9, "slow": 21}]},
    "accounts": [
        {
            "name": "guarded",
            "strategies": ["x"],
            "limits": {
                "fraction": 1.0,
                "allow_short": False,
                "max_notional_per_symbol": 20_000,
                "max_drawdown": 0.03,
                "on_breach": "flatten",
            },
        },
        {
            "name": "unguarded",
            "strategies": ["x"],
            "limits": {"fraction": 1.0, "allow_short": False, "max_notional_per_symbol": 20_000},
        },
    ],
}


def test_a_drawdown_breach_in_a_recorded_crash_halts_and_flattens_the_account(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bars = crash_bars()
    assert min(b.close for b in bars) < 0.7 * max(b.close for b in bars)  # the crash is in the slice
    log = run_cores(bars, CRASH)
    mine = [e for e in log if getattr(e, "account", None) == "guarded"]
    (halt,) = [e for e in mine if isinstance(e, RiskHalted)]
    assert (halt.reason, halt.flatten, halt.limit) == ("max_drawdown", True, 0.03)
    assert halt.equity <= halt.reference_equity * 0.97
    before = [e for e in mine[: mine.index(halt)] if isinstance(e, AccountUpdated)]
    assert halt.causation_id == before[-1].event_id  # the first mark 3 % below the running peak
    peak = 10_000.0
    for mark in before[:-1]:
        peak = max(peak, mark.equity)
        assert mark.equity > peak * 0.97
    assert max(peak, before[-1].equity) == halt.reference_equity
    after = mine[mine.index(halt) + 1 :]
    flatten = [e for e in after if isinstance(e, OrderSubmitted) and e.reason == "flatten"]
    assert len(flatten) == 1 and flatten[0].reduce_only is True
    fills = [e for e in after if isinstance(e, OrderFilled)]
    assert [f.order_id for f in fills] == [flatten[0].order_id]  # nothing else trades after the halt
    assert [p.quantity for p in after if isinstance(p, PositionUpdated)][-1] == 0.0
    later = [a.equity for a in after if isinstance(a, AccountUpdated)]
    assert later and len(set(later[1:])) <= 1  # flat: the crash no longer moves its equity
    assert any(isinstance(e, OrderRejected) and e.reason == "halted" for e in after)
    unguarded_fills = [e for e in log if isinstance(e, OrderFilled) and e.account == "unguarded"]
    assert any(log.index(f) > log.index(halt) for f in unguarded_fills)  # the other account trades on

    meta, records = simulate_session(bars, CRASH, "20250101T000000Z-crash1")
    path = tmp_path / "crash.ttsession.gz"
    write_session_file(path, meta, records)
    assert main(["replay", str(path), "--verify"]) == 0, capsys.readouterr().out[-2000:]
