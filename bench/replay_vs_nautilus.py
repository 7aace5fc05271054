"""Replay throughput: ticktape's signal -> risk -> execution cores chained in one process (the
in-memory bus a what-if replay uses) against NautilusTrader's BacktestEngine running its EMACross
example strategy, over the same bars, side by side in one run.

Data: we hold few real 1m series, so the 100 symbols are built deterministically from the real
bars in ../shared/data:
1. convert (venuesim.convert) freqtrade/UNITTEST_BTC-1m.json (13,681 bars), lean's BTCBUSD minute
   day (1,440) and OctoBot's BTC/USDT, ETH/USDT, ADA/USDT 1m captures (502 + 500 + 500);
2. stitch them in that order into one tape of bar shapes: each bar's open/high/low/close relative
   to the previous close of the same source (its own open for a source's first bar), volume as
   recorded; replayed from price 1000 that gives one continuous 16,623-bar series;
3. symbol k (0..99) is the window of `--bars` consecutive tape bars starting at (k * 997) mod
   (tape length - bars), scaled so its first open is 100 + k, prices rounded to 4 decimals and
   volumes to 3 (both engines get exactly these numbers);
4. every symbol shares one timeline of 1m bars from 2024-01-01 00:00 UTC; bars go in time order,
   symbols in name order within a minute.

ticktape: ema_cross fast 10 / slow 20 (as EMACross), one account trading every symbol with limits
out of the way, paper fills at the next bar's open. Nautilus: one EMACross (fast 10, slow 20,
trade size 1) per symbol on CryptoPerpetual instruments cloned from
TestInstrumentProvider.btcusdt_perp_binance() (precision 4/3), venue BINANCE, margin account,
netting OMS, logging bypassed. Building the bar objects is not timed; engine.run() and the bus loop
are. Events: every message on ticktape's bus (bars and all outputs); for Nautilus, the bars plus
the events its execution engine processed (order and position events). No timing is asserted
anywhere; results go to bench/results/replay_vs_nautilus.json.

Run: .venv/bin/python bench/replay_vs_nautilus.py [--symbols 100] [--bars 5000]"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ticktape import ids, subjects
from ticktape.clock import MINUTE_NS
from ticktape.corespec import load_specs
from ticktape.events import BarClosed
from ticktape.events.codec import decode, encode
from ticktape.replay.memory_bus import MemoryBus
from ticktape.testing.data import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]

SOURCES = (  # (path under ../shared/data, converter symbol, symbol in the converted files)
    ("freqtrade/UNITTEST_BTC-1m.json", None, "UNITTESTBTC"),
    ("lean/crypto_binance_minute_btcbusd_20221213_trade.zip", None, "BTCBUSD"),
    ("octobot", None, "BTCUSDT"),
    ("octobot", None, "ETHUSDT"),
    ("octobot", None, "ADAUSDT"),
)
T0_NS = 1_704_067_200 * 1_000_000_000  # 2024-01-01T00:00:00Z
VENUE = "binance_usdm"
FAST, SLOW = 10, 20
TICKTAPE_CONFIG = {
    "signal": {"strategies": [{"kind": "ema_cross", "name": f"ema_cross_{FAST}_{SLOW}", "fast": FAST, "slow": SLOW}]},
    "risk": {
        "accounts": [
            {
                "name": "bench",
                "initial_equity": 1_000_000.0,
                "fraction": 0.001,
                "max_notional_per_symbol": 1_000_000.0,
                "max_gross_exposure": 1_000_000_000.0,
                "strategies": ["*"],
            }
        ]
    },
    "execution": {"accounts": [{"name": "bench", "initial_equity": 1_000_000.0}]},
}

Shape = tuple[float, float, float, float, float]  # o, h, l, c relative to the previous close; volume


def load_tape() -> tuple[list[Shape], dict[str, int]]:
    """The stitched tape of real bar shapes and how many bars each source gave."""
    from venuesim.bars import load_dir
    from venuesim.convert import convert_path

    data = shared_data_dir()
    tape: list[Shape] = []
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        converted: dict[str, Path] = {}
        for rel, symbol, _ in SOURCES:
            if rel not in converted:
                out = Path(tmp) / str(len(converted))
                convert_path(data / rel, out, symbol)
                converted[rel] = out
        series_by_dir = {rel: load_dir(out) for rel, out in converted.items()}
        for rel, _, name in SOURCES:
            series = series_by_dir[rel][name]
            prev = None
            for i in range(len(series)):
                f = series.fields(i)
                o, h, lo, c, v = (float(x) for x in f[1:6])
                base = prev if prev is not None else o
                tape.append((o / base, h / base, lo / base, c / base, v))
                prev = c
            counts[f"{rel}:{name}"] = len(series)
    return tape, counts


def build_symbols(tape: list[Shape], n_symbols: int, n_bars: int) -> dict[str, list[tuple[str, str, str, str, str]]]:
    """symbol -> n_bars of (open, high, low, close, volume) as fixed-decimal text."""
    if n_bars >= len(tape):
        raise SystemExit(f"--bars must be < the tape length {len(tape)}")
    out = {}
    for k in range(n_symbols):
        start = (k * 997) % (len(tape) - n_bars)
        window = tape[start : start + n_bars]
        price = 1.0
        raw = []
        for ro, rh, rl, rc, v in window:
            raw.append((price * ro, price * rh, price * rl, price * rc, v))
            price *= rc
        scale = (100.0 + k) / raw[0][0]
        out[f"S{k:03d}USDT"] = [
            (f"{o * scale:.4f}", f"{h * scale:.4f}", f"{lo * scale:.4f}", f"{c * scale:.4f}", f"{v:.3f}")
            for o, h, lo, c, v in raw
        ]
    return out


def ticktape_bars(symbols: dict[str, list[tuple[str, ...]]]) -> list[BarClosed]:
    n = len(next(iter(symbols.values())))
    bars = []
    for i in range(n):
        open_time = T0_NS + i * MINUTE_NS
        for sym in sorted(symbols):
            o, h, lo, c, v = (float(x) for x in symbols[sym][i])
            bars.append(
                BarClosed(
                    event_id=ids.bar_id(VENUE, sym, "1m", open_time),
                    ts_event=open_time + MINUTE_NS - 1_000_000,
                    ts_init=open_time + MINUTE_NS,
                    venue=VENUE,
                    symbol=sym,
                    timeframe="1m",
                    open_time=open_time,
                    close_time=open_time + MINUTE_NS - 1_000_000,
                    open=o,
                    high=h,
                    low=lo,
                    close=c,
                    volume=v,
                    quote_volume=v * (o + h + lo + c) / 4,
                )
            )
    return bars


def run_ticktape(bars: list[BarClosed], config: dict) -> dict:
    """The cores on the in-memory bus over pre-built bar events."""
    bus = MemoryBus(load_specs(config))
    kinds: Counter[str] = Counter()
    gc.collect()
    start = time.perf_counter()
    for bar in bars:
        for _, event, _ in bus.publish(subjects.for_event(bar), bar):
            kinds[event.__struct_config__.tag] += 1
    seconds = time.perf_counter() - start
    events = sum(kinds.values())
    return {
        "bars": len(bars),
        "events": events,
        "core_deliveries": bus.delivered,
        "seconds": round(seconds, 3),
        "bars_per_s": round(len(bars) / seconds),
        "events_per_s": round(events / seconds),
        "events_by_type": dict(sorted(kinds.items())),
        "rejected": dict(bus.rejected),
    }


def run_ticktape_from_log(bars: list[BarClosed], config: dict) -> dict:
    """The same, as a replay from a recording does it: decode each bar's JSON, encode each output."""
    payloads = [(subjects.for_event(b), encode(b)) for b in bars]
    bus = MemoryBus(load_specs(config))
    events = 0
    gc.collect()
    start = time.perf_counter()
    for subject, data in payloads:
        log = bus.publish(subject, decode(data))
        for _, event, producer in log:
            if producer is not None:
                encode(event)
        events += len(log)
    seconds = time.perf_counter() - start
    return {
        "bars": len(bars),
        "events": events,
        "seconds": round(seconds, 3),
        "bars_per_s": round(len(bars) / seconds),
        "events_per_s": round(events / seconds),
    }


