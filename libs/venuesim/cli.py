"""Command line: `python -m venuesim --data DIR --port PORT [--capture VENUE=FILE] [--fault-...]` and
`python -m venuesim convert ...`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from venuesim import faults, venues
from venuesim.bars import BarDataError
from venuesim.faults import FaultConfig

EXIT_OK, EXIT_BAD_INPUT = 0, 2

_DESCRIPTION = """\
Simulated crypto venues on loopback, replaying recorded 1m bars and raw WebSocket captures over the
venues' exact wire protocols, all on one port:

  Binance USDT-M  /fapi/v1/{ping,time,exchangeInfo,ticker/24hr,klines}, /stream (combined), /ws (raw)
                  at the root and under /binance_usdm; with --accounts also signed trading:
                  /fapi/v1/{order,openOrders,listenKey}, /fapi/v2/{account,positionRisk} and the
                  user data stream at /ws/<listenKey>
  Binance spot    /binance_spot/api/v3/{ping,time,exchangeInfo,ticker/24hr,klines},
                  /binance_spot/stream, /binance_spot/ws
  Hyperliquid     POST /hyperliquid/info (meta, metaAndAssetCtxs, candleSnapshot, allMids, spotMeta,
                  clearinghouseState, openOrders, frontendOpenOrders, orderStatus, userFills),
                  POST /hyperliquid/exchange (order, cancel, cancelByCloid, modify, batchModify,
                  approveAgent; L1 signatures checked), /hyperliquid/ws (candle, trades, l2Book,
                  orderUpdates, userFills, userEvents; ping)
  the simulator   POST /_sim/fault (faults at a chosen moment), GET /_sim/stats (counters),
                  GET /_sim/requests (every request received, verbatim)

Bars: <SYMBOL>-1m*.csv files (data.binance.vision kline layout) directly in --data are served on
every venue; files in --data/binance_usdm, --data/binance_spot or --data/hyperliquid only there.
Hyperliquid serves BTCUSDT as coin BTC. Kline / candle frames: one at each bar's open (open price,
no volume), the final recorded bar at close_time + 1 ms. Trades and books come only from captures.
To make bar files from OctoBot, QuantConnect Lean or freqtrade bars:
  python -m venuesim convert SOURCE OUTDIR [--symbol SYM]

Faults are deterministic: periodic ones run on a fixed schedule from the moment the clock starts."""

_ALIGN_HELP = (
    "shift each symbol's bars by a whole number of minutes so every symbol starts at the earliest "
    "first bar among them (open and close times shift; prices, volumes and order stay as recorded). "
    "Use it to replay single-day captures of different symbols from different dates side by side."
)


def parse_time(text: str) -> int:
    """`1700000000000` (epoch ms) or ISO-8601 (`2024-01-01T00:00:00Z`; no zone means UTC) -> epoch ms."""
    if text.isdigit():
        return int(text)
    try:
        dt = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not epoch ms or ISO-8601: {text!r}") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (got {text})")
    return value


def _count(text: str) -> int:
    """An integer >= 1 (a per-IP limit)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1 (got {text})")
    return int(text)


