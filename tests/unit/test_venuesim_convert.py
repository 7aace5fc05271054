"""venuesim.convert: OctoBot / Lean / freqtrade 1m bars -> Binance kline CSVs the simulator loads."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zipfile
from contextlib import closing
from decimal import Decimal

import pytest

from ticktape.testing.data import shared_data
from venuesim.bars import load_dir
from venuesim.cli import main
from venuesim.convert import ConvertError, convert_path

OCTOBOT_BTC = "AbstractExchangeHistoryCollector_1581774962.1269426.data"
LEAN_BTCBUSD = "crypto_binance_minute_btcbusd_20221213_trade.zip"


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_convert_octobot_when_real_file_then_every_1m_candle_round_trips(tmp_path):
    source = shared_data("octobot", OCTOBOT_BTC)
    before = _digest(source)
    with closing(sqlite3.connect(source.resolve().as_uri() + "?mode=ro", uri=True)) as db:
        candles = [json.loads(c) for (c,) in db.execute(
            "SELECT candle FROM ohlcv WHERE time_frame = '1m' ORDER BY timestamp")]  # fmt: skip

    written = convert_path(source, tmp_path)

    assert [p.name for p in written] == ["BTCUSDT-1m-2018-04-28.csv"]
    bars = load_dir(tmp_path)["BTCUSDT"]
    assert len(bars) == len(candles) == 502
    for bar, candle in ((bars[0], candles[0]), (bars[-1], candles[-1])):
        assert bar.open_time == int(candle[0] * 1000)
        assert [float(x) for x in (bar.open, bar.high, bar.low, bar.close, bar.volume)] == candle[1:6]
        assert (bar.trades, bar.taker_base, bar.taker_quote) == (0, "0", "0")
    assert _digest(source) == before


def test_convert_lean_when_real_zip_then_date_and_symbol_from_name(tmp_path):
    source = shared_data("lean", LEAN_BTCBUSD)
    with zipfile.ZipFile(source) as zf:
        lines = zf.read("20221213_btcbusd_minute_trade.csv").decode().split()
    midnight = 1_670_889_600_000  # 2022-12-13T00:00Z

    written = convert_path(source, tmp_path)

    assert [p.name for p in written] == ["BTCBUSD-1m-2022-12-13.csv"]
    bars = load_dir(tmp_path)["BTCBUSD"]
    assert len(bars) == len(lines) == 1440
    for bar, line in ((bars[0], lines[0]), (bars[-1], lines[-1])):
        ms, o, h, lo, c, v = line.split(",")
        assert (bar.open_time, bar.open, bar.high, bar.low, bar.close, bar.volume) == (
            midnight + int(ms), o, h, lo, c, v)  # fmt: skip


def test_convert_when_symbol_given_for_lean_then_written_under_that_symbol(tmp_path):
    written = convert_path(shared_data("lean", LEAN_BTCBUSD), tmp_path, "BTCUSDT")
    assert [p.name for p in written] == ["BTCUSDT-1m-2022-12-13.csv"]


def test_convert_when_run_twice_then_output_identical(tmp_path):
    source = shared_data("octobot", OCTOBOT_BTC)
    first = convert_path(source, tmp_path / "a")[0].read_bytes()
    assert convert_path(source, tmp_path / "b")[0].read_bytes() == first


def test_convert_when_source_lacks_quote_volume_then_derived_from_typical_price(tmp_path):
    source = tmp_path / "in" / "series.json"
    source.parent.mkdir()
    source.write_text("[[1700000040000, 10, 12, 8, 11.5, 2.5], [1700000100000, 1e-05, 2E-5, 1e-05, 2e-05, 3]]")

    convert_path(source, tmp_path / "out", "TESTUSDT")

    bars = load_dir(tmp_path / "out")["TESTUSDT"]
    assert bars[0].quote_volume == f"{Decimal('2.5') * (10 + 12 + 8 + Decimal('11.5')) / 4:.8f}" == "25.93750000"
    assert (bars[1].open, bars[1].high) == ("0.00001", "0.00002")  # exponents written out
    assert bars[1].close_time == 1_700_000_159_999


def test_convert_freqtrade_when_real_file_named_by_pair_then_symbol_from_name(tmp_path):
    source = shared_data("freqtrade", "UNITTEST_BTC-1m.json")
    written = convert_path(source, tmp_path)
    bars = load_dir(tmp_path)["UNITTESTBTC"]
    assert len(bars) == len(json.loads(source.read_text())) == 13_681
    assert written[0].name == "UNITTESTBTC-1m-2017-11-04.csv"


def test_convert_freqtrade_when_not_1m_then_refused(tmp_path):
    source = tmp_path / "XRP_USDT-1h.json"
    source.write_text("[[1700000400000, 1, 1, 1, 1, 1], [1700004000000, 1, 1, 1, 1, 1]]")
    with pytest.raises(ConvertError, match="not 1m"):
        convert_path(source, tmp_path / "out", "XRPUSDT")


def test_convert_when_freqtrade_file_without_symbol_then_error(tmp_path):
    source = tmp_path / "bars.json"
    source.write_text("[]")
    with pytest.raises(ConvertError, match="--symbol"):
        convert_path(source, tmp_path / "out")


def test_cli_convert_when_directory_then_converts_recognized_files_and_exits_0(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    (source / "BTC_USDT-1m.json").write_text("[[1700000040000, 10, 12, 8, 11, 2]]")
    (source / "readme.txt").write_text("not data")
    assert main(["convert", str(source), str(tmp_path / "out")]) == 0
    assert capsys.readouterr().out.strip().endswith("BTCUSDT-1m-2023-11-14.csv")


def test_cli_convert_when_unrecognized_file_then_exit_2(tmp_path, capsys):
    (tmp_path / "x.txt").write_text("x")
    assert main(["convert", str(tmp_path / "x.txt"), str(tmp_path / "out")]) == 2
