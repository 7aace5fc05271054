"""Binance USDT-M wire shapes built from bars: REST kline rows, WS kline events, 24h tickers, errors.

Pure functions (no I/O, no clock) so the exact shapes are unit-testable."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from venuesim.bars import Bar
from venuesim.market import Series

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


def kline_row(bar: Bar) -> list[Any]:
    """One element of GET /fapi/v1/klines."""
    return [
        bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.volume,
        bar.close_time, bar.quote_volume, bar.trades, bar.taker_base, bar.taker_quote, "0",
    ]  # fmt: skip


def kline_event(series: Series, index: int, event_ms: int, closed: bool) -> dict[str, Any]:
    """The `<symbol>@kline_1m` payload for bar `index`.

    closed=True: the final frame (`x: true`) carrying the full recorded bar.
    closed=False: the first in-progress frame of the bar: the recorded open as o/h/l/c, zero volume
    and no trades (f = L = -1, as Binance sends for a kline without trades). We have only 1m bars, so
    intermediate updates would be invented; consumers must act on `x: true` anyway."""
    bar = series.bars[index]
    symbol = series.symbol
    if closed:
        first, last = series.trade_ids(index)
        k = {
            "t": bar.open_time, "T": bar.close_time, "s": symbol, "i": INTERVAL, "f": first, "L": last,
            "o": bar.open, "c": bar.close, "h": bar.high, "l": bar.low, "v": bar.volume, "n": bar.trades,
            "x": True, "q": bar.quote_volume, "V": bar.taker_base, "Q": bar.taker_quote, "B": "0",
        }  # fmt: skip
    else:
        v, q = zero_like(bar.volume), zero_like(bar.quote_volume)
        k = {
            "t": bar.open_time, "T": bar.close_time, "s": symbol, "i": INTERVAL, "f": -1, "L": -1,
            "o": bar.open, "c": bar.open, "h": bar.open, "l": bar.open, "v": v, "n": 0,
            "x": False, "q": q, "V": v, "Q": q, "B": "0",
        }  # fmt: skip
    return {"e": "kline", "E": event_ms, "s": symbol, "k": k}


def zero_like(text: str) -> str:
    """Zero written with the same number of decimals as `text` ("12.340" -> "0.000")."""
    _, dot, frac = text.partition(".")
    return "0." + "0" * len(frac) if dot and frac.isdigit() else "0"


def ticker_24hr(series: Series, now_ms: int, started: bool) -> dict[str, Any]:
    """GET /fapi/v1/ticker/24hr for one symbol, computed from the closed bars in the 24h window.

    lastQty is zero: the bars hold no individual trades. See `Series.window_24h` for the window used
    before the clock starts."""
    window = series.window_24h(now_ms, started)
    price_dp, qty_dp = series.precision()
    price_q, qty_q = Decimal(1).scaleb(-price_dp), Decimal(1).scaleb(-qty_dp)

    def p(x: Decimal) -> str:
        return format(x.quantize(price_q), "f")

    def q(x: Decimal) -> str:
        return format(x.quantize(qty_q), "f")

    zero = Decimal(0)
    bars = [series.bars[i] for i in window]
    if not bars:  # the data ended more than 24h ago: nothing traded in the window
        last = p(Decimal(series.bars[window.start - 1].close))
        return _ticker(series.symbol, p(zero), "0.000", p(zero), last, q(zero), last, last, last,
                       q(zero), "0", now_ms - 86_400_000, now_ms, -1, -1, 0)  # fmt: skip
    open_p, close_p = Decimal(bars[0].open), Decimal(bars[-1].close)
    volume = sum((Decimal(b.volume) for b in bars), zero)
    quote = sum((Decimal(b.quote_volume) for b in bars), zero)
    change = close_p - open_p
    pct = (change * 100 / open_p) if open_p else zero
    with_trades = [i for i in window if series.bars[i].trades]
    first_id = series.trade_ids(with_trades[0])[0] if with_trades else -1
    last_id = series.trade_ids(with_trades[-1])[1] if with_trades else -1
    return _ticker(
        series.symbol, p(change), format(pct.quantize(Decimal("0.001")), "f"),
        p(quote / volume if volume else zero), p(close_p), q(zero), p(open_p),
        p(max(Decimal(b.high) for b in bars)), p(min(Decimal(b.low) for b in bars)), q(volume),
        format(quote, "f"), bars[0].open_time, bars[-1].close_time, first_id, last_id,
        sum(b.trades for b in bars),
    )  # fmt: skip


def _ticker(symbol: str, change: str, pct: str, vwap: str, last: str, last_qty: str, open_p: str,
            high: str, low: str, volume: str, quote: str, open_time: int, close_time: int,
            first_id: int, last_id: int, count: int) -> dict[str, Any]:  # fmt: skip
    # Key order as Binance sends it.
    return {
        "symbol": symbol, "priceChange": change, "priceChangePercent": pct, "weightedAvgPrice": vwap,
        "lastPrice": last, "lastQty": last_qty, "openPrice": open_p, "highPrice": high, "lowPrice": low,
        "volume": volume, "quoteVolume": quote, "openTime": open_time, "closeTime": close_time,
        "firstId": first_id, "lastId": last_id, "count": count,
    }  # fmt: skip
