"""Property: on real 1m bars, BarAggregator equals an independent pandas resample.

Hypothesis picks a source (OctoBot's Binance BTC/ETH/ADA SQLite, Lean's Binance BTCBUSD minute
zip, freqtrade's UNITTEST/BTC json), a contiguous slice, and optionally drops minutes (randomly
and/or one contiguous block). The reference is
`resample(tf, origin="epoch", label="left", closed="left").agg(first/max/min/last/sum)` with
empty windows dropped, restricted to the windows our rules call closed: those ending at or
before the last kept minute's end (the still-open last window is not emitted yet).

Floats: open/high/low/close are compared exactly (they are picked, not computed). Summed
fields are compared exactly against a plain left-to-right sum in time order, which is the
aggregator's documented rule, and within rel 1e-12 against pandas, whose groupby sum uses
compensated (Kahan) summation and so may differ in the last bits; 1e-12 is far above the
worst-case rounding of a 1440-term sum of non-negative values (~1440 * 2^-53 = 1.6e-13)."""

from __future__ import annotations

import io
import json
import math
import random
import sqlite3
import zipfile
from functools import reduce

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.market_data.aggregate import DEFAULT_TIMEFRAMES, BarAggregator
from ticktape import ids
from ticktape.clock import MINUTE_NS, NS_PER_MS, TIMEFRAME_NS
from ticktape.events import BarClosed
from ticktape.testing.data import shared_data, shared_data_dir

Row = tuple[int, float, float, float, float, float]  # (open ms, o, h, l, c, v)
PANDAS_RULE = {"5m": "5min", "15m": "15min", "1h": "1h", "4h": "4h", "1d": "1D"}
LEAN_DAY_MS = 1670889600000  # 2022-12-13 00:00 UTC


def _octobot(name: str) -> list[Row]:
    path = shared_data("octobot", name)
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        candles = [
            json.loads(c) for (c,) in db.execute("select candle from ohlcv where time_frame = '1m' order by timestamp")
        ]
    return [(int(c[0]) * 1000, *map(float, c[1:6])) for c in candles]  # type: ignore[misc]


def _lean() -> list[Row]:
    path = shared_data("lean", "crypto_binance_minute_btcbusd_20221213_trade.zip")
    with zipfile.ZipFile(path) as z:
        text = z.read(z.namelist()[0]).decode()
    rows = [line.split(",") for line in io.StringIO(text).read().splitlines() if line]
    return [(LEAN_DAY_MS + int(r[0]), *map(float, r[1:6])) for r in rows]  # type: ignore[misc]


def _freqtrade() -> list[Row]:
    raw = json.loads(shared_data("freqtrade", "UNITTEST_BTC-1m.json").read_text())
    return [(int(r[0]), *map(float, r[1:6])) for r in raw]  # type: ignore[misc]


@pytest.fixture(scope="module")
def sources() -> dict[str, list[Row]]:
    shared_data_dir()
    out = {
        "octobot BTC/USDT": _octobot("AbstractExchangeHistoryCollector_1581774962.1269426.data"),
        "octobot ETH/USDT": _octobot("AbstractExchangeHistoryCollector_1581776676.5721796.data"),
        "octobot ADA/USDT": _octobot("ExchangeHistoryDataCollector_1587769859.9278197.data"),
        "lean BTCBUSD": _lean(),
        "freqtrade UNITTEST/BTC": _freqtrade(),
    }
    for name, rows in out.items():
        times = [r[0] for r in rows]
        assert times == sorted(set(times)) and all(t % 60_000 == 0 for t in times), name
    return out


