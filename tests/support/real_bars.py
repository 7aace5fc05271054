"""Real recorded 1m and 1h bars from ../shared/data (see its MANIFEST.md) as rows, pandas frames and
BarClosed events, for tests that check indicators and strategies on real prices.

Sources: freqtrade's UNITTEST/BTC 1m capture (13,681 bars, 2017-11), Lean's Binance BTCBUSD 1m
trade bars (one day, 2022-12-13), OctoBot's Binance REST klines (500 x 1m and 500 x 1h per
symbol, the hours ending where the minutes are). A missing folder skips the test, naming it."""

from __future__ import annotations

import io
import json
import sqlite3
import zipfile
from collections.abc import Sequence

import pandas as pd

from ticktape import ids
from ticktape.clock import NS_PER_MS, TIMEFRAME_NS
from ticktape.events import BarClosed
from ticktape.testing.data import shared_data

Row = tuple[int, float, float, float, float, float]  # (open ms, open, high, low, close, volume)
HOUR_MS = 3_600_000
LEAN_DAY_MS = 1670889600000  # 2022-12-13 00:00 UTC
OCTOBOT = {
    "BTCUSDT": "AbstractExchangeHistoryCollector_1581774962.1269426.data",
    "ETHUSDT": "AbstractExchangeHistoryCollector_1581776676.5721796.data",
    "ADAUSDT": "ExchangeHistoryDataCollector_1587769859.9278197.data",
}


def freqtrade_unittest_btc() -> list[Row]:
    raw = json.loads(shared_data("freqtrade", "UNITTEST_BTC-1m.json").read_text())
    return [(int(r[0]), *map(float, r[1:6])) for r in raw]  # type: ignore[misc]


def lean_btcbusd() -> list[Row]:
    path = shared_data("lean", "crypto_binance_minute_btcbusd_20221213_trade.zip")
    with zipfile.ZipFile(path) as z:
        text = z.read(z.namelist()[0]).decode()
    rows = [line.split(",") for line in io.StringIO(text).read().splitlines() if line]
    return [(LEAN_DAY_MS + int(r[0]), *map(float, r[1:6])) for r in rows]  # type: ignore[misc]


def octobot(symbol: str, timeframe: str) -> list[Row]:
    path = shared_data("octobot", OCTOBOT[symbol])
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        candles = [
            json.loads(c)
            for (c,) in db.execute("select candle from ohlcv where time_frame = ? order by timestamp", (timeframe,))
        ]
    return [(int(c[0]) * 1000, *map(float, c[1:6])) for c in candles]  # type: ignore[misc]


def frame(rows: Sequence[Row]) -> pd.DataFrame:
    """Columns t (open ms), open, high, low, close, volume; one row per bar, in order."""
    return pd.DataFrame(list(rows), columns=["t", "open", "high", "low", "close", "volume"])


def to_bar(row: Row, symbol: str, timeframe: str = "1m", venue: str = "binance") -> BarClosed:
    t_ms, o, h, lo, c, v = row
    t = t_ms * NS_PER_MS
    step = TIMEFRAME_NS[timeframe]
    return BarClosed(
        event_id=ids.bar_id(venue, symbol, timeframe, t),
        ts_event=t + step - NS_PER_MS,
        ts_init=t + step,
        venue=venue,
        symbol=symbol,
        timeframe=timeframe,
        open_time=t,
        close_time=t + step - NS_PER_MS,
        open=o,
        high=h,
        low=lo,
        close=c,
        volume=v,
        quote_volume=v * c,
    )


def interleave(minutes: Sequence[Row], hours: Sequence[Row], symbol: str) -> list[BarClosed]:
    """One stream of 1m and 1h bars in the order the platform publishes them: an hour right after
    the last minute of it (the aggregator emits it on the minute that closes it), hours that end
    before the first minute first. Hours that end after the last minute (still open when the
    data was taken) are left out. So at a 1m bar opening at t, the hours with open + 1h <= t are
    in the history."""
    out: list[BarClosed] = []
    pending = [h for h in hours if h[0] + HOUR_MS <= minutes[-1][0] + 60_000]
    i = 0
    while i < len(pending) and pending[i][0] + HOUR_MS <= minutes[0][0]:
        out.append(to_bar(pending[i], symbol, "1h"))
        i += 1
    for j, m in enumerate(minutes):
        out.append(to_bar(m, symbol, "1m"))
        following = minutes[j + 1][0] if j + 1 < len(minutes) else None
        while i < len(pending) and (following is None or pending[i][0] + HOUR_MS <= following):
            out.append(to_bar(pending[i], symbol, "1h"))
            i += 1
    return out


def resample_hours(minutes: Sequence[Row]) -> list[Row]:
    """1h bars of 1m rows (first open, max high, min low, last close, summed volume), empty hours
    dropped: the hourly input of a multi-timeframe test where only minutes were recorded."""
    df = frame(minutes)
    df.index = pd.to_datetime(df["t"], unit="ms")
    agg = (
        df.resample("1h", origin="epoch", label="left", closed="left")
        .agg({"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"})
        .dropna()
    )
    starts = ((agg.index - pd.Timestamp(0)) // pd.Timedelta(milliseconds=1)).tolist()
    return [(int(t), *map(float, r)) for t, r in zip(starts, agg.itertuples(index=False), strict=True)]  # type: ignore[misc]
