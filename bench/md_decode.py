"""Benchmark (a): Binance market-data frames decoded and normalized per second, one process.

Corpus (real captures from ../shared/data, every kline and trade frame in them):
  cryptofeed/BINANCE.ws.1.0           spot   <sym>@kline_1m, <sym>@aggTrade
  cryptofeed/BINANCE_FUTURES.ws.1.0   USDT-M <sym>@kline_1m, <sym>@aggTrade
  hftbacktest/spot_btcusdt_20240808.gz  spot   <sym>@trade
  hftbacktest/usdm_btcusdt_20240718.gz  USDT-M <sym>@trade
(depth and bookTicker frames are left out: neither side turns them into bars or trades).

ticktape: MarketDataCore("binance_spot" / "binance_usdm").on_frame(frame_bytes, ts_init) for
every frame: msgspec decode, validation, and normalization into TradeTick (id derived with
ticktape.ids) or BarClosed for a closed kline. Fresh cores each pass, so closed klines are
emitted every pass.

cryptofeed: what its connection handler does per WebSocket message,
`await feed.message_handler(text, conn, ts)` on Binance / BinanceFutures feeds built offline
(symbol tables loaded from the captured exchangeInfo, no network), with no-op async callbacks
for TRADES and CANDLES (candle_closed_only, its default). That parses with yapic json
(parse_float=Decimal) and builds cryptofeed Trade / Candle objects. cryptofeed's Binance feeds
subscribe to aggTrade, not trade, and its handler drops `trade` events with a warning; so each
`trade` frame is handed to it rewritten as an aggTrade frame ("e":"trade" -> "e":"aggTrade",
trade id key "t" -> "a"; same values, one byte longer), which its unmodified handler routes
to feed._trade. Both sides get each frame as it comes off the socket: text for cryptofeed (its
websockets connection yields str), bytes for ticktape (the shell passes bytes).

Secondary: the cryptofeed-native subset, kline + aggTrade frames only, where cryptofeed runs
its unmodified message_handler for every frame.

Usage: python bench/md_decode.py [--repeat 7] [--seconds 0.5]; writes bench/results/md_decode.json."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gzip
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from common import machine  # bench/ is on sys.path when run as a script

from services.market_data.core import MarketDataCore
from ticktape.events import BarClosed, TradeTick
from ticktape.testing.data import shared_data_dir

ROOT = Path(__file__).resolve().parents[1]

KINDS = ("@kline_1m", "@aggTrade", "@trade")


@dataclass(frozen=True)
class Frame:
    venue: str  # "spot" | "usdm"
    kind: str  # "kline" | "aggTrade" | "trade"
    text: str

    @property
    def raw(self) -> bytes:
        return self.text.encode()


def _kind(stream: str) -> str | None:
    for suffix in KINDS:
        if stream.endswith(suffix):
            return suffix[1:].replace("_1m", "")
    return None


def load_corpus(data: Path) -> tuple[list[Frame], list[str]]:
    frames: list[Frame] = []
    sources = []
    for venue, name in (("spot", "BINANCE.ws.1.0"), ("usdm", "BINANCE_FUTURES.ws.1.0")):
        path = data / "cryptofeed" / name
        sources.append(str(path.relative_to(data)))
        for line in path.read_text().splitlines():
            ts, sep, body = line.partition(": ")
            if sep and ts.replace(".", "").isdigit():
                kind = _kind(json.loads(body).get("stream", ""))
                if kind:
                    frames.append(Frame(venue, kind, body))
    for venue, name in (("spot", "spot_btcusdt_20240808.gz"), ("usdm", "usdm_btcusdt_20240718.gz")):
        path = data / "hftbacktest" / name
        sources.append(str(path.relative_to(data)))
        with gzip.open(path, "rt") as f:
            for line in f:
                body = line.rstrip("\n").partition(" ")[2]
                kind = _kind(json.loads(body).get("stream", "")) if body.startswith('{"stream"') else None
                if kind:
                    frames.append(Frame(venue, kind, body))
    return frames, sources


def exchange_info(data: Path, name: str) -> dict[str, object]:
    first = (data / "cryptofeed" / name).read_text().splitlines()[0]
    return json.loads(first.partition(": ")[2])  # "<url> -> <ts>: <body>"


# -- ticktape --------------------------------------------------------------------------------


def ticktape_pass(spot: list[bytes], usdm: list[bytes]) -> int:
    """One pass over the corpus with fresh cores; returns the number of events made."""
    n = 0
    for venue, frames in (("binance_spot", spot), ("binance_usdm", usdm)):
        on_frame = MarketDataCore(venue).on_frame
        for raw in frames:
            n += len(on_frame(raw, 1))
    return n


def ticktape_counts(spot: list[bytes], usdm: list[bytes]) -> dict[str, int]:
    counts = {"trades": 0, "candles": 0}
    for venue, frames in (("binance_spot", spot), ("binance_usdm", usdm)):
        core = MarketDataCore(venue)
        for raw in frames:
            for e in core.on_frame(raw, 1):
                assert isinstance(e, (TradeTick, BarClosed))
                counts["trades" if isinstance(e, TradeTick) else "candles"] += 1
    return counts


# -- cryptofeed ------------------------------------------------------------------------------


def cryptofeed_feeds(data: Path, counts: dict[str, int] | None = None):  # type: ignore[no-untyped-def]
    from cryptofeed.defines import CANDLES, TRADES
    from cryptofeed.exchanges import Binance, BinanceFutures
    from cryptofeed.symbols import Symbols

    for cls, name in ((Binance, "BINANCE.0"), (BinanceFutures, "BINANCE_FUTURES.0")):
        syms, info = cls._parse_symbol_data(exchange_info(data, name))
        Symbols.set(cls.id, syms, info)

    if counts is None:

        async def on_trade(obj, ts):  # type: ignore[no-untyped-def]
            pass

        async def on_candle(obj, ts):  # type: ignore[no-untyped-def]
            pass
    else:

        async def on_trade(obj, ts):  # type: ignore[no-untyped-def]
            counts["trades"] += 1

        async def on_candle(obj, ts):  # type: ignore[no-untyped-def]
            counts["candles"] += 1

    callbacks = {TRADES: on_trade, CANDLES: on_candle}
    return Binance(callbacks=dict(callbacks)), BinanceFutures(callbacks=dict(callbacks))


def as_agg_trade(text: str) -> str:
    """A `trade` frame rewritten as the aggTrade frame cryptofeed's handler routes: the event
    type renamed and the trade id "t" renamed "a" (same values, a byte longer)."""
    assert '"a":' not in text, "a trade frame that already has an 'a' field"
    return text.replace('"e":"trade"', '"e":"aggTrade"', 1).replace('"t":', '"a":', 1)


def cryptofeed_calls(frames: list[Frame], spot, usdm):  # type: ignore[no-untyped-def]
    handlers = {"spot": spot.message_handler, "usdm": usdm.message_handler}
    return [(handlers[f.venue], as_agg_trade(f.text) if f.kind == "trade" else f.text) for f in frames]


async def cryptofeed_pass(calls) -> None:  # type: ignore[no-untyped-def]
    for handler, text in calls:
        await handler(text, None, 1.0)


# -- harness ---------------------------------------------------------------------------------


def timed_sync(fn, passes: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for _ in range(passes):
        fn()
    return time.perf_counter() - t0


async def timed_async(fn, passes: int) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    for _ in range(passes):
        await fn()
    return time.perf_counter() - t0


async def measure(frames: list[Frame], data: Path, repeat: int, seconds: float) -> dict[str, object]:
    spot_b = [f.raw for f in frames if f.venue == "spot"]
    usdm_b = [f.raw for f in frames if f.venue == "usdm"]
    spot_cf, usdm_cf = cryptofeed_feeds(data)
    calls = cryptofeed_calls(frames, spot_cf, usdm_cf)

    def ours() -> None:
        ticktape_pass(spot_b, usdm_b)

    async def theirs() -> None:
        await cryptofeed_pass(calls)

    # warm up, and size passes so one repetition of each side takes about `seconds`
    one_ours = max(timed_sync(ours, 1), 1e-6)
    one_theirs = max(await timed_async(theirs, 1), 1e-6)
    passes_ours = max(1, round(seconds / one_ours))
    passes_theirs = max(1, round(seconds / one_theirs))
    runs_ours, runs_theirs = [], []
    for _ in range(repeat):  # alternate, so drift hits both sides alike
        runs_ours.append(len(frames) * passes_ours / timed_sync(ours, passes_ours))
        runs_theirs.append(len(frames) * passes_theirs / await timed_async(theirs, passes_theirs))
    med_ours, med_theirs = statistics.median(runs_ours), statistics.median(runs_theirs)
    return {
        "frames_per_pass": len(frames),
        "ticktape": _side(len(frames), passes_ours, med_ours, runs_ours),
        "cryptofeed": _side(len(frames), passes_theirs, med_theirs, runs_theirs),
        "ratio": round(med_ours / med_theirs, 2),
        # each repetition times both sides back to back, so their ratio shares the machine's load
        "ratio_median_of_paired_runs": round(
            statistics.median(o / t for o, t in zip(runs_ours, runs_theirs, strict=True)), 2
        ),
    }


def _side(frames: int, passes: int, median: float, runs: list[float]) -> dict[str, object]:
    return {
        "frames": frames * passes,
        "seconds": round(frames * passes / median, 4),
        "frames_per_s": round(median),
        "runs_frames_per_s": [round(r) for r in runs],
        "passes_per_run": passes,
    }


def validate(frames: list[Frame], data: Path) -> dict[str, dict[str, int]]:
    """Both sides must turn the corpus into the same numbers of trades and closed candles."""
    ours = ticktape_counts([f.raw for f in frames if f.venue == "spot"], [f.raw for f in frames if f.venue == "usdm"])
    theirs = {"trades": 0, "candles": 0}
    spot, usdm = cryptofeed_feeds(data, theirs)
    asyncio.run(cryptofeed_pass(cryptofeed_calls(frames, spot, usdm)))
    if ours != theirs:
        raise SystemExit(f"ticktape and cryptofeed disagree on the corpus: {ours} vs {theirs}")
    return {"ticktape": ours, "cryptofeed": theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="repetitions per side (median reported)")
    parser.add_argument("--seconds", type=float, default=0.5, help="target length of one repetition")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "md_decode.json")
    args = parser.parse_args()

    data = shared_data_dir()
    frames, sources = load_corpus(data)
    native = [f for f in frames if f.kind != "trade"]
    kinds: dict[str, int] = {}
    for f in frames:
        key = f"{f.venue} {f.kind}"
        kinds[key] = kinds.get(key, 0) + 1
    counts = validate(frames, data)

    mixed = asyncio.run(measure(frames, data, args.repeat, args.seconds))
    subset = asyncio.run(measure(native, data, args.repeat, args.seconds))
    result = {
        "benchmark": "md_decode",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine("msgspec", "cryptofeed"),
        "corpus": {"sources": sources, "frames": len(frames), "by_venue_and_kind": kinds, "events_made": counts},
        "timed": {
            "ticktape": "MarketDataCore(venue).on_frame(frame_bytes, ts_init) per frame (msgspec decode + "
            "validation + TradeTick/BarClosed with derived ids); fresh cores each pass",
            "cryptofeed": "await Binance/BinanceFutures.message_handler(frame_text, None, ts) per frame with "
            "no-op async TRADES/CANDLES callbacks; `trade` frames (which it does not route) "
            "are given to it rewritten as aggTrade frames (e -> aggTrade, key t -> a)",
            "repetitions": args.repeat,
            "statistic": "median frames/s over repetitions, one process, one thread",
        },
        "mixed": mixed,
        "cryptofeed_native_subset": {"frames": len(native), "note": "kline + aggTrade frames only", **subset},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    m, s = mixed, subset
    print(
        f"md_decode: ticktape {m['ticktape']['frames_per_s']:,} frames/s vs cryptofeed "  # type: ignore[index]
        f"{m['cryptofeed']['frames_per_s']:,} frames/s = {m['ratio']}x on {len(frames):,} real Binance "  # type: ignore[index]
        f"kline/trade frames (native kline+aggTrade subset: {s['ratio']}x); wrote {args.out.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    main()