def to_bar(row: Row, backfilled: bool) -> BarClosed:
    t = row[0] * NS_PER_MS
    o, h, low, c, v = row[1:]
    return BarClosed(
        event_id=ids.bar_id("binance_spot", "X", "1m", t),
        ts_event=t + MINUTE_NS - NS_PER_MS,
        ts_init=t + MINUTE_NS,
        venue="binance_spot",
        symbol="X",
        timeframe="1m",
        open_time=t,
        close_time=t + MINUTE_NS - NS_PER_MS,
        open=o,
        high=h,
        low=low,
        close=c,
        volume=v,
        quote_volume=v * c,
        trades=(row[0] // 60_000) % 97,
        taker_buy_volume=v * 0.3,
        taker_buy_quote_volume=v * c * 0.3,
        backfilled=backfilled,
    )


def reference(bars: list[BarClosed], tf: str) -> pd.DataFrame:
    df = pd.DataFrame(
        {
            "open": [b.open for b in bars],
            "high": [b.high for b in bars],
            "low": [b.low for b in bars],
            "close": [b.close for b in bars],
            "volume": [b.volume for b in bars],
            "quote_volume": [b.quote_volume for b in bars],
            "trades": [b.trades for b in bars],
            "backfilled": [b.backfilled for b in bars],
        },
        # tz-naive, UTC implied: pandas applies origin="epoch" to daily bins only on naive indexes
        index=pd.to_datetime([b.open_time for b in bars], unit="ns"),
    )
    out = df.resample(PANDAS_RULE[tf], origin="epoch", label="left", closed="left").agg(
        {
            "open": "first",
            "high": "max",
            "low": "min",
            "close": "last",
            "volume": "sum",
            "quote_volume": "sum",
            "trades": "sum",
            "backfilled": "max",
        }
    )
    out = out.dropna(subset=["open"])
    last_end = bars[-1].open_time + MINUTE_NS
    starts = out.index.as_unit("ns").asi8
    return out[starts + TIMEFRAME_NS[tf] <= last_end]


SOURCE_NAMES = ("freqtrade UNITTEST/BTC", "lean BTCBUSD", "octobot ADA/USDT", "octobot BTC/USDT", "octobot ETH/USDT")


# Every strategy is drawn up front and independently (no interactive st.data() draws whose count
# depends on earlier values), so Hypothesis replays a case with exactly the same choices.
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    source=st.sampled_from(SOURCE_NAMES),
    length_wanted=st.integers(1, 3000),
    start_fraction=st.floats(0.0, 1.0),
    drop_rate=st.sampled_from([0.0, 0.0, 0.03, 0.3, 0.7]),
    block=st.none() | st.tuples(st.integers(0, 3000), st.integers(1, 600)),
    backfill_rate=st.sampled_from([0.0, 0.01, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_aggregates_equal_a_pandas_resample_of_real_one_minute_bars(
    sources, source, length_wanted, start_fraction, drop_rate, block, backfill_rate, seed
) -> None:
    name = source
    rows = sources[name]
    length = min(length_wanted, len(rows))
    start = int(start_fraction * (len(rows) - length))
    rng = random.Random(seed)  # a local generator seeded by Hypothesis: deterministic per case

    kept = [
        r
        for i, r in enumerate(rows[start : start + length])
        if rng.random() >= drop_rate and not (block and block[0] <= i < block[0] + block[1])
    ]
    if not kept:
        kept = [rows[start]]
    bars = [to_bar(r, rng.random() < backfill_rate) for r in kept]

    agg = BarAggregator()
    ours: dict[str, list[BarClosed]] = {tf: [] for tf in DEFAULT_TIMEFRAMES}
    for bar in bars:
        for out in agg.on_bar(bar):
            ours[out.timeframe].append(out)

    for tf in DEFAULT_TIMEFRAMES:
        ref = reference(bars, tf)
        got = ours[tf]
        assert [b.open_time for b in got] == list(ref.index.as_unit("ns").asi8), (name, tf)
        for bar, (_, r) in zip(got, ref.iterrows(), strict=True):
            window = [b for b in bars if bar.open_time <= b.open_time < bar.open_time + TIMEFRAME_NS[tf]]
            assert (bar.open, bar.high, bar.low, bar.close) == (r.open, r.high, r.low, r.close)
            assert bar.trades == r.trades and bar.backfilled == bool(r.backfilled)
            for field in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"):
                left_to_right = reduce(
                    lambda acc, b, f=field: acc + getattr(b, f), window[1:], getattr(window[0], field)
                )
                assert getattr(bar, field) == left_to_right, (tf, field)
            assert math.isclose(bar.volume, r.volume, rel_tol=1e-12)
            assert math.isclose(bar.quote_volume, r.quote_volume, rel_tol=1e-12)
            assert bar.close_time == bar.open_time + TIMEFRAME_NS[tf] - NS_PER_MS == bar.ts_event
            assert bar.event_id == ids.bar_id("binance_spot", "X", tf, bar.open_time)
            closer = next(b for b in bars if b.open_time >= bar.open_time + TIMEFRAME_NS[tf] - MINUTE_NS)
            assert bar.causation_id == closer.event_id


def test_sources_hold_the_documented_real_bars(sources) -> None:
    assert {name: len(rows) for name, rows in sources.items()} == {
        "octobot BTC/USDT": 502,
        "octobot ETH/USDT": 500,
        "octobot ADA/USDT": 500,
        "lean BTCBUSD": 1440,
        "freqtrade UNITTEST/BTC": 13681,
    }
