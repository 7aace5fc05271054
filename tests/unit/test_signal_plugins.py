"""The strategy plug-in API through the signal core and its loading: kinds found by import path,
typed parameters checked with the key path in the error, subscriptions, history windows as
arrays, per-symbol state, target weights, diagnostics, quarantine with a reason event, and a
replay of a session that ran a plug-in verifying byte for byte."""

from __future__ import annotations

import math

import msgspec
import numpy as np
import pytest

from services.signal import loading
from services.signal.config import SignalConfig
from services.signal.core import SignalCore
from tests.support.strategies import Lookback
from ticktape import config as cfg
from ticktape import ids
from ticktape.clock import MINUTE_NS, TIMEFRAME_NS
from ticktape.corespec import CoreSpec, load_specs
from ticktape.events import BarClosed, Event, SignalGenerated, StrategyQuarantined
from ticktape.events.codec import decode, encode
from ticktape.replay.records import SessionMeta
from ticktape.replay.simulate import simulate_session
from ticktape.replay.verify import Verifier

T0 = 1_700_000_000 * 1_000_000_000 - (1_700_000_000 * 1_000_000_000) % (60 * MINUTE_NS)
SUPPORT = "tests.support.strategies"


def bar(i: int, close: float, *, symbol: str = "BTCUSDT", timeframe: str = "1m", venue: str = "binance") -> BarClosed:
    step = TIMEFRAME_NS[timeframe]
    open_time = T0 + i * step
    return BarClosed(
        event_id=ids.bar_id(venue, symbol, timeframe, open_time),
        ts_event=open_time + step - 1_000_000,
        ts_init=open_time + step,
        venue=venue,
        symbol=symbol,
        timeframe=timeframe,
        open_time=open_time,
        close_time=open_time + step - 1_000_000,
        open=close,
        high=close,
        low=close,
        close=close,
        volume=1.0 + i,
        quote_volume=close,
    )


def core_of(*entries: dict, **section: object) -> SignalCore:
    return loading.core(cfg.load_section("signal", SignalConfig, {"signal": {**section, "strategies": list(entries)}}))


def signals(events: list[Event]) -> list[SignalGenerated]:
    return [e for e in events if isinstance(e, SignalGenerated)]


CLOSES = [100.0, 101.0, 103.0, 102.0, 99.0, 98.0, 100.0, 104.0, 104.0, 104.0, 104.0, 97.0]


# --- parameters and kinds --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (
            [{"kind": "ema_cross"}, {"kind": f"{SUPPORT}:Lookback", "name": "lb", "params": {"period": 0}}],
            r"config error: signal\.strategies\[1\]\.params\.period: Expected `int` >= 1 \(got 0\)",
        ),
        (
            [{"kind": f"{SUPPORT}:Lookback", "name": "lb", "params": {"perod": 3}}],
            r"signal\.strategies\[0\]\.params\.perod: unknown key; allowed: period, threshold",
        ),
        (
            [{"kind": "ema_cross", "fast": 26, "slow": 12}],
            r"signal\.strategies\[0\]\.params: fast must be < slow \(got fast=26, slow=12\)",
        ),
        (
            [{"kind": "ensemble", "params": {"heads": [{"fast": 3, "slow": 10}], "k": 2}}],
            r"signal\.strategies\[0\]\.params: k must satisfy n/2 < k <= n",
        ),
        (
            [{"kind": "ensemble", "params": {"heads": [{"fast": 3, "slow": "x"}], "k": 1}}],
            r"signal\.strategies\[0\]\.params\.heads\[0\]\.slow: Expected `int`, got `str`",
        ),
        (
            [{"kind": "ema_cross"}, {"kind": "ichimoku"}],
            r"signal\.strategies\[1\]\.kind: unknown strategy kind 'ichimoku'",
        ),
        ([{"kind": "nope.nothing:X", "name": "x"}], r"signal\.strategies\[0\]\.kind: cannot import 'nope\.nothing:X'"),
        (
            [{"kind": f"{SUPPORT}:NOT_A_STRATEGY", "name": "x"}],
            r"strategies\[0\]\.kind: .* is a int, not a subclass of ticktape\.strategy\.Strategy",
        ),
        (
            [{"kind": f"{SUPPORT}:NeedsEven", "name": "x", "params": {"period": 3}}],
            r"signal\.strategies\[0\]: tests\.support\.strategies:NeedsEven cannot start: ValueError: period must "
            r"be even \(got 3\)",
        ),
    ],
)
def test_loading_when_a_strategy_entry_is_wrong_then_config_error_names_the_key_path(entries, message) -> None:
    with pytest.raises(cfg.ConfigError, match=message):
        loading.from_raw({"signal": {"strategies": entries}})


