"""Recorded 1m bars: load Binance kline CSVs (data.binance.vision layout) and align symbols in time."""

from __future__ import annotations

import re
from pathlib import Path

import msgspec

MINUTE_MS = 60_000
# Binance switched some dumps to microsecond timestamps; anything this large cannot be ms (year 5138).
_MICROS_THRESHOLD = 100_000_000_000_000
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")


class BarDataError(ValueError):
    """A bar file is missing or malformed; the message names the file and line."""


class Bar(msgspec.Struct, frozen=True, gc=False):
    """One recorded 1m kline. Numbers stay the recorded text so frames carry exactly what was seen."""

    open_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    close_time: int
    quote_volume: str
    trades: int
    taker_base: str
    taker_quote: str


def symbol_of(path: Path) -> str | None:
    """`BTCUSDT-1m-2024-01-01.csv` -> `BTCUSDT`; None when the name is not `<SYMBOL>-1m*.csv`."""
    name = path.name
    if not name.endswith(".csv") or "-1m" not in name:
        return None
    head, _, tail = name.partition("-1m")
    if tail[:1] not in ("", "-", "."):  # `-1mo` or similar is not a 1m file
        return None
    symbol = head.upper()
    return symbol if _SYMBOL_RE.match(symbol) else None


def load_dir(data_dir: Path) -> dict[str, list[Bar]]:
    """Load every `<SYMBOL>-1m*.csv` in `data_dir`; each symbol's files are joined in time order."""
    if not data_dir.is_dir():
        raise BarDataError(f"{data_dir}: not a directory")
    per_symbol: dict[str, list[tuple[Path, list[Bar]]]] = {}
    for path in sorted(data_dir.iterdir()):
        symbol = symbol_of(path)
        if symbol is None or not path.is_file():
            continue
        bars = load_csv(path)
        if bars:
            per_symbol.setdefault(symbol, []).append((path, bars))
    if not per_symbol:
        raise BarDataError(f"{data_dir}: no <SYMBOL>-1m*.csv files with bars")
    return {symbol: _concat(files) for symbol, files in sorted(per_symbol.items())}


def _concat(files: list[tuple[Path, list[Bar]]]) -> list[Bar]:
    files.sort(key=lambda item: item[1][0].open_time)
    out: list[Bar] = []
    for path, bars in files:
        if out and bars[0].open_time <= out[-1].open_time:
            raise BarDataError(
                f"{path}: first bar {bars[0].open_time} overlaps an earlier file of the same symbol "
                f"(which ends at {out[-1].open_time})"
            )
        out.extend(bars)
    return out


def load_csv(path: Path) -> list[Bar]:
    """Parse one kline CSV (ms or µs timestamps, optional header row), strictly increasing in time."""
    bars: list[Bar] = []
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.strip()
            if not line:
                continue
            if lineno == 1 and not line[:1].isdigit():
                continue  # newer dumps start with `open_time,open,high,...`
            bar = _parse_row(line, path, lineno)
            if bars and bar.open_time <= bars[-1].open_time:
                raise BarDataError(f"{path}:{lineno}: open_time {bar.open_time} is not after the previous row")
            bars.append(bar)
    return bars


_NUM = r"(-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)"
_INT = r"(\d+)"
_ROW_RE = re.compile(
    "^" + ",".join([_INT, _NUM, _NUM, _NUM, _NUM, _NUM, _INT, _NUM, _INT, _NUM, _NUM]) + ",([^,]*)$"
)
_NUM_RE = re.compile(_NUM + "$")


def _parse_row(line: str, path: Path, lineno: int) -> Bar:
    match = _ROW_RE.match(line)
    if match is None:
        raise BarDataError(f"{path}:{lineno}: {_diagnose(line)}: {line[:100]!r}")
    g = match.groups()
    open_time, close_time = _ms(g[0]), _ms(g[6])
    if open_time % MINUTE_MS or close_time != open_time + MINUTE_MS - 1:
        raise BarDataError(f"{path}:{lineno}: not a 1m bar (open_time {open_time}, close_time {close_time})")
    return Bar(open_time, g[1], g[2], g[3], g[4], g[5], close_time, g[7], int(g[8]), g[9], g[10])


def _diagnose(line: str) -> str:
    cols = line.split(",")
    if len(cols) != 12:
        return f"expected 12 columns, got {len(cols)}"
    for col in (0, 6, 8):
        if not cols[col].isdigit():
            return f"column {col + 1} must be a non-negative integer, got {cols[col]!r}"
    for col in (1, 2, 3, 4, 5, 7, 9, 10):
        if not _NUM_RE.match(cols[col]):
            return f"column {col + 1} is not a number: {cols[col]!r}"
    return "malformed row"


def _ms(text: str) -> int:
    value = int(text)
    return value // 1000 if value >= _MICROS_THRESHOLD else value


def align(series: dict[str, list[Bar]]) -> dict[str, list[Bar]]:
    """Shift each symbol by whole minutes so every series starts at the earliest start among them.

    The captures we have are single days of different symbols on different dates; aligning them
    lets one run replay them side by side."""
    if not series:
        return {}
    earliest = min(bars[0].open_time for bars in series.values())
    out: dict[str, list[Bar]] = {}
    for symbol, bars in series.items():
        shift = bars[0].open_time - earliest  # both are minute-aligned, so this is whole minutes
        out[symbol] = (
            bars
            if shift == 0
            else [
                msgspec.structs.replace(b, open_time=b.open_time - shift, close_time=b.close_time - shift)
                for b in bars
            ]
        )
    return out
