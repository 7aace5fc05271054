"""Command line: `python -m venuesim --data DIR --port PORT ...` and `python -m venuesim convert ...`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import datetime, timezone
from pathlib import Path

from venuesim.bars import BarDataError, align, load_dir

EXIT_OK, EXIT_BAD_INPUT = 0, 2

_DESCRIPTION = """\
Simulated Binance USDT-M futures venue on loopback, replaying recorded 1m bars over the exact
Binance wire protocols: REST /fapi/v1/{ping,time,exchangeInfo,ticker/24hr,klines} and the
<symbol>@kline_1m market streams on /stream (combined) and /ws (raw), on the same port.

Data: files named <SYMBOL>-1m*.csv in --data, in the data.binance.vision kline layout.
To make such files from OctoBot, QuantConnect Lean or freqtrade bars:
  python -m venuesim convert SOURCE OUTDIR [--symbol SYM]"""

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
        dt = dt.replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1000)


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0 (got {text})")
    return value


def serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="venuesim", description=_DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, required=True, metavar="DIR", help="directory of <SYMBOL>-1m*.csv files")
    p.add_argument("--port", type=int, required=True, help="TCP port; 0 picks a free one (see the listening line)")
    p.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    p.add_argument("--speed", type=_positive, default=1.0, metavar="X",
                   help="sim seconds per wall second (default 1; 600 = ten minutes of bars per second)")  # fmt: skip
    p.add_argument("--start", type=parse_time, metavar="TIME",
                   help="start the clock at boot at TIME (epoch ms or ISO-8601 UTC) instead of at the "
                        "earliest bar on the first WebSocket subscription")  # fmt: skip
    p.add_argument("--align", action="store_true", help=_ALIGN_HELP)
    return p


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
    try:
        series = load_dir(args.data)
    except (BarDataError, OSError) as exc:
        print(f"venue-sim: bad input: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.align:
        series = align(series)
    from venuesim.server import VenueSim, serve  # aiohttp is only needed to serve

    sim = VenueSim(series, speed=args.speed, start_ms=args.start)
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