def test_loading_when_kind_is_an_import_path_then_params_are_the_typed_struct() -> None:
    core = core_of({"kind": f"{SUPPORT}:Lookback", "name": "lb", "params": {"period": 4, "threshold": 0.01}})
    (strategy,) = core.strategies
    assert isinstance(strategy, Lookback) and strategy.name == "lb"
    assert (strategy.params.period, strategy.params.threshold) == (4, 0.01)
    assert core.filter_subjects == ("md.bar.*.*.1m", "strategies.>")


# --- history windows -------------------------------------------------------------------------


def test_history_window_when_read_then_holds_the_last_bars_seen_as_arrays() -> None:
    core = core_of({"kind": f"{SUPPORT}:Lookback", "name": "lb", "params": {"period": 3}})
    out: list[Event] = []
    for i, c in enumerate(CLOSES):
        out += core.handle(bar(i, c))
    sigs = signals(out)
    assert sigs, "the lookback strategy never signalled"
    for s in sigs:
        i = (s.bar_open_time - T0) // MINUTE_NS
        window = CLOSES[i - 3 : i + 1]  # independent of the ring buffer: the list itself
        assert s.diagnostics["window"] == window
        assert s.diagnostics["first_open"] == T0 + (i - 3) * MINUTE_NS
        assert s.diagnostics["change"] == window[-1] / window[0] - 1
        assert s.side == ("long" if window[-1] > window[0] else "short" if window[-1] < window[0] else "flat")


def test_history_window_when_far_more_bars_than_capacity_then_still_exact() -> None:
    core = core_of({"kind": f"{SUPPORT}:Lookback", "name": "lb", "params": {"period": 5}})
    closes = [100.0 + math.sin(i / 3.0) * 5 for i in range(200)]
    got = {}
    for i, c in enumerate(closes):
        for s in signals(core.handle(bar(i, c))):
            got[i] = s.diagnostics["window"]
    assert len(got) > 10
    assert all(w == closes[i - 5 : i + 1] for i, w in got.items())


def test_history_arrays_are_read_only_numpy_views() -> None:
    core = core_of({"kind": f"{SUPPORT}:Lookback", "name": "lb", "params": {"period": 2}})
    for i, c in enumerate(CLOSES[:4]):
        core.handle(bar(i, c))
    window = core._history.last("binance", "BTCUSDT", "1m", 3)
    assert isinstance(window.close, np.ndarray) and window.close.dtype == np.float64
    assert window.open_time.dtype == np.int64 and len(window) == 3
    assert window.close.tolist() == CLOSES[1:4] and window.volume.tolist() == [2.0, 3.0, 4.0]
    with pytest.raises(ValueError, match="read-only"):
        window.close[0] = 0.0


