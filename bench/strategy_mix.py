"""The 1,000-strategy mix and the bars bench/strategies_scale.py runs it on.

Mix: every kind of the built-in library, parameters spread deterministically over their usual
ranges (no two entries equal; many share an indicator period, as a real library does):
250 ema_cross, 50 ensemble, 200 rsi_reversion, 150 macd, 150 bollinger_breakout,
100 donchian_breakout, 50 mtf_trend (1h trend, 1m entries) and 50 consensus (three members of
other kinds, 2 of 3). Every entry subscribes to every symbol's 1m bars (mtf_trend reads 1h too).

Bars: the symbols of bench/replay_vs_nautilus.py (real 1m bar shapes from ../shared/data, each
symbol a rescaled window of the stitched tape), plus the 1h bars aggregated from them, each
published right after the 1m bar that closes its hour, as market data does."""

from __future__ import annotations

from typing import Any

import replay_vs_nautilus as rvn

from ticktape import ids
from ticktape.clock import MINUTE_NS
from ticktape.events import BarClosed

HOUR_NS = 60 * MINUTE_NS
COUNTS = {
    "ema_cross": 250,
    "ensemble": 50,
    "rsi_reversion": 200,
    "macd": 150,
    "bollinger_breakout": 150,
    "donchian_breakout": 100,
    "mtf_trend": 50,
    "consensus": 50,
}


def _params(kind: str, i: int) -> dict[str, Any]:
    if kind == "ema_cross":
        fast = 3 + i % 17
        return {"fast": fast, "slow": fast + 5 + (i // 17) % 15 * 2, "allow_short": i % 4 != 0}
    if kind == "ensemble":
        heads = [{"fast": f + i % 5, "slow": s + i % 7} for f, s in ((3, 10), (5, 15), (8, 24), (10, 30), (12, 36))]
        return {"heads": heads[: 3 + i % 3], "k": 2 + i % 2 if 3 + i % 3 == 3 else 3 + i % 2}
    if kind == "rsi_reversion":
        return {
            "period": 7 + i % 22,
            "oversold": 20.0 + (i // 22) % 3 * 5,
            "overbought": 70.0 + (i // 66) % 3 * 5,
            "allow_short": i % 3 != 0,
        }
    if kind == "macd":
        fast = 6 + i % 10
        return {"fast": fast, "slow": fast + 8 + (i // 10) % 15, "signal": 5 + i % 7}
    if kind == "bollinger_breakout":
        return {"period": 10 + i % 31, "width": 1.5 + (i // 31) % 5 * 0.25}
    if kind == "donchian_breakout":
        period = 10 + i % 41
        return {"period": period, "exit_period": max(1, period // (1 + (i // 41) % 3))}
    if kind == "mtf_trend":
        return {"trend_period": 4 + i % 9, "entry_period": 15 + (i // 9) % 6 * 9}
    if kind == "consensus":
        members = [
            {"kind": "ema_cross", "params": {"fast": 5 + i % 7, "slow": 20 + i % 11}},
            {"kind": "rsi_reversion", "params": {"period": 10 + i % 9}},
            {"kind": "macd", "params": {"fast": 8 + i % 5, "slow": 21 + i % 9, "signal": 9}},
        ]
        return {"members": members, "k": 2}
    raise ValueError(kind)


def mix(total: int = 1_000) -> list[dict[str, Any]]:
    """`total` strategy entries in the proportions of COUNTS (scaled), kinds interleaved."""
    scale = total / sum(COUNTS.values())
    wanted = {kind: max(1, round(n * scale)) for kind, n in COUNTS.items()}
    while sum(wanted.values()) > total:
        wanted[max(wanted, key=lambda k: wanted[k])] -= 1
    entries: list[dict[str, Any]] = []
    made = dict.fromkeys(wanted, 0)
    while len(entries) < sum(wanted.values()):
        for kind in wanted:
            i = made[kind]
            if i < wanted[kind]:
                entry: dict[str, Any] = {"kind": kind, "name": f"{kind}_{i:03d}", "params": _params(kind, i)}
                if kind == "mtf_trend":
                    entry["subscribe"] = [{"timeframes": ["1m"]}]
                entries.append(entry)
                made[kind] += 1
    return entries


def bars(n_symbols: int, n_bars: int) -> list[BarClosed]:
    """n_bars 1m bars of n_symbols symbols, in time order (symbols in name order within a minute),
    each hour's 1h bar of a symbol right after its last 1m bar."""
    tape, _ = rvn.load_tape()
    minutes = rvn.ticktape_bars(rvn.build_symbols(tape, n_symbols, n_bars))
    out: list[BarClosed] = []
    hours: dict[str, list[BarClosed]] = {}
    for bar in minutes:
        out.append(bar)
        window = hours.setdefault(bar.symbol, [])
        window.append(bar)
        if (bar.open_time + MINUTE_NS) % HOUR_NS == 0:
            out.append(_hour(window))
            window.clear()
    return out


def _hour(window: list[BarClosed]) -> BarClosed:
    first, last = window[0], window[-1]
    open_time = first.open_time - first.open_time % HOUR_NS
    close_time = open_time + HOUR_NS - 1_000_000
    return BarClosed(
        event_id=ids.bar_id(first.venue, first.symbol, "1h", open_time),
        ts_event=close_time,
        ts_init=last.ts_init,
        venue=first.venue,
        symbol=first.symbol,
        timeframe="1h",
        open_time=open_time,
        close_time=close_time,
        open=first.open,
        high=max(b.high for b in window),
        low=min(b.low for b in window),
        close=last.close,
        volume=sum(b.volume for b in window),
        quote_volume=sum(b.quote_volume for b in window),
    )
