"""Convert real 1m bars from other tools' formats into Binance kline CSVs the simulator serves.

Sources:
- OctoBot SQLite (`*.data`): table ohlcv(timestamp, exchange_name, [cryptocurrency,] symbol,
  time_frame, candle), candle = JSON [open_time_s, o, h, l, c, v]; only time_frame '1m';
  "BTC/USDT" becomes BTCUSDT.
- QuantConnect Lean minute trade zips: one CSV `<yyyymmdd>_<symbol>_minute_trade[_perp].csv` of
  `ms_since_midnight,o,h,l,c,v`; date and symbol come from that name (`--symbol` renames).
- freqtrade JSON (`.json`, `.json.gz`): [[open_time_ms, o, h, l, c, v], ...]; the symbol is
  `--symbol`, or from a freqtrade name such as `BTC_USDT-1m.json`.

Output: `<SYMBOL>-1m-<YYYY-MM-DD>.csv` per UTC day, 12 columns, no header. Prices and volume keep
the source's number text (exponents written out). These sources lack the other columns, so they are
DERIVED, NOT RECORDED: quote_volume = volume × (open + high + low + close) / 4 (8 decimals),
trades = 0, taker buy base = taker buy quote = 0. Inputs are only read; output is deterministic."""

from __future__ import annotations

import gzip
import io
import itertools
import json
import re
import sqlite3
import zipfile
from contextlib import closing
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

MINUTE_MS = 60_000
DAY_MS = 86_400_000
_LEAN_CSV_RE = re.compile(r"^(\d{8})_([a-z0-9]+)_minute_trade(?:_perp)?\.csv$")
_FREQTRADE_NAME_RE = re.compile(r"^([A-Z0-9]+)_([A-Z0-9]+)(?:_[A-Z0-9]+)?-1m(?:-futures)?\.json(?:\.gz)?$")

Row = tuple[int, str, str, str, str, str]  # open_time_ms, o, h, l, c, v


class ConvertError(ValueError):
    """A source cannot be converted; the message says which file and why."""


def convert_path(source: Path, outdir: Path, symbol: str | None = None) -> list[Path]:
    """Convert one file, or every recognized file in a directory; returns the CSVs written."""
    if source.is_dir():
        jobs = [(p, kind) for p in sorted(source.iterdir()) if p.is_file() and (kind := kind_of(p))]
        if not jobs:
            raise ConvertError(f"{source}: no OctoBot .data, Lean minute trade .zip or freqtrade -1m.json files")
    else:
        kind = kind_of(source)
        if kind is None and symbol and source.name.endswith((".json", ".json.gz")):
            kind = "freqtrade"  # any name will do when the symbol is given
        if kind is None:
            raise ConvertError(
                f"{source}: not an OctoBot .data, Lean minute trade .zip or freqtrade 1m .json file "
                "(freqtrade files not named like BTC_USDT-1m.json need --symbol)"
            )
        jobs = [(source, kind)]
    series: dict[str, list[Row]] = {}
    for path, kind in jobs:
        for sym, rows in _READERS[kind](path, symbol).items():
            series.setdefault(sym, []).extend(rows)
    if not series:
        raise ConvertError(f"{source}: no 1m bars" + (f" for {symbol}" if symbol else ""))
    outdir.mkdir(parents=True, exist_ok=True)
    return [path for sym in sorted(series) for path in write_binance_csvs(sym, series[sym], outdir)]


def kind_of(path: Path) -> str | None:
    """'octobot', 'lean', 'freqtrade' or None, from the file name (and for zips, the entry name)."""
    name = path.name
    if name.endswith(".data"):
        return "octobot"
    if _FREQTRADE_NAME_RE.match(name):
        return "freqtrade"
    if name.endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as zf:
                return "lean" if any(_LEAN_CSV_RE.match(n) for n in zf.namelist()) else None
        except zipfile.BadZipFile:
            return None
    return None


def read_octobot(path: Path, only: str | None = None) -> dict[str, list[Row]]:
    """1m candles of an OctoBot backtesting SQLite file, opened read-only."""
    uri = path.resolve().as_uri() + "?mode=ro&immutable=1"
    try:
        with closing(sqlite3.connect(uri, uri=True)) as db:
            rows = db.execute("SELECT symbol, candle FROM ohlcv WHERE time_frame = '1m'").fetchall()
    except sqlite3.Error as exc:
        raise ConvertError(f"{path}: not an OctoBot ohlcv database ({exc})") from None
    wanted = only.replace("/", "").upper() if only else None
    out: dict[str, list[Row]] = {}
    for pair, candle in rows:
        sym = pair.replace("/", "").upper()
        if wanted and sym != wanted:
            continue
        try:
            t, o, h, lo, c, v = json.loads(candle, parse_float=str, parse_int=str)  # keep the number text
            open_ms = int(Decimal(t) * 1000)
        except (ValueError, TypeError, ArithmeticError):
            raise ConvertError(f"{path}: {pair} candle is not [t, o, h, l, c, v]: {candle!r:.80}") from None
        out.setdefault(sym, []).append((open_ms, o, h, lo, c, v))
    return out


