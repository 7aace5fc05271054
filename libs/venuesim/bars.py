"""Recorded 1m bars: load Binance kline CSVs (data.binance.vision layout) and align symbols in time.

A symbol's bars are held compactly (1,000 symbol-days are 1.44M bars): each recorded CSV line as
one string, so frames carry exactly the recorded number text, plus array columns of open times,
trade counts and the float values that window statistics need."""

from __future__ import annotations

import gc
import re
from array import array
from collections.abc import Iterator
from pathlib import Path
from typing import overload

import msgspec

MINUTE_MS = 60_000
# Binance switched some dumps to microsecond timestamps; anything this large cannot be ms (year 5138).
_MICROS_THRESHOLD = 100_000_000_000_000
_SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,30}$")
_NUM_RE = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_NUMERIC_COLS = (1, 2, 3, 4, 5, 7, 9, 10)
_NUM_START = frozenset("-.0123456789")


class BarDataError(ValueError):
    """A bar file is missing or malformed; the message names the file and line."""


class Bar(msgspec.Struct, frozen=True):
    """One recorded 1m kline; numbers are the recorded text."""

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


class BarSeries:
    """One symbol's bars in time order. `fields(i)` gives bar i's 12 CSV fields with ms times."""

    __slots__ = ("open_times", "trades", "highs", "lows", "volumes", "quote_volumes", "_lines")

    def __init__(self) -> None:
        self.open_times = array("q")
        self.trades = array("q")
        self.highs, self.lows = array("d"), array("d")
        self.volumes, self.quote_volumes = array("d"), array("d")
        self._lines: list[str] = []

    def __len__(self) -> int:
        return len(self._lines)

    @property
    def lines(self) -> list[str]:
        """The recorded CSV lines (times as recorded: maybe µs, before any shift). Do not modify."""
        return self._lines

    def fields(self, i: int) -> list[str]:
        cols = self._lines[i].split(",")
        # times come from open_times: the line may hold µs, or times from before an `align` shift
        t = self.open_times[i]
        cols[0], cols[6] = str(t), str(t + MINUTE_MS - 1)
        return cols

    @overload
    def __getitem__(self, i: int) -> Bar: ...
    @overload
    def __getitem__(self, i: slice) -> list[Bar]: ...
    def __getitem__(self, i: int | slice) -> Bar | list[Bar]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        c = self.fields(i)
        return Bar(int(c[0]), c[1], c[2], c[3], c[4], c[5], int(c[6]), c[7], int(c[8]), c[9], c[10])

    def __iter__(self) -> Iterator[Bar]:
        return (self[i] for i in range(len(self)))

    def append_line(self, line: str) -> int:
        """Validate and add one CSV line; returns its open time. Raises ValueError when malformed."""
        cols = line.split(",")
        if len(cols) != 12:
            raise ValueError
        for col in _NUMERIC_COLS:  # float() is the fast check; first/last char tests reject nan, inf, " 1"
            text = cols[col]
            if text[0] not in _NUM_START or not (text[-1].isdigit() or text[-1] == "."):
                raise ValueError
        high, low, volume, quote = float(cols[2]), float(cols[3]), float(cols[5]), float(cols[7])
        float(cols[1]), float(cols[4]), float(cols[9]), float(cols[10])
        open_time, close_time, trades = _ms(cols[0]), _ms(cols[6]), int(cols[8])
        if open_time % MINUTE_MS or close_time != open_time + MINUTE_MS - 1:
            raise _NotOneMinute(f"not a 1m bar (open_time {open_time}, close_time {close_time})")
        if self._lines and open_time <= self.open_times[-1]:
            raise _NotOneMinute(f"open_time {open_time} is not after the previous row")
        self.open_times.append(open_time)
        self.trades.append(trades)
        self.highs.append(high)
        self.lows.append(low)
        self.volumes.append(volume)
        self.quote_volumes.append(quote)
        self._lines.append(line)
        return open_time

    def extend(self, other: BarSeries) -> None:
        """Append a later series of the same symbol."""
        for name in ("open_times", "trades", "highs", "lows", "volumes", "quote_volumes", "_lines"):
            getattr(self, name).extend(getattr(other, name))

    def shifted(self, ms: int) -> BarSeries:
        """The same bars with open and close times moved by `ms` (the lines are shared)."""
        out = BarSeries()
        out.extend(self)
        out.open_times = array("q", (t + ms for t in self.open_times))
        return out

    @classmethod
    def from_bars(cls, bars: list[Bar]) -> BarSeries:
        """Build a series from Bar values (tests, converters)."""
        out = cls()
        for b in bars:
            out.append_line(",".join(str(x) for x in (*msgspec.structs.astuple(b), "0")))
        return out


