"""Funding settlements the simulator serves, derived deterministically from recorded funding data.

The rates come from a recorded Hyperliquid fundingHistory (a JSON array of its records, or a VCR
cassette holding fundingHistory answers, as in ../shared/data), in time order. The simulator's
settlements fall on the venue's schedule in sim time (Binance USDT-M every 8 h at 00:00, 08:00,
16:00 UTC; Hyperliquid every hour), between the first served bar and now; settlement k (its time
divided by the interval) takes recorded record k modulo their count, rate (and premium) text
verbatim. So the same data and the same sim time always give the same answers. Binance's
markPrice is the close of the 1m bar that ends at the settlement ("" when no bar does).

Deviation: both venues cycle the same recorded (Hyperliquid, hourly) rates; Binance's 8-hourly
rates are larger in practice."""

from __future__ import annotations

import json
from bisect import bisect_left
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec

from venuesim.bars import MINUTE_MS
from venuesim.market import Series

HOUR_MS = 3_600_000
BINANCE_INTERVAL_MS = 8 * HOUR_MS
HYPERLIQUID_INTERVAL_MS = HOUR_MS


class RecordedRate(msgspec.Struct, frozen=True):
    rate: str
    premium: str | None = None


class FundingRates:
    """The recorded rates, cycled over settlement times."""

    def __init__(self, rates: list[RecordedRate]) -> None:
        if not rates:
            raise ValueError("no funding rates")
        self.rates = rates

    def rate_at(self, time_ms: int, interval_ms: int) -> RecordedRate:
        return self.rates[(time_ms // interval_ms) % len(self.rates)]

    def settlements(self, series: Series, interval_ms: int, now_ms: int, start: int, end: int | None) -> range:
        """Settlement times (as a range) in [start, end] with a served bar closed at or before them
        and at or before now."""
        first_bar = series.open_times[0]
        last = min(now_ms, series.open_times[-1] + MINUTE_MS)
        if end is not None:
            last = min(last, end)
        lo = max(start, first_bar + MINUTE_MS)
        first = -(-lo // interval_ms) * interval_ms
        return range(first, last + 1, interval_ms) if first <= last else range(0)


def mark_text(series: Series, time_ms: int) -> str:
    """The close of the bar ending at time_ms, 8 decimals as Binance writes markPrice; "" when none."""
    i = bisect_left(series.open_times, time_ms - MINUTE_MS)
    if i < len(series.open_times) and series.open_times[i] == time_ms - MINUTE_MS:
        return f"{Decimal(series.bars[i].close):.8f}"
    return ""


def load_rates(path: Path) -> FundingRates:
    """Rates from a Hyperliquid fundingHistory answer (JSON array) or a VCR cassette of them."""
    text = path.read_text()
    records: list[dict[str, Any]] = []
    if text.lstrip().startswith("["):
        records = json.loads(text)
    else:
        import yaml

        doc = yaml.safe_load(text)
        for interaction in doc.get("interactions", []):
            body = interaction.get("request", {}).get("body") or ""
            if '"fundingHistory"' not in body:
                continue
            records += json.loads(interaction["response"]["body"]["string"])
    records.sort(key=lambda r: int(r["time"]))
    return FundingRates([RecordedRate(str(r["fundingRate"]), r.get("premium")) for r in records])


def binance_records(
    rates: FundingRates, series: Series, now_ms: int, start: int | None, end: int | None, limit: int
) -> list[dict[str, Any]]:
    """GET /fapi/v1/fundingRate's records: from startTime forward (at most limit), else the latest
    limit up to endTime (or now), ascending."""
    times = rates.settlements(series, BINANCE_INTERVAL_MS, now_ms, start or 0, end)
    picked = times[:limit] if start is not None else times[-limit:]
    return [
        {
            "symbol": series.symbol,
            "fundingTime": t,
            "fundingRate": f"{Decimal(rates.rate_at(t, BINANCE_INTERVAL_MS).rate):.8f}",
            "markPrice": mark_text(series, t),
        }
        for t in picked
    ]


HYPERLIQUID_MAX_RECORDS = 500


def hyperliquid_records(
    rates: FundingRates, series: Series, now_ms: int, start: int, end: int | None
) -> list[dict[str, Any]]:
    """/info fundingHistory's records from startTime (at most 500), ascending."""
    times = rates.settlements(series, HYPERLIQUID_INTERVAL_MS, now_ms, start, end)[:HYPERLIQUID_MAX_RECORDS]
    out = []
    for t in times:
        r = rates.rate_at(t, HYPERLIQUID_INTERVAL_MS)
        record: dict[str, Any] = {"coin": series.symbol, "fundingRate": r.rate}
        if r.premium is not None:
            record["premium"] = r.premium
        record["time"] = t
        out.append(record)
    return out


class Settlements:
    """When a trading venue books funding on its accounts: every `interval_ms` of sim time, from
    the venue's first step on (nothing is booked for the time before: no position existed)."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self._booked_ms: int | None = None  # settlements up to here are booked

    def due(self, now_ms: int) -> list[int]:
        """The settlement times not booked yet up to now_ms, oldest first (now counted booked)."""
        if self._booked_ms is None:
            self._booked_ms = now_ms
        first = (self._booked_ms // self.interval_ms + 1) * self.interval_ms
        self._booked_ms = max(self._booked_ms, now_ms)
        return list(range(first, now_ms + 1, self.interval_ms))

    def next_after(self, now_ms: int) -> int:
        after = self._booked_ms if self._booked_ms is not None else now_ms
        return (after // self.interval_ms + 1) * self.interval_ms


def next_due(engine_due: int | None, settlements: Settlements | None, holding: bool, now_ms: int) -> int | None:
    """When a trading venue's matcher must look next: its engine's next feed event for a resting
    order, or the next settlement (settlements: None without funding) while a position is open."""
    if settlements is None or not holding:
        return engine_due
    settle = settlements.next_after(now_ms)
    return settle if engine_due is None else min(engine_due, settle)