def read_lean(path: Path, symbol: str | None = None) -> dict[str, list[Row]]:
    """Bars of a Lean minute trade zip; the entry name gives the date and symbol."""
    out: dict[str, list[Row]] = {}
    with zipfile.ZipFile(path) as zf:
        for entry in sorted(zf.namelist()):
            match = _LEAN_CSV_RE.match(entry)
            if match is None:
                continue
            day = datetime.strptime(match[1], "%Y%m%d").replace(tzinfo=UTC)
            midnight_ms = int(day.timestamp() * 1000)
            sym = (symbol or match[2]).upper()
            text = io.TextIOWrapper(zf.open(entry), encoding="utf-8")
            for lineno, line in enumerate(text, start=1):
                cols = line.strip().split(",")
                if cols == [""]:
                    continue
                if len(cols) != 6 or not cols[0].isdigit():
                    raise ConvertError(f"{path}:{entry}:{lineno}: expected ms,open,high,low,close,volume")
                ms, o, h, lo, c, v = cols
                out.setdefault(sym, []).append((midnight_ms + int(ms), o, h, lo, c, v))
    return out


def read_freqtrade(path: Path, symbol: str | None = None) -> dict[str, list[Row]]:
    """Bars of a freqtrade OHLCV JSON list; refuses files that are not 1m."""
    if symbol is None:
        match = _FREQTRADE_NAME_RE.match(path.name)
        if match is None:
            raise ConvertError(f"{path}: freqtrade files need --symbol (name is not like BTC_USDT-1m.json)")
        symbol = match[1] + match[2]
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        try:
            data = json.load(fh, parse_float=str, parse_int=str)
        except ValueError as exc:
            raise ConvertError(f"{path}: not JSON ({exc})") from None
    if not isinstance(data, list) or not all(isinstance(r, list) and len(r) >= 6 for r in data):
        raise ConvertError(f"{path}: expected [[ts_ms, o, h, l, c, v], ...]")
    rows: list[Row] = [(int(r[0]), r[1], r[2], r[3], r[4], r[5]) for r in data]
    times = sorted(r[0] for r in rows)
    if len(times) > 1 and min(b - a for a, b in itertools.pairwise(times)) != MINUTE_MS:
        raise ConvertError(f"{path}: not 1m bars (smallest step is not 60000 ms)")
    return {symbol.replace("/", "").upper(): rows}


def write_binance_csvs(symbol: str, rows: list[Row], outdir: Path) -> list[Path]:
    """Write one symbol's rows (any order, exact duplicates dropped) as one CSV per UTC day."""
    by_time: dict[int, Row] = {}
    for row in sorted(rows, key=lambda r: r[0]):
        if row[0] % MINUTE_MS:
            raise ConvertError(f"{symbol}: bar at {row[0]} is not on a minute boundary")
        kept = by_time.setdefault(row[0], row)
        if kept != row:
            raise ConvertError(f"{symbol}: two different bars open at {row[0]}")
    days: dict[int, list[str]] = {}
    for t, *values in by_time.values():
        try:
            o, h, lo, c, v = (_plain(x) for x in values)
            quote = Decimal(v) * (Decimal(o) + Decimal(h) + Decimal(lo) + Decimal(c)) / 4
        except (InvalidOperation, TypeError):
            raise ConvertError(f"{symbol}: bar at {t} has a non-numeric value: {values}") from None
        line = f"{t},{o},{h},{lo},{c},{v},{t + MINUTE_MS - 1},{quote.quantize(Decimal('1e-8')):f},0,0,0,0\n"
        days.setdefault(t // DAY_MS, []).append(line)
    written = []
    for day, lines in days.items():
        date = datetime.fromtimestamp(day * DAY_MS / 1000, tz=UTC).strftime("%Y-%m-%d")
        path = outdir / f"{symbol}-1m-{date}.csv"
        path.write_text("".join(lines), encoding="utf-8")
        written.append(path)
    return written


def _plain(text: str) -> str:
    """Number text without exponent ("1e-05" -> "0.00001"); raises on anything but a finite number."""
    if not Decimal(text).is_finite():
        raise InvalidOperation(text)
    return format(Decimal(text), "f") if "e" in text or "E" in text else text


_READERS = {"octobot": read_octobot, "lean": read_lean, "freqtrade": read_freqtrade}
