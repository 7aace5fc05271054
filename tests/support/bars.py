"""Deterministic bars for shell tests (real recorded bars are used where the data matters)."""

from __future__ import annotations

import math

from ticktape import ids
from ticktape.clock import MINUTE_NS
from ticktape.events import BarClosed, OrderApproved

T0 = 1_700_000_040 * 1_000_000_000 - (1_700_000_040 * 1_000_000_000) % MINUTE_NS


def wave_bars(
    symbol: str = "BTCUSDT", n: int = 120, venue: str = "binance_usdm", period: int = 40, start: int = T0
) -> list[BarClosed]:
    """n 1m bars whose closes follow a sine wave, so EMA crossovers happen every half period."""
    out = []
    for i in range(n):
        open_time = start + i * MINUTE_NS
        price = 100.0 + 10.0 * math.sin(2 * math.pi * i / period)
        prev = 100.0 + 10.0 * math.sin(2 * math.pi * (i - 1) / period)
        out.append(
            BarClosed(
                event_id=ids.bar_id(venue, symbol, "1m", open_time),
                ts_event=open_time + MINUTE_NS - 1_000_000,
                ts_init=open_time + MINUTE_NS,
                venue=venue,
                symbol=symbol,
                timeframe="1m",
                open_time=open_time,
                close_time=open_time + MINUTE_NS - 1_000_000,
                open=prev,
                high=max(prev, price) + 0.5,
                low=min(prev, price) - 0.5,
                close=price,
                volume=1.0,
                quote_volume=price,
            )
        )
    return out


def approval(bar: BarClosed, name: str) -> OrderApproved:
    """A small buy approval (0.01 at 100) for `bar`'s symbol on paper-main, as risk would publish
    it after a signal `signal-<name>`."""
    return OrderApproved(
        event_id=f"approval-{name}",
        ts_event=bar.ts_event,
        ts_init=bar.ts_init,
        causation_id=f"signal-{name}",
        correlation_id=bar.event_id,
        account="paper-main",
        strategy="ensemble",
        venue=bar.venue,
        symbol=bar.symbol,
        side="buy",
        quantity=0.01,
        reference_price=100.0,
        notional=1.0,
        target_quantity=0.01,
        signal_id=f"signal-{name}",
        bar_open_time=bar.open_time,
    )
