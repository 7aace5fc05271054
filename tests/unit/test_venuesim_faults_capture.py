"""venuesim: venue data layout, fault settings and malformed frames, capture keying, CLI flags."""

from __future__ import annotations

import gzip
import json
from collections import Counter
from pathlib import Path

import pytest

from ticktape.testing.data import shared_data
from venuesim import faults
from venuesim.capture import binance_frame, hyperliquid_frame, read_capture
from venuesim.cli import fault_config, main, serve_parser
from venuesim.injector import ConnTap, Injector
from venuesim.stats import Stats
from venuesim.venues import BINANCE_SPOT, BINANCE_USDM, HYPERLIQUID, coin_of, load_venues

T0 = 1_700_000_040_000 - 1_700_000_040_000 % 60_000


def write_bars(path: Path, start: int, n: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [f"{t},1.0,1.0,1.0,1.0,1.0,{t + 59_999},1.0,1,0,0,0\n" for t in range(start, start + n * 60_000, 60_000)]
    path.write_text("".join(rows))


def test_load_venues_when_subdirectories_then_shared_files_everywhere_and_own_files_only_there(tmp_path):
    write_bars(tmp_path / "BTCUSDT-1m-a.csv", T0)
    write_bars(tmp_path / "binance_spot" / "ETHBTC-1m-a.csv", T0 + 60_000)
    write_bars(tmp_path / "hyperliquid" / "SOLUSDC-1m-a.csv", T0)
    write_bars(tmp_path / "binance_usdm" / "BTCUSDT-1m-a.csv", T0 + 120_000, n=5)  # replaces the shared one there
    venues = load_venues(tmp_path)
    assert {v: sorted(s) for v, s in venues.items()} == {
        BINANCE_USDM: ["BTCUSDT"], BINANCE_SPOT: ["BTCUSDT", "ETHBTC"], HYPERLIQUID: ["BTC", "SOL"]}  # fmt: skip
    assert len(venues[BINANCE_USDM]["BTCUSDT"]) == 5 and len(venues[BINANCE_SPOT]["BTCUSDT"]) == 2

    aligned = load_venues(tmp_path, aligned=True)
    assert {s.open_times[0] for v in aligned.values() for s in v.values()} == {T0}


def test_load_venues_when_nothing_to_serve_then_bad_input(tmp_path):
    (tmp_path / "binance_spot").mkdir()
    with pytest.raises(ValueError, match="no <SYMBOL>-1m"):
        load_venues(tmp_path)


def test_coin_of_when_quote_suffix_then_stripped():
    assert [coin_of(s) for s in ("BTCUSDT", "ETHUSDC", "kPEPE", "USDT")] == ["BTC", "ETH", "kPEPE", "USDT"]


@pytest.mark.parametrize("text", ["2", "2@", "@2", "3@2", "-1@5", "x@5"])
def test_parse_stall_when_invalid_then_error(text):
    with pytest.raises(ValueError, match="stall"):
        faults.parse_stall(text)


def test_parse_skip_when_indexes_and_iso_minutes_then_both_sets():
    indexes, times = faults.parse_skip("3, 5,2023-11-14T22:14Z,2023-11-14T22:15:00+00:00")
    assert indexes == {3, 5} and times == {1_700_000_040_000, 1_700_000_100_000}
    assert faults.parse_skip([1, "2023-11-14T22:14"]) == ({1}, {1_700_000_040_000})
    with pytest.raises(ValueError, match="minute boundary"):
        faults.parse_skip("2023-11-14T22:14:30Z")


def test_malformed_when_rotating_then_truncated_json_then_string_then_array():
    frame = '{"channel":"candle","data":{"t":1}}'
    bad = [faults.malformed(frame, n) for n in range(4)]
    with pytest.raises(ValueError):
        json.loads(bad[0])
    assert json.loads(bad[1]) == frame and json.loads(bad[2]) == [json.loads(frame)] and bad[3] == bad[0]


def test_conn_tap_when_malformed_every_3_then_one_bad_frame_after_every_third_data_frame():
    stats = Stats()
    tap = ConnTap(Injector(faults.FaultConfig(malformed_every=3), stats), HYPERLIQUID)
    extras = [tap.after_send(f'{{"n":{i}}}', data=True) for i in range(9)]
    assert tap.after_send('{"reply":1}', data=False) is None  # replies are not counted
    assert [i for i, e in enumerate(extras) if e is not None] == [2, 5, 8]
    assert (stats.frames_sent[HYPERLIQUID], stats.malformed_sent) == (9, 3)


def test_binance_frame_when_combined_then_stream_and_exact_payload_bytes():
    line = b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","p":"1.50"}}'
    frame = binance_frame(7, line)
    assert (frame.key, frame.combined) == ("btcusdt@trade", line.decode())
    assert frame.payload == '{"e":"trade","E":1,"s":"BTCUSDT","p":"1.50"}'


@pytest.mark.parametrize(
    ("payload", "stream"),
    [
        ('{"e":"trade","s":"BTCUSDT","t":1}', "btcusdt@trade"),
        ('{"e":"kline","s":"ETHUSDT","k":{"i":"1m"}}', "ethusdt@kline_1m"),
        ('{"e":"depthUpdate","s":"BTCUSDT","U":1}', "btcusdt@depth"),
        ('{"u":1,"s":"BTCUSDT","b":"1","B":"1","a":"2","A":"1"}', "btcusdt@bookTicker"),  # spot bookTicker: no "e"
        ('{"lastUpdateId":5,"bids":[],"asks":[]}', None),  # a REST snapshot is not a frame
    ],
)
def test_binance_frame_when_raw_payload_then_stream_from_event_and_symbol(payload, stream):
    frame = binance_frame(1, payload.encode())
    assert (frame.key if frame else None) == stream
    if frame:
        assert frame.payload == payload and frame.combined is None


def test_hyperliquid_frame_when_channels_then_channel_and_coin_keys():
    assert hyperliquid_frame(1, b'{"channel":"trades","data":[{"coin":"BTC","px":"1.0"}]}').key == "trades:BTC"
    assert hyperliquid_frame(1, b'{"channel":"l2Book","data":{"coin":"ETH","levels":[[],[]]}}').key == "l2Book:ETH"
    assert hyperliquid_frame(1, b'{"channel":"candle","data":{"s":"SOL","i":"1m","t":1}}').key == "candle:SOL:1m"
    assert hyperliquid_frame(1, b'{"channel":"subscriptionResponse","data":{"method":"subscribe"}}') is None


def test_read_capture_when_real_usdm_file_then_every_ws_frame_keyed_and_snapshot_skipped():
    path = shared_data("hftbacktest", "usdm_btcusdt_20240718.gz")
    keys = Counter(frame.key for frame in read_capture(path, BINANCE_USDM))
    # MANIFEST.md: 11414 lines = 7113 bookTicker + 3326 depth@0ms + 974 trade + 1 REST depth snapshot
    assert keys == {"btcusdt@bookTicker": 7113, "btcusdt@depth@0ms": 3326, "btcusdt@trade": 974}


def test_read_capture_when_plain_text_file_then_read_like_gzip(tmp_path):
    lines = [b'5 {"channel":"trades","data":[{"coin":"BTC"}]}', b"", b"oops", b'9 {"channel":"pong"}']
    plain, packed = tmp_path / "cap.txt", tmp_path / "cap.bin"
    plain.write_bytes(b"\n".join(lines) + b"\n")
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    for path in (plain, packed):
        assert [(f.recv_ns, f.key) for f in read_capture(path, HYPERLIQUID)] == [(5, "trades:BTC")]


def test_cli_fault_flags_when_given_then_fault_config():
    args = serve_parser().parse_args([
        "--data", "d", "--port", "0", "--fault-drop-every", "30", "--fault-stall", "2@10",
        "--fault-malformed-every", "100", "--fault-skip-minutes", "3,2023-11-14T22:14Z",
        "--fault-refuse-reconnect", "5", "--capture", "hyperliquid=/x.gz", "--capture", "binance_spot=/y",
    ])  # fmt: skip
    assert fault_config(args) == faults.FaultConfig(
        drop_every=30.0, stall=(2.0, 10.0), malformed_every=100, skip_indexes=frozenset({3}),
        skip_times=frozenset({1_700_000_040_000}), refuse_reconnect=5.0,
    )  # fmt: skip
    assert args.capture == [(HYPERLIQUID, Path("/x.gz")), (BINANCE_SPOT, Path("/y"))]


@pytest.mark.parametrize(
    "flag",
    [
        ["--fault-stall", "5@2"],
        ["--fault-drop-every", "0"],
        ["--capture", "kraken=/x.gz"],
        ["--fault-malformed-every", "1.5"],
    ],  # fmt: skip
)
def test_cli_when_bad_fault_flag_then_usage_error(flag, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["--data", "d", "--port", "0", *flag])
    assert exit_.value.code == 2


def test_cli_when_capture_has_no_frames_then_exit_2(tmp_path, capsys):
    write_bars(tmp_path / "BTCUSDT-1m-a.csv", T0)
    empty = tmp_path / "empty.gz"
    empty.write_bytes(gzip.compress(b'1 {"lastUpdateId":1,"bids":[],"asks":[]}\n'))
    assert main(["--data", str(tmp_path), "--port", "0", "--capture", f"binance_spot={empty}"]) == 2
    assert "empty.gz" in capsys.readouterr().err