def test_multi_timeframe_when_subscribed_to_1m_and_reading_1h_then_sees_the_last_closed_hour() -> None:
    core = core_of({"kind": f"{SUPPORT}:HourlyBias", "name": "hb", "subscribe": [{"timeframes": ["1m"]}]})
    assert core.filter_subjects == ("md.bar.*.*.1m", "md.bar.*.*.1h", "strategies.>")
    assert signals(core.handle(bar(0, 100.0))) == []  # no hour closed yet: no opinion
    assert core.handle(bar(0, 100.0, timeframe="1h")) == []  # read as history only
    (up,) = signals(core.handle(bar(61, 101.0)))
    assert (up.side, up.timeframe, up.diagnostics) == ("long", "1m", {"hour": T0, "hour_close": 100.0})
    core.handle(bar(1, 102.0, timeframe="1h"))
    (down,) = signals(core.handle(bar(121, 101.5)))
    assert (down.side, down.previous_side, down.diagnostics["hour_close"]) == ("short", "long", 102.0)


# --- subscriptions, state, targets -----------------------------------------------------------


def test_subscriptions_when_selecting_venue_symbols_and_timeframe_then_only_those_bars_run() -> None:
    core = core_of(
        {
            "kind": f"{SUPPORT}:Ramp",
            "name": "ramp",
            "subscribe": [{"venue": "binance", "symbols": ["BTC*", "SOLUSDT"], "timeframes": ["5m"]}],
        }
    )
    assert core.filter_subjects == ("md.bar.*.*.5m", "md.bar.*.*.1m", "strategies.>")  # 1m: managed
    runs = {
        (venue, symbol, tf): bool(signals(core.handle(bar(0, 100.0, symbol=symbol, timeframe=tf, venue=venue))))
        for venue, symbol, tf in [
            ("binance", "BTCUSDT", "5m"),
            ("binance", "BTCUSD_PERP", "5m"),
            ("binance", "SOLUSDT", "5m"),
            ("binance", "ETHUSDT", "5m"),
            ("hyperliquid", "BTCUSDT", "5m"),
            ("binance", "SOLUSDT", "1m"),
        ]
    }
    assert [k for k, ran in runs.items() if ran] == [
        ("binance", "BTCUSDT", "5m"),
        ("binance", "BTCUSD_PERP", "5m"),
        ("binance", "SOLUSDT", "5m"),
    ]


def test_target_weight_when_it_changes_on_the_same_side_then_signalled_with_per_symbol_state() -> None:
    core = core_of({"kind": f"{SUPPORT}:Ramp", "name": "ramp"})
    out: list[Event] = []
    for i in range(6):
        out += core.handle(bar(i, 100.0 + i))
        if i < 2:
            out += core.handle(bar(i, 50.0, symbol="ETHUSDT"))
    got = [(s.symbol, s.previous_side, s.side, s.target) for s in signals(out)]
    assert got == [
        ("BTCUSDT", "flat", "long", 0.25),
        ("ETHUSDT", "flat", "long", 0.25),
        ("BTCUSDT", "long", "long", 0.5),
        ("ETHUSDT", "long", "long", 0.5),
        ("BTCUSDT", "long", "long", 0.75),
        ("BTCUSDT", "long", "long", 1.0),
    ]  # then 1.0 again: nothing


# --- quarantine ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "reason", "error"),
    [
        ("type", "bad_output", "on_bar returned a str, not a ticktape.strategy.Target or None"),
        ("side", "bad_output", "side must be long, short or flat (got 'up')"),
        ("weight", "bad_output", "weight 0.5 does not fit side short"),
        ("nan", "bad_output", "diagnostics carry a non-finite number: ['x'][1]=nan"),
        ("object", "bad_output", "diagnostics are not JSON values"),
        ("history", "raised", "HistoryError: bars('BTCUSDT', '1m', 5): history() declares 0 bar(s) of 1m"),
    ],
)
def test_quarantine_when_a_strategy_misbehaves_then_reason_event_and_the_others_keep_running(how, reason, error):
    core = core_of(
        {"kind": f"{SUPPORT}:Misbehaving", "name": "bad", "params": {"how": how, "after": 2}},
        {"kind": f"{SUPPORT}:Ramp", "name": "ramp"},
    )
    out: list[Event] = []
    for i in range(6):
        out += core.handle(bar(i, 100.0 + i))
    (report,) = [e for e in out if isinstance(e, StrategyQuarantined)]
    assert (report.strategy, report.kind, report.reason) == ("bad", f"{SUPPORT}:Misbehaving", reason)
    assert report.error.startswith(error)
    assert report.bar_open_time == T0 + 2 * MINUTE_NS  # the third bar
    assert {s.strategy for s in signals(out)} == {"ramp"} and len(signals(out)) == 4
    assert core.quarantined.keys() == {"bad"} and core.strategies[0].calls == 3  # type: ignore[attr-defined]
    assert decode(encode(report)) == report


