"""Symbol-registry core: pick a venue's tradable universe from exchangeInfo and 24h tickers.

Pure and deterministic: the same payloads give the same UniverseUpdated, id and times included
(as_of is the newest ticker closeTime, not the wall clock)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from ticktape import ids
from ticktape.clock import NS_PER_MS
from ticktape.events import UniverseMember, UniverseUpdated


def select_universe(
    exchange_info: Mapping[str, Any],
    tickers: Sequence[Mapping[str, Any]],
    *,
    venue: str,
    quote_asset: str = "USDT",
    top_n: int,
    previous: tuple[str, ...] | None = None,
) -> UniverseUpdated:
    """The top_n TRADING PERPETUAL contracts quoted in quote_asset by 24h quote volume.

    Ranked by quoteVolume descending, ties by symbol name; symbols without a ticker are left
    out. `previous` is the last published universe: added/removed are relative to it (None
    means there was none, so every symbol is added). Raises ValueError naming a missing key."""
    if top_n < 1:
        raise ValueError(f"top_n must be >= 1 (got {top_n})")
    eligible = _eligible(exchange_info, quote_asset)
    volumes: dict[str, float] = {}
    as_of_ms: int | None = None
    for i, ticker in enumerate(tickers):
        where = f"tickers[{i}]"
        symbol = _key(ticker, "symbol", where)
        close_ms = _int(_key(ticker, "closeTime", where), f"{where}.closeTime")
        as_of_ms = close_ms if as_of_ms is None else max(as_of_ms, close_ms)
        if symbol in eligible:
            volumes[symbol] = _volume(_key(ticker, "quoteVolume", where), f"{where}.quoteVolume")
    if as_of_ms is None:
        raise ValueError("tickers is empty: cannot tell the universe's as_of time")
    ranked = sorted(volumes.items(), key=lambda kv: (-kv[1], kv[0]))[:top_n]
    symbols = tuple(symbol for symbol, _ in ranked)
    members = tuple(
        UniverseMember(symbol=symbol, rank=rank, quote_volume=volume)
        for rank, (symbol, volume) in enumerate(ranked, start=1)
    )
    before = () if previous is None else previous
    as_of = as_of_ms * NS_PER_MS
    return UniverseUpdated(
        event_id=ids.derive("universe", venue, as_of, *symbols),
        ts_event=as_of,
        ts_init=as_of,
        venue=venue,
        quote_asset=quote_asset,
        top_n=top_n,
        as_of=as_of,
        symbols=symbols,
        members=members,
        added=tuple(s for s in symbols if s not in before),
        removed=tuple(s for s in before if s not in symbols),
    )


def _eligible(exchange_info: Mapping[str, Any], quote_asset: str) -> set[str]:
    entries = _key(exchange_info, "symbols", "exchangeInfo")
    if not isinstance(entries, list):
        raise ValueError(f"exchangeInfo.symbols must be a list (got {type(entries).__name__})")
    out = set()
    for i, entry in enumerate(entries):
        where = f"exchangeInfo.symbols[{i}]"
        if (
            _key(entry, "contractType", where) == "PERPETUAL"
            and _key(entry, "status", where) == "TRADING"
            and _key(entry, "quoteAsset", where) == quote_asset
        ):
            out.add(_key(entry, "symbol", where))
    return out


def _key(obj: Any, key: str, where: str) -> Any:
    if not isinstance(obj, Mapping):
        raise ValueError(f"{where} must be an object (got {type(obj).__name__})")
    try:
        return obj[key]
    except KeyError:
        raise ValueError(f"{where} is missing key {key!r}") from None


def _int(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"{where} must be an integer in ms (got {value!r})")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"{where} must be an integer in ms (got {value!r})") from None


def _volume(value: Any, where: str) -> float:
    try:
        volume = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be a decimal number (got {value!r})") from None
    if not math.isfinite(volume) or volume < 0:
        raise ValueError(f"{where} must be finite and >= 0 (got {value!r})")
    return volume


def exchange_info_url(rest_url: str) -> str:
    """GET /fapi/v1/exchangeInfo: every contract with its type, status and quote asset."""
    return f"{rest_url.rstrip('/')}/fapi/v1/exchangeInfo"


def tickers_24h_url(rest_url: str) -> str:
    """GET /fapi/v1/ticker/24hr without a symbol: 24h statistics of every contract."""
    return f"{rest_url.rstrip('/')}/fapi/v1/ticker/24hr"
