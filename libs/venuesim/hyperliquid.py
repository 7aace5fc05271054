"""Hyperliquid perp wire shapes built from bars: candles, `meta`, asset contexts, errors.

Pure functions (no I/O, no clock). Numbers are strings as Hyperliquid writes them: plain decimals,
trailing zeros dropped but at least one decimal ("105056.0", "0.001604"). Keys are in the order of
the recorded `/info` answers (test_get_candles_snapshot.yaml: alphabetical).

Candle pushes (no closed flag on Hyperliquid; a client infers a close from a later `t`): per bar
one update at its open time (o = h = l = c = open, v = "0.0", n = 0) and one with the recorded
final values at close_time + 1 ms, the instant the next candle opens, sent just before that
candle's opening update. candleSnapshot ends with the candle in progress, in its opening state.

Not recorded, so stated here: maxLeverage is 50 for every coin; funding, premium and openInterest
are "0.0" (the bars carry none); markPx = midPx = oraclePx = impactPxs = the last closed bar's close."""

from __future__ import annotations

import math
from bisect import bisect_left, bisect_right
from decimal import Decimal
from typing import Any

import msgspec

from venuesim.bars import MINUTE_MS
from venuesim.market import Market, Series

INTERVAL = "1m"
# Every interval Hyperliquid accepts; the simulator has only 1m bars and refuses the others.
INTERVALS = ("1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "8h", "12h", "1d", "3d", "1w", "1M")
MAX_LEVERAGE = 50
MARGIN_TABLE_ID = MAX_LEVERAGE  # Hyperliquid numbers its single-tier tables by their leverage
SNAPSHOT_MAX_CANDLES = 5000  # per candleSnapshot answer

_encode = msgspec.json.Encoder().encode


def number(text: str) -> str:
    """Recorded number text as Hyperliquid writes it ("100.00" -> "100.0", "0.0016040" -> "0.001604")."""
    value = Decimal(text).normalize()
    out = format(value, "f")
    return out if "." in out else out + ".0"


def candle(series: Series, i: int, closed: bool) -> dict[str, Any]:
    """Bar i as a candle. closed=False: the candle as it opens (o = h = l = c = open, no volume, no
    trades): the bars hold no intermediate states, so nothing else would be honest."""
    t, o, h, lo, c, v, close_t, _, n, *_ = series.bars.fields(i)
    if not closed:
        h = lo = c = o
        v, n = "0", "0"
    return {
        "T": int(close_t), "c": number(c), "h": number(h), "i": INTERVAL, "l": number(lo), "n": int(n),
        "o": number(o), "s": series.symbol, "t": int(t), "v": number(v),
    }  # fmt: skip


def snapshot_range(series: Series, now_ms: int, start: int, end: int | None) -> range:
    """Indexes of candleSnapshot: every candle overlapping [start, end] (end: now), oldest first, at
    most SNAPSHOT_MAX_CANDLES, ending with the candle in progress at now (as Hyperliquid does)."""
    open_times = series.open_times
    visible = series.closed_count(now_ms)
    if visible < len(open_times) and open_times[visible] <= now_ms:
        visible += 1  # the candle in progress
    hi = min(visible, bisect_right(open_times, now_ms if end is None else end))
    lo = bisect_left(open_times, start - MINUTE_MS + 1)  # a candle overlaps once its close >= start
    return range(lo, max(lo, min(hi, lo + SNAPSHOT_MAX_CANDLES)))


def snapshot_candle(series: Series, i: int, now_ms: int) -> dict[str, Any]:
    """A candleSnapshot element: final once the bar has closed, else its opening state."""
    return candle(series, i, closed=series.open_times[i] + MINUTE_MS <= now_ms)


class CandleFrames:
    """`candle` channel frames for the pump; subscription key `candle:<coin>:1m`."""

    def stream(self, series: Series) -> str:
        return candle_key(series.symbol, INTERVAL)

    def frame(self, series: Series, i: int, event_ms: int, closed: bool) -> str:
        return _encode({"channel": "candle", "data": candle(series, i, closed)}).decode()


def candle_key(coin: str, interval: str) -> str:
    return f"candle:{coin}:{interval}"


def meta(market: Market) -> dict[str, Any]:
    """`{"type":"meta"}`: every served coin; szDecimals = the size decimals seen in the data."""
    universe = [
        {"szDecimals": s.precision()[1], "name": s.symbol, "maxLeverage": MAX_LEVERAGE,
         "marginTableId": MARGIN_TABLE_ID}
        for s in market.series.values()
    ]  # fmt: skip
    table = {"description": "", "marginTiers": [{"lowerBound": "0.0", "maxLeverage": MAX_LEVERAGE}]}
    return {"universe": universe, "marginTables": [[MARGIN_TABLE_ID, table]]}


def asset_ctx(series: Series, now_ms: int, started: bool) -> dict[str, Any]:
    """One perp's context, from the closed bars of the rolling 24h window (as the Binance ticker)."""
    window = series.window_24h(now_ms, started)
    lo, hi = window.start, window.stop
    bars = series.bars
    _, qty_dp, quote_dp = series.precision()
    if lo >= hi:  # nothing traded in the last 24h
        last = bars.fields(lo - 1)[4]
        prev, base_vlm, ntl_vlm = last, 0.0, 0.0
    else:
        last, prev = bars.fields(hi - 1)[4], bars.fields(lo)[1]
        base_vlm, ntl_vlm = math.fsum(bars.volumes[lo:hi]), math.fsum(bars.quote_volumes[lo:hi])
    px = number(last)
    return {
        "funding": "0.0", "openInterest": "0.0", "prevDayPx": number(prev),
        "dayNtlVlm": number(f"{ntl_vlm:.{quote_dp}f}"), "premium": "0.0", "oraclePx": px, "markPx": px,
        "midPx": px, "impactPxs": [px, px], "dayBaseVlm": number(f"{base_vlm:.{qty_dp}f}"),
    }  # fmt: skip


def meta_and_asset_ctxs(market: Market, now_ms: int, started: bool) -> list[Any]:
    return [meta(market), [asset_ctx(s, now_ms, started) for s in market.series.values()]]


def deserialize_error(detail: str) -> str:
    """The text/plain body of Hyperliquid's HTTP 422 for a body it cannot read."""
    return f"Failed to deserialize the JSON body into the target type: {detail}"