# --- determinism and replay ------------------------------------------------------------------

ENTRIES = [
    {"kind": "ensemble", "params": {"heads": [{"fast": 2, "slow": 4}, {"fast": 3, "slow": 6}], "k": 2}},
    {"kind": f"{SUPPORT}:Lookback", "name": "lb", "params": {"period": 4}},
    {"kind": f"{SUPPORT}:HourlyBias", "name": "hb", "subscribe": [{"symbols": ["BTC*"]}]},
    {"kind": f"{SUPPORT}:Misbehaving", "name": "bad", "params": {"how": "nan", "after": 30}},
]


def market(n: int = 240) -> list[BarClosed]:
    out = []
    for i in range(n):
        for sym, phase in (("BTCUSDT", 0.0), ("ETHUSDT", 1.0)):
            out.append(bar(i, 100.0 + 8 * math.sin(i / 9.0 + phase), symbol=sym))
            if i % 60 == 59:
                out.append(bar(i // 60, 100.0 + 8 * math.sin(i / 9.0 + phase), symbol=sym, timeframe="1h"))
    return out


def test_same_bars_twice_then_same_bytes_and_a_rebuilt_core_continues_identically() -> None:
    bars = market()

    def run(b: list[BarClosed]) -> list[bytes]:
        core = core_of(*ENTRIES)
        return [encode(e) for x in b for e in core.handle(x)]

    first = run(bars)
    assert len(first) > 20 and first == run(bars)
    # a restarted service rebuilds from the stream: same state, history windows included
    half = len(bars) // 2
    restarted = core_of(*ENTRIES)
    for x in bars[:half]:
        restarted.handle(x)
    tail = [encode(e) for x in bars[half:] for e in restarted.handle(x)]
    whole = core_of(*ENTRIES)
    for x in bars[:half]:
        whole.handle(x)
    assert tail == [encode(e) for x in bars[half:] for e in whole.handle(x)]


def test_a_session_that_ran_plugin_strategies_verifies_byte_for_byte() -> None:
    config = {"signal": {"strategies": ENTRIES}}
    meta, records = simulate_session(market(), config, "20250101T000000Z-plugin")
    events = [decode(r.data) for r in records]
    assert {s.strategy for s in events if isinstance(s, SignalGenerated)} == {"ensemble9", "lb", "hb"}
    assert any(isinstance(e, StrategyQuarantined) for e in events)
    assert all(s.version == 2 for s in events if isinstance(s, SignalGenerated))
    verifier = Verifier(loading_specs(meta), meta)
    for rec in records:
        verifier.feed(rec)
    result = verifier.finish()
    assert result.ok, result.divergences[:1]
    # not vacuous: the same recording read as a pre-#10 run (event_version 1) cannot run a plug-in
    old = msgspec.structs.replace(meta, config='{"signal": {"strategies": [{"kind": "ensemble"}]}}')
    verifier = Verifier(loading_specs(old), old)
    for rec in records:
        verifier.feed(rec)
    assert not verifier.finish().ok


def loading_specs(meta: SessionMeta) -> list[CoreSpec]:
    return load_specs(meta.config_doc())