def run_nautilus(symbols: dict[str, list[tuple[str, ...]]]) -> dict:
    from decimal import Decimal

    import nautilus_trader
    from nautilus_trader.backtest.engine import BacktestEngine, BacktestEngineConfig
    from nautilus_trader.config import LoggingConfig
    from nautilus_trader.examples.strategies.ema_cross import EMACross, EMACrossConfig
    from nautilus_trader.model.currencies import USDT
    from nautilus_trader.model.data import Bar, BarType
    from nautilus_trader.model.enums import AccountType, OmsType
    from nautilus_trader.model.identifiers import InstrumentId, Symbol, TraderId, Venue
    from nautilus_trader.model.instruments import CryptoPerpetual
    from nautilus_trader.model.objects import Money, Price, Quantity
    from nautilus_trader.test_kit.providers import TestInstrumentProvider

    template = TestInstrumentProvider.btcusdt_perp_binance()
    venue = Venue("BINANCE")
    engine = BacktestEngine(
        config=BacktestEngineConfig(trader_id=TraderId("BACKTESTER-001"), logging=LoggingConfig(bypass_logging=True))
    )
    engine.add_venue(
        venue=venue,
        oms_type=OmsType.NETTING,
        account_type=AccountType.MARGIN,
        base_currency=None,
        starting_balances=[Money(1_000_000, USDT)],
        default_leverage=Decimal(10),
    )
    bars = []
    for sym, rows in sorted(symbols.items()):
        instrument = CryptoPerpetual(
            instrument_id=InstrumentId(Symbol(f"{sym}-PERP"), venue),
            raw_symbol=Symbol(sym),
            base_currency=template.base_currency,
            quote_currency=USDT,
            settlement_currency=USDT,
            is_inverse=False,
            price_precision=4,
            size_precision=3,
            price_increment=Price.from_str("0.0001"),
            size_increment=Quantity.from_str("0.001"),
            ts_event=0,
            ts_init=0,
            max_quantity=Quantity.from_str("1000000.000"),
            min_quantity=Quantity.from_str("0.001"),
            margin_init=template.margin_init,
            margin_maint=template.margin_maint,
            maker_fee=template.maker_fee,
            taker_fee=template.taker_fee,
        )
        engine.add_instrument(instrument)
        bar_type = BarType.from_str(f"{instrument.id}-1-MINUTE-LAST-EXTERNAL")
        for i, (o, h, lo, c, v) in enumerate(rows):
            ts = T0_NS + (i + 1) * MINUTE_NS
            bars.append(
                Bar(
                    bar_type,
                    Price.from_str(o),
                    Price.from_str(h),
                    Price.from_str(lo),
                    Price.from_str(c),
                    Quantity.from_str(v),
                    ts,
                    ts,
                )
            )
        engine.add_strategy(
            EMACross(
                EMACrossConfig(
                    instrument_id=instrument.id,
                    bar_type=bar_type,
                    trade_size=Decimal("1.000"),
                    fast_ema_period=FAST,
                    slow_ema_period=SLOW,
                    request_bars=False,
                    subscribe_trade_ticks=False,
                    subscribe_quote_ticks=False,
                    strategy_id=f"EMACross-{sym}",
                    order_id_tag=sym[1:4],
                )
            )
        )
    engine.add_data(bars)
    n_bars = len(bars)
    del bars
    gc.collect()
    start = time.perf_counter()
    engine.run()
    seconds = time.perf_counter() - start
    result = engine.get_result()
    exec_events = result.total_events
    events = n_bars + exec_events
    out = {
        "version": nautilus_trader.__version__,
        "bars": n_bars,
        "iterations": result.iterations,
        "exec_events": exec_events,
        "events": events,
        "orders": result.total_orders,
        "positions": result.total_positions,
        "msgbus_publishes": engine.kernel.msgbus.pub_count,
        "seconds": round(seconds, 3),
        "bars_per_s": round(n_bars / seconds),
        "events_per_s": round(events / seconds),
    }
    engine.dispose()
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--symbols", type=int, default=100)
    p.add_argument("--bars", type=int, default=5000, help="bars per symbol")
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "replay_vs_nautilus.json")
    p.add_argument("--skip-nautilus", action="store_true")
    args = p.parse_args(argv)

    tape, sources = load_tape()
    symbols = build_symbols(tape, args.symbols, args.bars)
    bars = ticktape_bars(symbols)
    print(
        f"{args.symbols} symbols x {args.bars} bars = {len(bars):,} bars (tape of {len(tape):,} real bars)",
        file=sys.stderr,
    )
    results: dict = {
        "benchmark": "replay_vs_nautilus",
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "data": {
            "symbols": args.symbols,
            "bars_per_symbol": args.bars,
            "total_bars": len(bars),
            "tape_bars": len(tape),
            "sources": sources,
            "construction": "real bar shapes stitched into one tape; symbol k = tape window starting at "
            "(k*997) mod (tape-bars), scaled to first open 100+k, 4/3 decimals; one shared "
            "1m timeline from 2024-01-01 (see the module docstring)",
        },
    }
    print("ticktape: cores on the in-memory bus ...", file=sys.stderr)
    results["ticktape"] = run_ticktape(bars, TICKTAPE_CONFIG)
    print(
        f"  {results['ticktape']['bars_per_s']:,} bars/s, {results['ticktape']['events_per_s']:,} events/s",
        file=sys.stderr,
    )
    print("ticktape: the same from encoded events (decode inputs, encode outputs) ...", file=sys.stderr)
    results["ticktape_from_log"] = run_ticktape_from_log(bars, TICKTAPE_CONFIG)
    print("ticktape: default strategies (ensemble of 9 EMA heads + ema_cross_9_21) ...", file=sys.stderr)
    default = {**TICKTAPE_CONFIG, "signal": {}}
    default["risk"] = {"accounts": [{**TICKTAPE_CONFIG["risk"]["accounts"][0], "strategies": ["*"]}]}
    results["ticktape_default_strategies"] = run_ticktape(bars, default)
    del bars
    if not args.skip_nautilus:
        print("nautilus: BacktestEngine + EMACross per symbol ...", file=sys.stderr)
        results["nautilus"] = run_nautilus(symbols)
        t, n = results["ticktape"], results["nautilus"]
        results["ratio_ticktape_over_nautilus"] = {
            "bars_per_s": round(t["bars_per_s"] / n["bars_per_s"], 2),
            "events_per_s": round(t["events_per_s"] / n["events_per_s"], 2),
        }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(summary(results))
    return 0


def summary(r: dict) -> str:
    rows = [("run", "bars", "events", "seconds", "bars/s", "events/s")]
    for key in ("ticktape", "ticktape_from_log", "ticktape_default_strategies", "nautilus"):
        if key in r:
            x = r[key]
            rows.append(
                (
                    key,
                    f"{x['bars']:,}",
                    f"{x['events']:,}",
                    f"{x['seconds']:.2f}",
                    f"{x['bars_per_s']:,}",
                    f"{x['events_per_s']:,}",
                )
            )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    if "ratio_ticktape_over_nautilus" in r:
        ratio = r["ratio_ticktape_over_nautilus"]
        lines.append(f"ticktape / nautilus: {ratio['bars_per_s']}x bars/s, {ratio['events_per_s']}x events/s")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
