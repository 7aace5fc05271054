"""`python -m venuesim` as a process: listening line, serving, clean exit on SIGTERM; bad input."""

from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from ticktape.testing.data import shared_data
from venuesim.cli import main, parse_time
from venuesim.convert import convert_path

LISTENING = re.compile(r"^venue-sim listening on (http://127\.0\.0\.1:(\d+))$")


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    convert_path(shared_data("lean", "crypto_binance_minute_btcbusd_20221213_trade.zip"), tmp_path, "BTCUSDT")
    return tmp_path


async def test_cli_when_port_0_then_prints_listening_line_serves_and_exits_0_on_sigterm(data_dir):
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venuesim", "--data", str(data_dir), "--port", "0", "--speed", "6000",
        "--start", "2022-12-13T06:00:00Z",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=15)).decode().rstrip("\n")
        match = LISTENING.match(line)
        assert match, line
        async with aiohttp.ClientSession() as http, http.get(f"{match[1]}/fapi/v1/time") as resp:
            assert (await resp.json())["serverTime"] >= 1_670_911_200_000  # started at boot from --start
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(proc.communicate(), timeout=15)
    assert proc.returncode == 0, stderr.decode()


def test_cli_when_bad_input_then_exit_2_naming_file_and_line(tmp_path, capsys):
    (tmp_path / "BTCUSDT-1m-2024-01-01.csv").write_text("1704067200000,1,1,1,1,1,1704067259999,1,1,1,1,0\noops\n")
    assert main(["--data", str(tmp_path), "--port", "0"]) == 2
    assert "BTCUSDT-1m-2024-01-01.csv:2:" in capsys.readouterr().err


def test_cli_help_when_asked_then_documents_align(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0 and "--align" in capsys.readouterr().out


def test_parse_time_when_ms_or_iso_then_epoch_ms():
    midnight = 1_670_889_600_000
    assert parse_time(str(midnight)) == parse_time("2022-12-13T00:00:00Z") == parse_time("2022-12-13T00:00") == midnight


def test_venuesim_when_imported_then_ticktape_not_loaded():
    code = "import sys, venuesim.cli, venuesim.server, venuesim.convert; sys.exit('ticktape' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=30).returncode == 0