def _flag(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser that raises ValueError with a readable message."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def parse_capture(text: str) -> tuple[str, Path]:
    """`VENUE=FILE` -> (venue, path)."""
    venue, sep, path = text.partition("=")
    if not sep or venue not in venues.ALL or not path:
        raise ValueError(f"expected VENUE=FILE with VENUE one of {', '.join(venues.ALL)} (got {text!r})")
    return venue, Path(path)


def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="venuesim", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, required=True, metavar="DIR",
                   help="directory of <SYMBOL>-1m*.csv files (and of venue subdirectories with more)")  # fmt: skip
    p.add_argument("--port", type=int, required=True, help="TCP port; 0 picks a free one (see the listening line)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--speed", type=_positive, default=1.0, metavar="X",
                   help="sim seconds per wall second (default 1; 600 = ten minutes of bars per second)")  # fmt: skip
    p.add_argument("--start", type=parse_time, metavar="TIME",
                   help="start the clock at boot at TIME (epoch ms or ISO-8601 UTC) instead of at the "
                        "earliest bar on the first WebSocket subscription")  # fmt: skip
    p.add_argument("--align", action="store_true", help=_ALIGN_HELP)
    p.add_argument("--accounts", type=Path, metavar="FILE",
                   help="JSON file of trading accounts: Binance USDT-M API keys and secrets, Hyperliquid "
                        "users, agents and sub-accounts, starting balances (see venuesim.trading_config); "
                        "without it nobody can trade")  # fmt: skip
    p.add_argument("--funding", type=Path, metavar="FILE",
                   help="recorded Hyperliquid fundingHistory (JSON array or VCR cassette) whose rates the perp "
                   "venues' funding histories serve, cycled over their settlement times (default: none)")  # fmt: skip
    p.add_argument("--capture", type=_flag(parse_capture), action="append", default=[], metavar="VENUE=FILE",
                   help="replay a raw capture (gzip or plain; lines `<receive_ns> <json frame>`, hftbacktest's "
                        "layout) to that venue's WebSocket clients, byte for byte, to the subscribers of each "
                        "frame's stream, paced by receive_ns / --speed from the moment the clock starts. "
                        "Repeatable; one venue's files share one timeline")  # fmt: skip
    lim = p.add_argument_group("Hyperliquid's per-IP limits (counted over all of an address's connections; "
                               "peaks and refusals in GET /_sim/stats)")  # fmt: skip
    lim.add_argument("--hl-max-connections", type=_count, default=10, metavar="N",
                     help="open WebSockets per IP; beyond, the upgrade gets HTTP 429 (default 10)")  # fmt: skip
    lim.add_argument("--hl-max-subscriptions", type=_count, default=1000, metavar="N",
                     help="subscriptions per IP; beyond, an error reply (default 1000)")  # fmt: skip
    lim.add_argument("--hl-max-messages-per-minute", type=_count, default=2000, metavar="N",
                     help="client messages per IP in any 60 s; beyond, not processed, an error reply "
                          "(default 2000)")  # fmt: skip
    lim.add_argument("--hl-max-rest-weight-per-minute", type=_count, default=1200, metavar="N",
                     help="POST /info weight per IP in any 60 s (20 a request, +1 per 60 candles returned); "
                          "beyond, HTTP 429 (default 1200)")  # fmt: skip
    g = p.add_argument_group("fault injection (also at a chosen moment: POST /_sim/fault)")
    g.add_argument("--fault-drop-every", type=_flag(lambda t: faults.positive(t, "--fault-drop-every")),
                   metavar="SECONDS",
                   help="close every WebSocket with code 1001 every SECONDS wall seconds")  # fmt: skip
    g.add_argument("--fault-stall", type=_flag(faults.parse_stall), metavar="SECONDS@EVERY",
                   help="send nothing on any WebSocket for SECONDS every EVERY wall seconds "
                        "(connections stay open; frames wait)")  # fmt: skip
    g.add_argument("--fault-malformed-every", type=_flag(faults.parse_malformed_every), metavar="N",
                   help="after every N data frames on a connection send one malformed frame: truncated JSON, "
                        "a JSON string, a JSON array, in turn")  # fmt: skip
    g.add_argument("--fault-skip-minutes", type=_flag(faults.parse_skip), metavar="LIST",
                   help="comma-separated bar indexes (in each symbol's series) or ISO minutes (2024-07-18T23:58Z) "
                        "whose kline/candle frames are never sent on WebSockets; REST keeps them")  # fmt: skip
    g.add_argument("--fault-refuse-reconnect", metavar="SECONDS",
                   type=_flag(lambda t: faults.positive(t, "--fault-refuse-reconnect")),
                   help="after each drop, answer WebSocket upgrades with HTTP 503 for SECONDS")  # fmt: skip
    return p


def fault_config(args: argparse.Namespace) -> FaultConfig:
    indexes, times = args.fault_skip_minutes or (frozenset(), frozenset())
    return FaultConfig(
        drop_every=args.fault_drop_every, stall=args.fault_stall, malformed_every=args.fault_malformed_every,
        skip_indexes=indexes, skip_times=times, refuse_reconnect=args.fault_refuse_reconnect or 0.0,
    )  # fmt: skip


def convert_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="venuesim convert",
        description="Write Binance-layout <SYMBOL>-1m-<YYYY-MM-DD>.csv files from OctoBot SQLite (*.data), "
        "QuantConnect Lean minute trade zips or freqtrade 1m JSON. SOURCE may be a directory.",
    )
    p.add_argument("source", type=Path, metavar="SOURCE")
    p.add_argument("outdir", type=Path, metavar="OUTDIR")
    p.add_argument("--symbol", help="for Lean and freqtrade sources, the symbol to write (required for freqtrade "
                   "files not named like BTC_USDT-1m.json); for OctoBot files, the only symbol to convert")  # fmt: skip
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point shared by `python -m venuesim` and `ticktape venue-sim`; returns the exit code."""
    args_list = sys.argv[1:] if argv is None else list(argv)
    if args_list[:1] == ["convert"]:
        return _convert(convert_parser().parse_args(args_list[1:]))
    args = serve_parser().parse_args(args_list)
    from venuesim.funding import load_rates
    from venuesim.server import VenueSim, serve  # aiohttp is only needed to serve
    from venuesim.trading_config import load as load_accounts

    try:
        trading = load_accounts(args.accounts) if args.accounts is not None else None
        funding = load_rates(args.funding) if args.funding is not None else None
        sim = VenueSim(
            venues=venues.load_venues(args.data, aligned=args.align), speed=args.speed, start_ms=args.start,
            captures=args.capture, faults=fault_config(args), hl_max_connections=args.hl_max_connections,
            hl_max_subscriptions=args.hl_max_subscriptions,
            hl_max_messages_per_minute=args.hl_max_messages_per_minute,
            hl_max_rest_weight_per_minute=args.hl_max_rest_weight_per_minute, trading=trading,
            funding=funding,
        )  # fmt: skip
    except (BarDataError, ValueError, OSError) as exc:
        print(f"venue-sim: bad input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        asyncio.run(serve(sim, args.host, args.port))
    except OSError as exc:  # e.g. the port is taken
        print(f"venue-sim: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return EXIT_OK


def _convert(args: argparse.Namespace) -> int:
    from venuesim.convert import ConvertError, convert_path

    try:
        written = convert_path(args.source, args.outdir, args.symbol)
    except (ConvertError, OSError) as exc:
        print(f"venue-sim convert: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for path in written:
        print(path)
    return EXIT_OK
