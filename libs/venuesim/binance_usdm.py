"""Binance USDT-M wire shapes built from bars: REST kline rows, WS kline events, 24h tickers, errors.

Pure functions (no I/O, no clock) so the exact shapes are unit-testable."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from venuesim.market import DAY_MS, Series

INTERVAL = "1m"

# REST error bodies, as Binance sends them (always with HTTP 400).
ERR_INVALID_SYMBOL = {"code": -1121, "msg": "Invalid symbol."}
ERR_INVALID_INTERVAL = {"code": -1120, "msg": "Invalid interval."}


def err_mandatory(param: str) -> dict[str, Any]:
    return {"code": -1102, "msg": f"Mandatory parameter '{param}' was not sent, was empty/null, or malformed."}


def err_illegal_chars(param: str) -> dict[str, Any]:
    return {"code": -1100, "msg": f"Illegal characters found in parameter '{param}'; legal range is '^[0-9]{{1,20}}$'."}


def err_invalid_value(param: str) -> dict[str, Any]:
    return {"code": -1130, "msg": f"Data sent for parameter '{param}' is not valid."}


def stream_name(symbol: str) -> str:
    """The kline stream of a symbol; Binance stream names are lower case."""
    return f"{symbol.lower()}@kline_{INTERVAL}"


def kline_row(series: Series, i: int) -> list[Any]:
    """One element of GET /fapi/v1/klines: bar i as recorded."""
    c = series.bars.fields(i)
    return [int(c[0]), c[1], c[2], c[3], c[4], c[5], int(c[6]), c[7], int(c[8]), c[9], c[10], "0"]


def kline_event(series: Series, i: int, event_ms: int, closed: bool) -> dict[str, Any]:
    """The `<symbol>@kline_1m` payload for bar i.

    closed=True: the final frame (`x: true`) carrying the full recorded bar.
    closed=False: the first in-progress frame of the bar: the recorded open as o/h/l/c, zero volume
    and no trades (f = L = -1, as Binance sends for a kline without trades). We have only 1m bars, so
    intermediate updates would be invented; consumers must act on `x: true` anyway."""
    t, o, h, lo, c, v, close_t, q, n, taker_v, taker_q, _ = series.bars.fields(i)
    symbol = series.symbol
    if closed:
        first, last = series.trade_ids(i)
        k = {
            "t": int(t), "T": int(close_t), "s": symbol, "i": INTERVAL, "f": first, "L": last,
            "o": o, "c": c, "h": h, "l": lo, "v": v, "n": int(n),
            "x": True, "q": q, "V": taker_v, "Q": taker_q, "B": "0",
        }  # fmt: skip
    else:
        zv, zq = zero_like(v), zero_like(q)
        k = {
            "t": int(t), "T": int(close_t), "s": symbol, "i": INTERVAL, "f": -1, "L": -1,
            "o": o, "c": o, "h": o, "l": o, "v": zv, "n": 0,
            "x": False, "q": zq, "V": zv, "Q": zq, "B": "0",
        }  # fmt: skip
    return {"e": "kline", "E": event_ms, "s": symbol, "k": k}


def zero_like(text: str) -> str:
    """Zero written with the same number of decimals as `text` ("12.340" -> "0.000")."""
    _, dot, frac = text.partition(".")
    return "0." + "0" * len(frac) if dot and frac.isdigit() else "0"


def ticker_24hr(series: Series, now_ms: int, started: bool) -> dict[str, Any]:
    """GET /fapi/v1/ticker/24hr for one symbol, computed from the closed bars in the 24h window.

    Volumes are float sums (math.fsum) printed with the data's decimals; lastQty is zero because bars
    hold no individual trades. See `Series.window_24h` for the window used before the clock starts."""
    window = series.window_24h(now_ms, started)
    lo, hi = window.start, window.stop
    price_dp, qty_dp, quote_dp = series.precision()
    bars = series.bars

    def p(x: Decimal | float) -> str:
        return f"{x:.{price_dp}f}"

    def qty(x: float) -> str:
        return f"{x:.{qty_dp}f}"

    if lo >= hi:  # the data ended more than 24h ago: nothing traded in the window
        last = p(Decimal(bars.fields(lo - 1)[4]))
        return _ticker(
            series.symbol, change=p(0), pct="0.000", vwap=p(0), last=last, last_qty=qty(0), open_p=last,
            high=last, low=last, volume=qty(0), quote=f"{0:.{quote_dp}f}", open_time=now_ms - DAY_MS,
            close_time=now_ms, first_id=-1, last_id=-1, count=0,
        )  # fmt: skip
    open_p, close_p = Decimal(bars.fields(lo)[1]), Decimal(bars.fields(hi - 1)[4])
    # max/min over float columns in C, then the recorded text of that bar
    high = bars.fields(bars.highs.index(max(bars.highs[lo:hi]), lo, hi))[2]
    low = bars.fields(bars.lows.index(min(bars.lows[lo:hi]), lo, hi))[3]
    volume, quote = math.fsum(bars.volumes[lo:hi]), math.fsum(bars.quote_volumes[lo:hi])
    change = close_p - open_p
    first_id, end_id = series.first_ids[lo], series.first_ids[hi]
    count = end_id - first_id
    return _ticker(
        series.symbol, change=p(change), pct=f"{change * 100 / open_p if open_p else 0:.3f}",
        vwap=p(quote / volume if volume else 0.0), last=p(close_p), last_qty=qty(0), open_p=p(open_p),
        high=p(Decimal(high)), low=p(Decimal(low)), volume=qty(volume), quote=f"{quote:.{quote_dp}f}",
        open_time=bars.open_times[lo], close_time=bars.open_times[hi - 1] + 59_999,
        first_id=first_id if count else -1, last_id=end_id - 1 if count else -1, count=count,
    )  # fmt: skip


def _ticker(symbol: str, *, change: str, pct: str, vwap: str, last: str, last_qty: str, open_p: str,
            high: str, low: str, volume: str, quote: str, open_time: int, close_time: int,
            first_id: int, last_id: int, count: int) -> dict[str, Any]:  # fmt: skip
    # Key order as Binance sends it.
    return {
        "symbol": symbol, "priceChange": change, "priceChangePercent": pct, "weightedAvgPrice": vwap,
        "lastPrice": last, "lastQty": last_qty, "openPrice": open_p, "highPrice": high, "lowPrice": low,
        "volume": volume, "quoteVolume": quote, "openTime": open_time, "closeTime": close_time,
        "firstId": first_id, "lastId": last_id, "count": count,
    }  # fmt: skip
