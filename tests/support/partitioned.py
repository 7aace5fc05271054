"""Real recorded 1m bars (OctoBot's BTC, ETH and ADA klines, ../shared/data) under nine symbol
names spread over the four partitions of ticktape.workers, interleaved by open time as market
data publishes them: the input of the N-workers tests."""

from __future__ import annotations

from tests.support.real_bars import octobot, to_bar
from ticktape.events import BarClosed

# four partitions of binance_usdm symbols when n = 4 (ticktape.workers.partition)
SYMBOLS = ("BTCUSDT", "ETHUSDT", "ADAUSDT", "SOLUSDT", "XRPUSDT", "DOGEUSDT", "BNBUSDT", "LTCUSDT", "DOTUSDT")
SOURCES = ("BTCUSDT", "ETHUSDT", "ADAUSDT")
VENUE = "binance_usdm"


def partitioned_bars(n: int = 500) -> list[BarClosed]:
    """n 1m bars of each of SYMBOLS (each a real series), in open-time order."""
    rows = {source: octobot(source, "1m")[:n] for source in SOURCES}
    start = min(r[0][0] for r in rows.values())
    out: list[BarClosed] = []
    for i, symbol in enumerate(SYMBOLS):
        series = rows[SOURCES[i % len(SOURCES)]]
        shift = start - series[0][0]  # every symbol's first bar at the same minute
        for row in series:
            out.append(to_bar((row[0] + shift, *row[1:]), symbol, "1m", VENUE))
    return sorted(out, key=lambda b: (b.open_time, b.symbol))
