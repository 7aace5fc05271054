"""The built-in strategy library on real bars, against references computed independently here.

Indicators: pandas, written in this file without the project's code, with the conventions
StockCharts documents (and TA-Lib implements): EMAs seeded with the simple average of their first
`period` values, then `ewm(span=period, adjust=False)`; Wilder's RSI as `ewm(alpha=1/period,
adjust=False)` of the gains and losses seeded with their first simple average; Bollinger bands as
`rolling(period).mean() +- width * rolling(period).std(ddof=0)`; Donchian channels as
`rolling(period).max()/min()` of the previous bars (shift(1)). Wilder's RSI is also checked against
the values StockCharts publishes in its worked example.

Strategies: each runs in the signal core (loaded from configuration like a user's) over real 1m
bars (freqtrade's UNITTEST/BTC capture and Lean's Binance BTCBUSD day; for the multi-timeframe kind
OctoBot's Binance 1m and 1h klines, and the freqtrade minutes with hours resampled by pandas), and
its signals must be exactly the side changes the reference indicators imply, at the same bars,
with the reference values in their diagnostics. Before an exact comparison of sides, each test
asserts that no reference value lies within rounding distance of a decision boundary (else the
comparison would hinge on the last bits of two float computations)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import pandas as pd
import pytest

from services.signal import loading
from services.signal.config import SignalConfig
from services.signal.core import SignalCore
from services.signal.indicators import Macd, WilderRsi
from services.signal.strategies import BUILTINS
from tests.support import real_bars
from tests.support.real_bars import Row
from ticktape import config as cfg
from ticktape.clock import NS_PER_MS
from ticktape.corespec import load_specs
from ticktape.events import BarClosed, Event, SignalGenerated, StrategyQuarantined
from ticktape.events.codec import decode, encode
from ticktape.replay.simulate import simulate_session
from ticktape.replay.verify import Verifier

REL = 1e-9  # indicator agreement; far above float rounding, far below any decision margin found

# --- references (pandas, independent of services/signal) -----------------------------------------


def ema_ref(x: pd.Series, n: int) -> pd.Series:
    """EMA seeded with the SMA of the first n values (NaN before), then alpha = 2/(n+1)."""
    x = x.reset_index(drop=True)
    out = pd.Series(np.nan, index=x.index)
    if len(x) >= n:
        seeded = pd.concat([pd.Series([x.iloc[:n].mean()]), x.iloc[n:]], ignore_index=True)
        out.iloc[n - 1 :] = seeded.ewm(span=n, adjust=False).mean().to_numpy()
    return out


def macd_ref(close: pd.Series, fast: int, slow: int, signal: int) -> tuple[pd.Series, pd.Series]:
    line = ema_ref(close, fast) - ema_ref(close, slow)
    valid = line.dropna()
    sig = pd.Series(np.nan, index=line.index)
    sig.loc[valid.index] = ema_ref(valid, signal).to_numpy()
    return line.where(sig.notna()), sig


def rsi_ref(close: pd.Series, n: int) -> pd.Series:
    """Wilder's RSI: averages of gains and losses seeded with the mean of the first n, then
    ewm(alpha=1/n, adjust=False); 100 * gain / (gain + loss), 50 when nothing moved."""
    delta = close.reset_index(drop=True).diff()
    out = pd.Series(np.nan, index=delta.index)
    if len(delta) <= n:
        return out

    def wilder(x: pd.Series) -> np.ndarray:
        seeded = pd.concat([pd.Series([x.iloc[1 : n + 1].mean()]), x.iloc[n + 1 :]], ignore_index=True)
        return seeded.ewm(alpha=1.0 / n, adjust=False).mean().to_numpy()

    gain, loss = wilder(delta.clip(lower=0)), wilder((-delta).clip(lower=0))
    total = gain + loss
    out.iloc[n:] = np.where(total == 0, 50.0, 100.0 * gain / np.where(total == 0, 1.0, total))
    return out


# --- running the core ----------------------------------------------------------------------------

SOURCES: dict[str, Callable[[], list[Row]]] = {
    "freqtrade UNITTEST/BTC 1m": real_bars.freqtrade_unittest_btc,
    "lean BTCBUSD 1m": real_bars.lean_btcbusd,
}
_CACHE: dict[str, list[Row]] = {}


def rows_of(source: str) -> list[Row]:
    if source not in _CACHE:
        _CACHE[source] = SOURCES[source]()
    return _CACHE[source]


def core_of(*entries: dict[str, Any]) -> SignalCore:
    return loading.core(cfg.load_section("signal", SignalConfig, {"signal": {"strategies": list(entries)}}))


def run(entries: Sequence[dict[str, Any]], bars: Sequence[BarClosed]) -> list[Event]:
    core = core_of(*entries)
    return [e for b in bars for e in core.handle(b)]


def changes(sides: Sequence[str | None]) -> list[tuple[int, str]]:
    """(bar index, side) where a side differs from the last one (flat before any)."""
    out, prev = [], "flat"
    for i, side in enumerate(sides):
        if side is not None and side != prev:
            out.append((i, side))
            prev = side
    return out


def signalled(events: Sequence[Event], times: Sequence[int], strategy: str) -> list[tuple[int, SignalGenerated]]:
    index = {t * NS_PER_MS: i for i, t in enumerate(times)}
    out = [(index[e.bar_open_time], e) for e in events if isinstance(e, SignalGenerated) and e.strategy == strategy]
    assert not [e for e in events if isinstance(e, StrategyQuarantined)]
    return out


def _sign(x: Fraction) -> int:
    return (x > 0) - (x < 0)


def margin(values: pd.Series, *levels: pd.Series | float) -> float:
    """Smallest relative distance of the values from any level, over rows where all exist."""
    rel = []
    for level in levels:
        lv = level if isinstance(level, pd.Series) else pd.Series(level, index=values.index)
        d = ((values - lv).abs() / lv.abs().clip(lower=1e-300)).dropna()
        rel.append(d.min() if len(d) else math.inf)
    return float(min(rel))


# --- indicators against references ---------------------------------------------------------------

# StockCharts, "Relative Strength Index (RSI)", ChartSchool worked example (spreadsheet cs-rsi):
# 33 closes of QQQQ (Dec 2009 - Feb 2010), shown there rounded to 2 decimals, and the 14-period
# RSI it publishes from the 15th close on (70.53, 66.32, ..., 37.77). The closes below are that
# spreadsheet's unrounded values (4 decimals); their 2-decimal roundings are the table's closes.
STOCKCHARTS_CLOSES = [
    44.3389, 44.0902, 44.1497, 43.6124, 44.3278, 44.8264, 45.0955, 45.4245, 45.8433, 46.0826, 45.8931,
    46.0328, 45.6140, 46.2820, 46.2820, 46.0028, 46.0328, 46.4116, 46.2222, 45.6439, 46.2122, 46.2521,
    45.7137, 46.4515, 45.7835, 45.3548, 44.0288, 44.1783, 44.2181, 44.5672, 43.4205, 42.6628, 43.1314,
]  # fmt: skip
STOCKCHARTS_RSI14 = [
    70.53, 66.32, 66.55, 69.41, 66.36, 57.97, 62.93, 63.26, 56.06, 62.38,
    54.71, 50.42, 39.99, 41.46, 41.87, 45.46, 37.30, 33.08, 37.77,
]  # fmt: skip


def test_wilder_rsi_when_fed_the_stockcharts_example_then_matches_the_published_values() -> None:
    rsi = WilderRsi(14)
    got = [rsi.update(c) for c in STOCKCHARTS_CLOSES]
    assert got[:14] == [None] * 14
    assert [round(v, 2) for v in got[14:] if v is not None] == STOCKCHARTS_RSI14
    # and the pandas reference used below agrees with the same published numbers
    assert rsi_ref(pd.Series(STOCKCHARTS_CLOSES), 14).iloc[14:].round(2).tolist() == STOCKCHARTS_RSI14
    assert [round(c, 2) for c in STOCKCHARTS_CLOSES[:3]] == [44.34, 44.09, 44.15]


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("period", [2, 14, 50])
def test_wilder_rsi_when_fed_real_closes_then_equals_the_pandas_reference(source: str, period: int) -> None:
    closes = [r[4] for r in rows_of(source)]
    rsi = WilderRsi(period)
    got = [rsi.update(c) for c in closes]
    ref = rsi_ref(pd.Series(closes), period)
    assert [g is None for g in got] == ref.isna().tolist()
    mine = np.array([g for g in got if g is not None])
    np.testing.assert_allclose(mine, ref.dropna().to_numpy(), rtol=REL, atol=0)
    assert mine.max() - mine.min() > 15  # real prices move the RSI


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("fast", "slow", "signal"), [(12, 26, 9), (5, 35, 5)])
def test_macd_when_fed_real_closes_then_equals_the_pandas_reference(
    source: str, fast: int, slow: int, signal: int
) -> None:
    closes = [r[4] for r in rows_of(source)]
    macd = Macd(fast, slow, signal)
    got = [macd.update(c) for c in closes]
    line, sig = macd_ref(pd.Series(closes), fast, slow, signal)
    assert [g is None for g in got] == sig.isna().tolist()
    assert sum(g is None for g in got) == slow + signal - 2
    mine = np.array([g for g in got if g is not None])
    scale = float(np.median(closes))  # MACD crosses zero: compare against the price scale
    np.testing.assert_allclose(mine[:, 0], line.dropna().to_numpy(), rtol=0, atol=REL * scale)
    np.testing.assert_allclose(mine[:, 1], sig.dropna().to_numpy(), rtol=0, atol=REL * scale)


# --- strategies against references ---------------------------------------------------------------


def bars_of(source: str) -> tuple[list[BarClosed], list[int], pd.DataFrame]:
    rows = rows_of(source)
    return [real_bars.to_bar(r, "REAL") for r in rows], [r[0] for r in rows], real_bars.frame(rows)


@pytest.mark.parametrize("source", SOURCES)
def test_ema_cross_on_real_bars_then_sides_change_where_the_reference_emas_cross(source: str) -> None:
    bars, times, df = bars_of(source)
    fast, slow = ema_ref(df.close, 9), ema_ref(df.close, 21)
    assert margin(fast, slow) > 1e-12
    sides = [None if math.isnan(s) else "long" if f > s else "short" for f, s in zip(fast, slow, strict=True)]
    got = signalled(run([{"kind": "ema_cross", "name": "x", "params": {"fast": 9, "slow": 21}}], bars), times, "x")
    assert [(i, s.side) for i, s in got] == changes(sides) and len(got) > 20


@pytest.mark.parametrize("source", SOURCES)
def test_rsi_reversion_on_real_bars_then_sides_change_where_the_reference_rsi_crosses_its_levels(
    source: str,
) -> None:
    bars, times, df = bars_of(source)
    params = {"period": 14, "oversold": 25.0, "overbought": 75.0, "exit": 50.0}
    rsi = rsi_ref(df.close, 14)
    assert margin(rsi, 25.0, 50.0, 75.0) > 1e-9
    sides: list[str | None] = []
    side = "flat"
    for r in rsi:
        if math.isnan(r):
            sides.append(None)
            continue
        if side == "long" and r >= 50 or side == "short" and r <= 50:
            side = "flat"
        side = "long" if r < 25 else "short" if r > 75 else side
        sides.append(side)
    got = signalled(run([{"kind": "rsi_reversion", "name": "rsi", "params": params}], bars), times, "rsi")
    assert [(i, s.side) for i, s in got] == changes(sides)
    assert {s.side for _, s in got} == {"long", "short", "flat"} and len(got) > 10
    for i, s in got:
        assert s.diagnostics["rsi"] == pytest.approx(rsi[i], rel=REL)
        assert s.price == df.close[i]


@pytest.mark.parametrize("source", SOURCES)
def test_bollinger_breakout_on_real_bars_then_sides_change_where_the_close_crosses_the_reference_bands(
    source: str,
) -> None:
    bars, times, df = bars_of(source)
    n, width = 20, 2.0
    mid = df.close.rolling(n).mean()
    sd = df.close.rolling(n).std(ddof=0)
    upper, lower = mid + width * sd, mid - width * sd
    assert margin(df.close, upper, lower, mid) > 1e-9
    sides: list[str | None] = []
    side = "flat"
    for c, m, u, lo in zip(df.close, mid, upper, lower, strict=True):
        if math.isnan(m):
            sides.append(None)
            continue
        if side == "long" and c < m or side == "short" and c > m:
            side = "flat"
        side = "long" if c > u else "short" if c < lo else side
        sides.append(side)
    entry = {"kind": "bollinger_breakout", "name": "bb", "params": {"period": n, "width": width}}
    got = signalled(run([entry], bars), times, "bb")
    assert [(i, s.side) for i, s in got] == changes(sides)
    assert {s.side for _, s in got} == {"long", "short", "flat"} and len(got) > 20
    for i, s in got:
        d = s.diagnostics
        assert (d["middle"], d["upper"], d["lower"]) == pytest.approx((mid[i], upper[i], lower[i]), rel=REL)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize(("n", "m", "allow_short"), [(20, 10, True), (55, 20, False), (30, None, True)])
def test_donchian_breakout_on_real_bars_then_sides_change_where_the_close_leaves_the_reference_channel(
    source: str, n: int, m: int | None, allow_short: bool
) -> None:
    bars, times, df = bars_of(source)
    up, lo = df.high.rolling(n).max().shift(1), df.low.rolling(n).min().shift(1)
    ex_up, ex_lo = df.high.rolling(m or n).max().shift(1), df.low.rolling(m or n).min().shift(1)
    sides: list[str | None] = []
    side = "flat"
    for i, c in enumerate(df.close):
        if i < n:
            sides.append(None)
            continue
        if side == "long" and c < ex_lo[i] or side == "short" and c > ex_up[i]:
            side = "flat"
        side = "long" if c > up[i] else "short" if c < lo[i] and allow_short else side
        sides.append(side)
    params: dict[str, Any] = {"period": n, "allow_short": allow_short}
    if m is not None:
        params["exit_period"] = m
    got = signalled(run([{"kind": "donchian_breakout", "name": "dc", "params": params}], bars), times, "dc")
    assert [(i, s.side) for i, s in got] == changes(sides) and len(got) > 10
    assert ("short" in {s.side for _, s in got}) == allow_short
    for i, s in got:  # picked values, not computed: exactly equal
        d = s.diagnostics
        assert (d["upper"], d["lower"], d["exit_upper"], d["exit_lower"]) == (up[i], lo[i], ex_up[i], ex_lo[i])


@pytest.mark.parametrize("source", SOURCES)
def test_macd_on_real_bars_then_sides_change_where_the_reference_macd_crosses_its_signal_line(source: str) -> None:
    bars, times, df = bars_of(source)
    line, sig = macd_ref(df.close, 12, 26, 9)
    scale = float(df.close.median())
    assert float((line - sig).abs().dropna().min()) > 1e-9 * scale
    sides = [None if math.isnan(s) else "long" if m > s else "short" for m, s in zip(line, sig, strict=True)]
    got = signalled(run([{"kind": "macd", "name": "macd"}], bars), times, "macd")
    assert [(i, s.side) for i, s in got] == changes(sides) and len(got) > 20
    for i, s in got:
        d = s.diagnostics
        assert d["macd"] == pytest.approx(line[i], abs=REL * scale)
        assert d["signal"] == pytest.approx(sig[i], abs=REL * scale)
        assert d["histogram"] == pytest.approx(line[i] - sig[i], abs=REL * scale)


# --- multi-timeframe: 1h trend filter, 1m entries ------------------------------------------------


def mtf_source(name: str) -> tuple[list[Row], list[Row]]:
    if name.startswith("octobot"):
        symbol = name.split()[1]
        return real_bars.octobot(symbol, "1m"), real_bars.octobot(symbol, "1h")
    minutes = rows_of("freqtrade UNITTEST/BTC 1m")
    return minutes, real_bars.resample_hours(minutes)


@pytest.mark.parametrize(
    ("source", "trend", "entry"),
    [
        ("octobot BTCUSDT (Binance 1m and 1h klines)", 24, 15),
        ("octobot ETHUSDT (Binance 1m and 1h klines)", 12, 15),
        ("octobot ADAUSDT (Binance 1m and 1h klines)", 4, 10),
        ("freqtrade UNITTEST/BTC 1m, hours resampled", 24, 30),
    ],
)
def test_mtf_trend_on_real_1m_and_1h_bars_then_enters_on_1m_breakouts_in_the_1h_trend(
    source: str, trend: int, entry: int
) -> None:
    minutes, hours = mtf_source(source)
    stream = real_bars.interleave(minutes, hours, "REAL")
    assert sum(b.timeframe == "1h" for b in stream) >= trend
    # reference: hourly SMA trend, visible to a minute opening at t once the hour closed (open + 1h <= t)
    h = real_bars.frame(hours)
    h = h[h.t + real_bars.HOUR_MS <= minutes[-1][0] + 60_000].reset_index(drop=True)
    # the trend exactly (Fractions): a close equal to the average is no trend (OctoBot's ADA hours have one)
    closes = [Fraction(c) for c in h.close]
    h["trend"] = [
        math.nan if i + 1 < trend else float(_sign(trend * closes[i] - sum(closes[i + 1 - trend : i + 1])))
        for i in range(len(closes))
    ]
    h["avail"] = h.t + real_bars.HOUR_MS
    m = real_bars.frame(minutes)
    m = pd.merge_asof(m, h[["avail", "trend"]], left_on="t", right_on="avail", direction="backward")
    m["upper"] = m.high.rolling(entry).max().shift(1)
    m["lower"] = m.low.rolling(entry).min().shift(1)
    sides: list[str | None] = []
    side = "flat"
    for i, row in m.iterrows():
        if math.isnan(row.trend) or int(i) < entry:
            sides.append(None)
            continue
        if side == "long" and row.trend != 1 or side == "short" and row.trend != -1:
            side = "flat"
        if row.trend == 1 and row.close > row.upper:
            side = "long"
        elif row.trend == -1 and row.close < row.lower:
            side = "short"
        sides.append(side)
    params = {"trend_period": trend, "entry_period": entry}
    events = run(
        [{"kind": "mtf_trend", "name": "mtf", "params": params, "subscribe": [{"timeframes": ["1m"]}]}], stream
    )
    got = signalled(events, [r[0] for r in minutes], "mtf")
    assert [(i, s.side) for i, s in got] == changes(sides)
    assert len(got) >= 3 and all(s.timeframe == "1m" for _, s in got)
    # exits come from the 1h filter: on the first minute that sees a new hour's trend
    exits = [i for i, s in got if s.side == "flat"]
    assert exits and all(m.avail[i] != m.avail[i - 1] and m.trend[i] != m.trend[i - 1] for i in exits)
    for i, s in got:
        d = s.diagnostics
        assert d["trend"] == m.trend[i] and d["trend_bar"] == int(m.avail[i] - real_bars.HOUR_MS) * NS_PER_MS
        assert (d["upper"], d["lower"]) == (m.upper[i], m.lower[i])


def test_mtf_trend_reads_the_1h_window_without_subscribing_to_it() -> None:
    core = core_of({"kind": "mtf_trend", "params": {"trend_period": 3}})
    assert core.filter_subjects == ("md.bar.*.*.1m", "md.bar.*.*.1h", "strategies.>")
    (strategy,) = core.strategies
    assert dict(strategy.history()) == {"1h": 3, "1m": 31}


# --- k of n over any strategies ------------------------------------------------------------------


def side_series(kind: str, df: pd.DataFrame) -> list[str | None]:
    """The reference side of each member kind used below, bar by bar (None while warming)."""
    c = df.close
    if kind == "macd":
        line, sig = macd_ref(c, 12, 26, 9)
        return [None if math.isnan(s) else "long" if x > s else "short" for x, s in zip(line, sig, strict=True)]
    if kind == "ema_cross":
        f, s = ema_ref(c, 5), ema_ref(c, 30)
        return [None if math.isnan(b) else "long" if a > b else "short" for a, b in zip(f, s, strict=True)]
    if kind == "lookback":  # tests.support.strategies:Lookback, period 10: sign of the 10-bar change
        ch = c / c.shift(10) - 1
        return [None if math.isnan(x) else "long" if x > 0 else "short" if x < 0 else "flat" for x in ch]
    if kind == "donchian_breakout":
        up, lo = df.high.rolling(20).max().shift(1), df.low.rolling(20).min().shift(1)
        out: list[str | None] = []
        side = "flat"
        for i, x in enumerate(c):
            if i >= 20:
                side = "long" if x > up[i] else "short" if x < lo[i] else side
            out.append(side if i >= 20 else None)
        return out
    raise AssertionError(kind)


@pytest.mark.parametrize("source", SOURCES)
@pytest.mark.parametrize("k", [3, 4])
def test_consensus_over_members_of_any_kinds_then_signals_when_k_of_n_reference_sides_agree(
    source: str, k: int
) -> None:
    bars, times, df = bars_of(source)
    members = [
        {"kind": "macd"},
        {"kind": "ema_cross", "params": {"fast": 5, "slow": 30}},
        {"kind": "tests.support.strategies:Lookback", "name": "lookback", "params": {"period": 10}},
        {"kind": "donchian_breakout", "params": {"period": 20}},
    ]
    per_member = [side_series(kind, df) for kind in ("macd", "ema_cross", "lookback", "donchian_breakout")]
    sides: list[str | None] = []
    first_vote: list[str | None] = [None] * 4  # a member votes from its first opinion on
    for i in range(len(df)):
        for j, series in enumerate(per_member):
            if series[i] is not None:
                first_vote[j] = series[i]
        if any(v is None for v in first_vote):
            sides.append(None)
            continue
        longs, shorts = first_vote.count("long"), first_vote.count("short")
        sides.append("long" if longs >= k else "short" if shorts >= k else "flat")
    entry = {"kind": "consensus", "name": "vote", "params": {"k": k, "members": members}}
    got = signalled(run([entry], bars), times, "vote")
    assert [(i, s.side) for i, s in got] == changes(sides) and len(got) > 10
    assert {s.side for _, s in got} == {"long", "short", "flat"}
    i, s = got[-1]
    votes = s.diagnostics["votes"]
    assert [v["member"] for v in votes] == ["macd", "ema_cross", "lookback", "donchian_breakout"]
    assert [v["side"] for v in votes] == [series[i] for series in per_member]
    assert (s.diagnostics["k"], s.diagnostics["n"]) == (k, 4)


def test_consensus_when_a_member_misbehaves_then_the_consensus_is_quarantined_and_others_run() -> None:
    bars = [real_bars.to_bar(r, "REAL") for r in rows_of("lean BTCBUSD 1m")[:200]]
    members = [
        {"kind": "macd"},
        {"kind": "tests.support.strategies:Misbehaving", "params": {"how": "side", "after": 50}},
    ]
    events = run(
        [
            {"kind": "consensus", "name": "vote", "params": {"k": 2, "members": members}},
            {"kind": "donchian_breakout", "name": "dc"},
        ],
        bars,
    )
    (q,) = [e for e in events if isinstance(e, StrategyQuarantined)]
    assert (q.strategy, q.reason, q.bar_open_time) == ("vote", "raised", bars[50].open_time)
    assert "member Misbehaving returned" in q.error or "not a Target" in q.error
    assert any(isinstance(e, SignalGenerated) and e.strategy == "dc" for e in events)


def test_consensus_members_keep_separate_state_and_nest() -> None:
    bars = [real_bars.to_bar(r, "REAL") for r in rows_of("lean BTCBUSD 1m")[:400]]
    inner = {"kind": "consensus", "params": {"k": 1, "members": [{"kind": "rsi_reversion"}]}}
    nested = run(
        [{"kind": "consensus", "name": "n", "params": {"k": 2, "members": [inner, {"kind": "rsi_reversion"}]}}], bars
    )
    alone = run([{"kind": "rsi_reversion", "name": "n"}], bars)
    # two RSI members in one consensus (one of them nested) each see every bar once: same as one
    strip = [(e.bar_open_time, e.side) for e in nested if isinstance(e, SignalGenerated)]
    assert strip == [(e.bar_open_time, e.side) for e in alone if isinstance(e, SignalGenerated)] and strip


# --- configuration, determinism, replay ----------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (
            {"kind": "rsi_reversion", "params": {"oversold": 60}},
            r"signal\.strategies\[0\]\.params: levels must satisfy oversold < exit < overbought",
        ),
        ({"kind": "macd", "params": {"fast": 26, "slow": 12}}, r"strategies\[0\]\.params: fast must be < slow"),
        ({"kind": "bollinger_breakout", "params": {"period": 1}}, r"params\.period: Expected `int` >= 2"),
        (
            {"kind": "donchian_breakout", "params": {"period": 10, "exit_period": 20}},
            r"params: exit_period must be <= period",
        ),
        (
            {"kind": "mtf_trend", "params": {"trend_timeframe": "1m", "entry_timeframe": "1h"}},
            r"params: trend_timeframe must be longer than entry_timeframe",
        ),
        (
            {"kind": "consensus", "params": {"k": 1, "members": [{"kind": "macd"}, {"kind": "ema_cross"}]}},
            r"params: k must satisfy n/2 < k <= n \(got k=1, n=2\)",
        ),
        (
            {"kind": "consensus", "params": {"k": 1, "members": [{"kind": "macd", "params": {"sigal": 3}}]}},
            r"signal\.strategies\[0\]\.params\.members\[0\]\.params\.sigal: unknown key",
        ),
        (
            {"kind": "consensus", "params": {"k": 1, "members": [{"kind": "nope"}]}},
            r"signal\.strategies\[0\]\.params\.members\[0\]\.kind: unknown strategy kind 'nope'",
        ),
    ],
)
def test_loading_when_library_params_are_wrong_then_config_error_names_the_key_path(
    entry: dict[str, Any], message: str
) -> None:
    with pytest.raises(cfg.ConfigError, match=message):
        loading.from_raw({"signal": {"strategies": [entry]}})


def test_every_library_kind_is_built_in() -> None:
    assert set(BUILTINS) == {
        "ema_cross",
        "ensemble",
        "rsi_reversion",
        "bollinger_breakout",
        "donchian_breakout",
        "macd",
        "mtf_trend",
        "consensus",
    }


LIBRARY: list[dict[str, Any]] = [
    {"kind": "rsi_reversion"},
    {"kind": "bollinger_breakout"},
    {"kind": "donchian_breakout", "params": {"exit_period": 10}},
    {"kind": "macd"},
    {"kind": "mtf_trend", "params": {"trend_period": 6, "entry_period": 20}},
    {
        "kind": "consensus",
        "params": {"k": 2, "members": [{"kind": "macd"}, {"kind": "rsi_reversion"}, {"kind": "ema_cross"}]},
    },
    {"kind": "ensemble"},
]


def test_a_session_running_the_library_on_real_bars_verifies_byte_for_byte() -> None:
    minutes = rows_of("freqtrade UNITTEST/BTC 1m")[:3000]
    stream = real_bars.interleave(minutes, real_bars.resample_hours(minutes), "REAL")
    meta, records = simulate_session(stream, {"signal": {"strategies": LIBRARY}}, "20250101T000000Z-library")
    events = [decode(r.data) for r in records]
    names = {e.strategy for e in events if isinstance(e, SignalGenerated)}
    assert names == ({e.get("name", e["kind"]) for e in LIBRARY} - {"ensemble"}) | {"ensemble9"}
    verifier = Verifier(load_specs(meta.config_doc()), meta)
    for rec in records:
        verifier.feed(rec)
    result = verifier.finish()
    assert result.ok, result.divergences[:1]
    # a restarted core rebuilt from the first half continues with the same bytes
    half = len(stream) // 2
    whole = core_of(*LIBRARY)
    tail_whole = [encode(e) for b in stream for e in whole.handle(b)]
    again = core_of(*LIBRARY)
    for b in stream[:half]:
        again.handle(b)
    tail = [encode(e) for b in stream[half:] for e in again.handle(b)]
    head = core_of(*LIBRARY)
    n_head = sum(len(head.handle(b)) for b in stream[:half])
    assert tail == tail_whole[n_head:]
