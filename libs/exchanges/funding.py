"""The perpetual venues' funding histories, wire formats exact: the request for the settlements
since a time, and their records parsed. Pure, like the adapters: the shell does the I/O.

Binance USDT-M: GET /fapi/v1/fundingRate?symbol=S&startTime=MS&limit=N (limit: default 100, max
1000; ascending by fundingTime; shares a 500 requests / 5 min / IP limit with /fapi/v1/fundingInfo),
each record {"symbol", "fundingRate", "fundingTime", "markPrice"} with decimal strings; markPrice
is "" in records before Binance started to report it.
Hyperliquid: POST /info {"type": "fundingHistory", "coin": C, "startTime": MS[, "endTime": MS]},
each record {"coin", "fundingRate", "premium", "time"}; no mark price (premium may be missing).
At most 500 records an answer (Hyperliquid's documented page size for time-range queries)."""

from __future__ import annotations

from typing import Annotated

import msgspec

from exchanges.base import FrameError, HttpRequest, Millis, Symbol, explain
from ticktape.venues import BINANCE_USDM, HYPERLIQUID

FUNDING_VENUES: tuple[str, ...] = (BINANCE_USDM, HYPERLIQUID)
BINANCE_MAX_LIMIT = 1000  # GET /fapi/v1/fundingRate "limit: Default 100; max 1000"
# A rate per settlement as a decimal string; |rate| < 1 (venues cap it at a few percent).
_Rate = Annotated[float, msgspec.Meta(gt=-1.0, lt=1.0)]


class FundingRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One settlement: time in venue ms, rate per settlement, mark price (0.0: not reported)."""

    symbol: str
    time_ms: int
    rate: float
    mark_price: float = 0.0


class _BinanceRow(msgspec.Struct, frozen=True, gc=False):
    symbol: Symbol
    fundingRate: msgspec.Raw
    fundingTime: Millis
    markPrice: str = ""


class _HyperliquidRow(msgspec.Struct, frozen=True, gc=False):
    coin: Symbol
    fundingRate: msgspec.Raw
    time: Millis
    premium: str | None = None


_binance_rows = msgspec.json.Decoder(list[_BinanceRow])
_hyperliquid_rows = msgspec.json.Decoder(list[_HyperliquidRow])
_rate = msgspec.json.Decoder(_Rate, strict=False)
_encoder = msgspec.json.Encoder()


def funding_request(
    venue: str, rest_url: str, symbol: str, *, start_ms: int, limit: int = BINANCE_MAX_LIMIT
) -> HttpRequest:
    """The request for `symbol`'s settlements at or after start_ms, oldest first."""
    base = rest_url.rstrip("/")
    if venue == BINANCE_USDM:
        limit = max(1, min(limit, BINANCE_MAX_LIMIT))
        return HttpRequest(
            method="GET", url=f"{base}/fapi/v1/fundingRate?symbol={symbol}&startTime={start_ms}&limit={limit}"
        )
    if venue == HYPERLIQUID:
        body = _encoder.encode({"type": "fundingHistory", "coin": symbol, "startTime": start_ms})
        return HttpRequest(method="POST", url=f"{base}/info", body=body)
    raise ValueError(f"{venue} has no funding (perpetual venues: {', '.join(FUNDING_VENUES)})")


def parse_funding(venue: str, body: bytes | str, symbol: str) -> list[FundingRecord]:
    """The records of a funding-history answer for `symbol`, sorted by time; FrameError when the
    body is not one (not JSON, a field missing or mistyped, a rate not a finite |rate| < 1, a
    record of another symbol)."""
    try:
        if venue == BINANCE_USDM:
            rows = _binance_rows.decode(body)
            out = [
                FundingRecord(
                    symbol=r.symbol, time_ms=r.fundingTime, rate=_rate_of(r.fundingRate), mark_price=_mark(r.markPrice)
                )
                for r in rows
            ]
        elif venue == HYPERLIQUID:
            hl = _hyperliquid_rows.decode(body)
            out = [FundingRecord(symbol=r.coin, time_ms=r.time, rate=_rate_of(r.fundingRate)) for r in hl]
        else:
            raise ValueError(f"{venue} has no funding (perpetual venues: {', '.join(FUNDING_VENUES)})")
    except msgspec.ValidationError as exc:
        raise FrameError(f"bad funding history: {explain(str(exc), {})}") from None
    except msgspec.DecodeError as exc:
        raise FrameError(f"not JSON: {exc}") from None
    for r in out:
        if r.symbol != symbol:
            raise FrameError(f"funding history for {symbol} holds a {r.symbol} record")
    return sorted(out, key=lambda r: r.time_ms)


def _rate_of(raw: msgspec.Raw) -> float:
    """A rate given as a decimal string (or a number), finite and |rate| < 1."""
    text = bytes(raw)
    if text[:1] == b'"':
        text = text[1:-1]
    try:
        return float(_rate.decode(text))
    except (msgspec.ValidationError, msgspec.DecodeError):
        raise msgspec.ValidationError(f"fundingRate {text[:40]!r} is not a rate (finite, |rate| < 1)") from None


def _mark(text: str) -> float:
    """Binance's markPrice: a positive finite decimal string, else 0.0 (not reported)."""
    try:
        value = float(text) if text else 0.0
    except ValueError:
        raise msgspec.ValidationError(f"markPrice {text[:40]!r} is not a number") from None
    if not (0.0 <= value < float("inf")):
        raise msgspec.ValidationError(f"markPrice {text[:40]!r} is not a price")
    return value
