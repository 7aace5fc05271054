"""The simulated venues and which recorded bars each one serves.

`--data DIR`: `<SYMBOL>-1m*.csv` files directly in DIR are served on every venue; files in a
subdirectory named after a venue (`DIR/binance_spot/`, ...) only there, and they replace a symbol of
the same name from DIR. Hyperliquid names perps by coin: BTCUSDT (or BTCUSDC) is served as BTC."""

from __future__ import annotations

from pathlib import Path

from venuesim.bars import BarDataError, BarSeries, align, load_dir, symbol_of

BINANCE_USDM = "binance_usdm"
BINANCE_SPOT = "binance_spot"
HYPERLIQUID = "hyperliquid"
ALL = (BINANCE_USDM, BINANCE_SPOT, HYPERLIQUID)
_COIN_SUFFIXES = ("USDT", "USDC")

VenueSeries = dict[str, dict[str, BarSeries]]  # venue -> served name -> bars


def coin_of(symbol: str) -> str:
    """Hyperliquid's coin for a Binance-style symbol: BTCUSDT -> BTC (other names unchanged)."""
    for suffix in _COIN_SUFFIXES:
        if symbol.endswith(suffix) and len(symbol) > len(suffix):
            return symbol[: -len(suffix)]
    return symbol


def load_venues(data_dir: Path, *, aligned: bool = False) -> VenueSeries:
    """Bars per venue from DIR and DIR/<venue>/, keyed by the venue's own names; BarDataError when
    there is nothing to serve or a file is malformed. aligned: see `bars.align` (one timeline for all)."""
    if not data_dir.is_dir():
        raise BarDataError(f"{data_dir}: not a directory")
    common = _load_if_any(data_dir)
    own = {venue: _load_if_any(data_dir / venue) for venue in ALL}
    if not common and not any(own.values()):
        raise BarDataError(
            f"{data_dir}: no <SYMBOL>-1m*.csv files with bars (directly or in {', '.join(ALL)} subdirectories)"
        )
    if aligned:
        earliest = min(bars.open_times[0] for group in (common, *own.values()) for bars in group.values())
        common = align(common, earliest)
        own = {venue: align(group, earliest) for venue, group in own.items()}
    return venue_series(common, own)


def venue_series(common: dict[str, BarSeries], own: dict[str, dict[str, BarSeries]] | None = None) -> VenueSeries:
    """Merge the shared bars with each venue's own (own wins) and name them as the venue does."""
    out: VenueSeries = {}
    for venue in ALL:
        merged = {**common, **(own or {}).get(venue, {})}
        out[venue] = hyperliquid_coins(merged) if venue == HYPERLIQUID else merged
    return out


def hyperliquid_coins(series: dict[str, BarSeries]) -> dict[str, BarSeries]:
    """Rename symbols to coins. When two symbols are one coin, the first in name order is served
    (BTCUSDC before BTCUSDT: Hyperliquid perps settle in USDC), so USDT-M data never fails to load."""
    out: dict[str, BarSeries] = {}
    for symbol in sorted(series):
        out.setdefault(coin_of(symbol), series[symbol])
    return out


def _load_if_any(directory: Path) -> dict[str, BarSeries]:
    if not directory.is_dir() or not any(symbol_of(p) for p in directory.iterdir() if p.is_file()):
        return {}
    return load_dir(directory)