class _NotOneMinute(ValueError):
    pass


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


def load_dir(data_dir: Path) -> dict[str, BarSeries]:
    """Load every `<SYMBOL>-1m*.csv` in `data_dir`; each symbol's files are joined in time order."""
    if not data_dir.is_dir():
        raise BarDataError(f"{data_dir}: not a directory")
    per_symbol: dict[str, list[tuple[Path, BarSeries]]] = {}
    # Loading allocates millions of short-lived objects and creates no cycles; with the cyclic GC
    # running, 1,000 symbol-days load about twice as slowly.
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for path in sorted(data_dir.iterdir()):
            symbol = symbol_of(path)
            if symbol is not None and path.is_file():
                bars = load_csv(path)
                if len(bars):
                    per_symbol.setdefault(symbol, []).append((path, bars))
    finally:
        if gc_was_enabled:
            gc.enable()
    if not per_symbol:
        raise BarDataError(f"{data_dir}: no <SYMBOL>-1m*.csv files with bars")
    return {symbol: _concat(files) for symbol, files in sorted(per_symbol.items())}


def _concat(files: list[tuple[Path, BarSeries]]) -> BarSeries:
    files.sort(key=lambda item: item[1].open_times[0])
    out = BarSeries()
    for path, bars in files:
        if len(out) and bars.open_times[0] <= out.open_times[-1]:
            raise BarDataError(
                f"{path}: first bar {bars.open_times[0]} overlaps an earlier file of the same symbol "
                f"(which ends at {out.open_times[-1]})"
            )
        out.extend(bars)
    return out


def load_csv(path: Path) -> BarSeries:
    """Parse one kline CSV (ms or µs timestamps, optional header row), strictly increasing in time."""
    bars = BarSeries()
    with path.open(encoding="utf-8", newline="") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip()
            if not line or (lineno == 1 and not line[:1].isdigit()):
                continue  # newer dumps start with a header `open_time,open,high,...`
            try:
                bars.append_line(line)
            except _NotOneMinute as exc:
                raise BarDataError(f"{path}:{lineno}: {exc}") from None
            except (ValueError, IndexError):
                raise BarDataError(f"{path}:{lineno}: {_diagnose(line)}: {line[:100]!r}") from None
    return bars


def _diagnose(line: str) -> str:
    cols = line.split(",")
    if len(cols) != 12:
        return f"expected 12 columns, got {len(cols)}"
    for col in (0, 6, 8):
        if not cols[col].isdigit():
            return f"column {col + 1} must be a non-negative integer, got {cols[col]!r}"
    for col in _NUMERIC_COLS:
        if not _NUM_RE.match(cols[col]):
            return f"column {col + 1} is not a number: {cols[col]!r}"
    return "malformed row"


def _ms(text: str) -> int:
    if not text.isdigit():
        raise ValueError(text)
    value = int(text)
    return value // 1000 if value >= _MICROS_THRESHOLD else value


def align(series: dict[str, BarSeries], earliest: int | None = None) -> dict[str, BarSeries]:
    """Shift each symbol by whole minutes so every series starts at the earliest start among them
    (or at `earliest`, a minute boundary, when given: venues aligned onto one timeline).

    The captures we have are single days of different symbols on different dates; aligning them
    lets one run replay them side by side."""
    if not series:
        return {}
    if earliest is None:
        earliest = min(bars.open_times[0] for bars in series.values())
    # both starts are minute-aligned, so every shift is whole minutes
    return {symbol: bars.shifted(earliest - bars.open_times[0]) for symbol, bars in series.items()}
