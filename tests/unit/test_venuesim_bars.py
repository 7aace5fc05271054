"""venuesim.bars: loading Binance kline CSVs and aligning symbols; venuesim.clock."""

from __future__ import annotations

from pathlib import Path

import pytest

from venuesim.bars import BarDataError, align, load_csv, load_dir, symbol_of
from venuesim.clock import SimClock

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000
HEADER = (
    "open_time,open,high,low,close,volume,close_time,quote_volume,count,"
    "taker_buy_volume,taker_buy_quote_volume,ignore\n"
)


def row(t: int, close: str = "101.50", scale: int = 1) -> str:
    return f"{t * scale},100.00,102.10,99.90,{close},12.345,{(t + 59_999) * scale + scale - 1},1250.5,42,6.1,618.0,0\n"


def write(path: Path, *lines: str) -> Path:
    path.write_text("".join(lines))
    return path


def test_load_csv_when_ms_rows_then_keeps_recorded_text(tmp_path):
    bars = load_csv(write(tmp_path / "BTCUSDT-1m-2023-11-14.csv", row(T0), row(T0 + 60_000, close="101.40")))
    assert [b.open_time for b in bars] == [T0, T0 + 60_000]
    first = bars[0]
    assert (first.open, first.high, first.low, first.close, first.volume) == (
        "100.00", "102.10", "99.90", "101.50", "12.345")  # fmt: skip
    assert (first.close_time, first.quote_volume, first.trades, first.taker_base, first.taker_quote) == (
        T0 + 59_999,
        "1250.5",
        42,
        "6.1",
        "618.0",
    )
    assert bars[1].close == "101.40"


def test_load_csv_when_microsecond_timestamps_and_header_then_converted_to_ms(tmp_path):
    bars = load_csv(write(tmp_path / "BTCUSDT-1m-2025-01-01.csv", HEADER, row(T0, scale=1000)))
    assert (bars[0].open_time, bars[0].close_time) == (T0, T0 + 59_999)


@pytest.mark.parametrize(
    ("bad_line", "what"),
    [
        ("1,2,3\n", "12 columns"),
        (row(T0 + 60_000).replace("102.10", "abc"), "column 3"),
        (row(T0 + 60_000).replace(",42,", ",4.2,"), "column 9"),
        (row(T0 + 61_000), "not a 1m bar"),
        (row(T0), "not after"),
    ],
)
def test_load_csv_when_row_malformed_then_error_names_file_and_line(tmp_path, bad_line, what):
    path = write(tmp_path / "BTCUSDT-1m-x.csv", row(T0), bad_line)
    with pytest.raises(BarDataError) as err:
        load_csv(path)
    assert f"{path}:2:" in str(err.value) and what in str(err.value)


def test_load_dir_when_several_files_per_symbol_then_joined_in_time_order(tmp_path):
    write(tmp_path / "ETHUSDT-1m-day2.csv", row(T0 + 120_000))
    write(tmp_path / "ETHUSDT-1m-day1.csv", row(T0), row(T0 + 60_000))
    write(tmp_path / "btcusdt-1m.csv", row(T0))
    write(tmp_path / "BTCUSDT-1h-2023.csv", row(T0))  # not 1m: ignored
    write(tmp_path / "notes.txt", "x")
    series = load_dir(tmp_path)
    assert list(series) == ["BTCUSDT", "ETHUSDT"]
    assert [b.open_time for b in series["ETHUSDT"]] == [T0, T0 + 60_000, T0 + 120_000]


def test_load_dir_when_files_overlap_then_error(tmp_path):
    write(tmp_path / "ETHUSDT-1m-a.csv", row(T0), row(T0 + 60_000))
    write(tmp_path / "ETHUSDT-1m-b.csv", row(T0 + 60_000))
    with pytest.raises(BarDataError, match="overlaps"):
        load_dir(tmp_path)


def test_load_dir_when_no_bar_files_then_error(tmp_path):
    with pytest.raises(BarDataError, match="no <SYMBOL>-1m"):
        load_dir(tmp_path)


def test_symbol_of_when_not_a_1m_file_then_none():
    assert symbol_of(Path("BTCUSDT-1m-2024-01-01.csv")) == "BTCUSDT"
    assert symbol_of(Path("BTCUSDT-1mo-2024.csv")) is None
    assert symbol_of(Path("BTCUSDT-1m.json")) is None


def test_align_when_symbols_start_on_different_days_then_all_start_at_earliest(tmp_path):
    day = 86_400_000
    write(tmp_path / "AUSDT-1m.csv", row(T0 + 3 * day + 120_000), row(T0 + 3 * day + 300_000))
    write(tmp_path / "BUSDT-1m.csv", row(T0))
    aligned = align(load_dir(tmp_path))
    a = aligned["AUSDT"]
    assert [(b.open_time, b.close_time) for b in a] == [(T0, T0 + 59_999), (T0 + 180_000, T0 + 239_999)]
    assert a[1].close == "101.50" and aligned["BUSDT"][0].open_time == T0


class FakeWall:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_clock_when_not_started_then_frozen_at_t0():
    wall = FakeWall()
    clock = SimClock(T0, speed=600, wall=wall)
    wall.t += 5
    assert (clock.started, clock.now_ms(), clock.wall_seconds_until(T0 + 1)) == (False, T0, float("inf"))


def test_clock_when_started_then_sim_time_is_t0_plus_wall_elapsed_times_speed():
    wall = FakeWall()
    clock = SimClock(T0, speed=600, wall=wall)
    assert clock.start() is True
    wall.t += 0.5
    assert clock.now_ms() == T0 + 300_000
    assert clock.wall_seconds_until(T0 + 600_000) == pytest.approx(0.5)
    assert clock.wall_seconds_until(T0) == 0.0
    assert clock.start() is False and clock.now_ms() == T0 + 300_000


def test_clock_when_speed_not_positive_then_rejected():
    with pytest.raises(ValueError):
        SimClock(T0, speed=0)
