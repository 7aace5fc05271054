"""MarketDataCore: closed bars out once each, in order, from live frames and REST backfill."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.market_data import core as md_core
from services.market_data.binance import FrameError
from services.market_data.core import MarketDataCore
from ticktape import ids
from ticktape.clock import MINUTE_NS, NS_PER_MS
from ticktape.events import BarClosed, codec
from ticktape.testing.data import shared_data

VENUE = "binance_usdm"
T0_MS = 1626992700000  # 2021-07-22 22:25 UTC, a minute boundary


def frame(open_ms: int = T0_MS, *, symbol: str = "BTCUSDT", closed: bool = True,
          interval: str = "1m", close: str = "101.0") -> bytes:
    k = {"t": open_ms, "T": open_ms + 59_999, "s": symbol, "i": interval, "f": 1, "L": 9,
         "o": "100.5", "c": close, "h": "102.0", "l": "99.5", "v": "12.5", "n": 9, "x": closed,
         "q": "1260.0", "V": "6.0", "Q": "605.0", "B": "0"}
    return json.dumps({"stream": f"{symbol.lower()}@kline_{interval}",
                       "data": {"e": "kline", "E": open_ms + 60_000, "s": symbol, "k": k}}).encode()


def rest_row(open_ms: int, close: str = "101.0") -> list[object]:
    return [open_ms, "100.5", "102.0", "99.5", close, "12.5", open_ms + 59_999, "1260.0", 9,
            "6.0", "605.0", "0"]


def captured_kline_frames() -> list[bytes]:
    path = shared_data("cryptofeed", "BINANCE_FUTURES.ws.1.0")
    return [line.partition(": ")[2].encode() for line in path.read_text().splitlines()
            if '@kline_1m"' in line and line[:1].isdigit()]


def test_core_consumes_no_bus_subjects() -> None:
    assert md_core.FILTER_SUBJECTS == ()


def test_on_frame_captured_stream_emits_only_closed_bars_with_exact_fields() -> None:
    core = MarketDataCore(VENUE)
    bars = [bar for raw in captured_kline_frames() for bar in core.on_frame(raw, ts_init=42)]
    assert sorted(b.symbol for b in bars) == ["AKROUSDT", "CTKUSDT", "KEEPUSDT", "SUSHIUSDT"]
    sushi = next(b for b in bars if b.symbol == "SUSHIUSDT")
    open_ns = 1626992700000 * NS_PER_MS
    assert sushi == BarClosed(
        event_id=ids.bar_id(VENUE, "SUSHIUSDT", "1m", open_ns),
        ts_event=1626992759999 * NS_PER_MS, ts_init=42, venue=VENUE, symbol="SUSHIUSDT",
        timeframe="1m", open_time=open_ns, close_time=1626992759999 * NS_PER_MS,
        open=7.608, high=7.618, low=7.607, close=7.617, volume=3005.0, quote_volume=22875.859,
        trades=113, taker_buy_volume=1900.0, taker_buy_quote_volume=14464.696, backfilled=False,
    )
    assert all(codec.decode(codec.encode(b)) == b for b in bars)


def test_on_frame_open_bar_and_ack_return_nothing() -> None:
    core = MarketDataCore(VENUE)
    assert core.on_frame(frame(closed=False), ts_init=1) == []
    assert core.on_frame(b'{"result":null,"id":1}', ts_init=1) == []
    assert core.last_open_time("BTCUSDT") is None


def test_on_frame_same_closed_bar_twice_emits_once() -> None:
    core = MarketDataCore(VENUE)
    assert len(core.on_frame(frame(), ts_init=1)) == 1
    assert core.on_frame(frame(close="999"), ts_init=2) == []


def test_on_frame_older_bar_after_newer_is_dropped() -> None:
    core = MarketDataCore(VENUE)
    core.on_frame(frame(T0_MS + 60_000), ts_init=1)
    assert core.on_frame(frame(T0_MS), ts_init=2) == []


def test_on_frame_symbols_are_deduplicated_independently() -> None:
    core = MarketDataCore(VENUE)
    assert len(core.on_frame(frame(symbol="BTCUSDT"), ts_init=1)) == 1
    assert len(core.on_frame(frame(symbol="ETHUSDT"), ts_init=1)) == 1


def test_on_frame_malformed_raises_frame_error_and_keeps_state() -> None:
    core = MarketDataCore(VENUE)
    with pytest.raises(FrameError):
        core.on_frame(frame()[:-3], ts_init=1)
    assert len(core.on_frame(frame(), ts_init=1)) == 1


def test_on_frame_other_interval_raises_frame_error() -> None:
    with pytest.raises(FrameError, match="interval '5m'"):
        MarketDataCore(VENUE).on_frame(frame(interval="5m"), ts_init=1)


def test_unknown_timeframe_is_rejected_at_construction() -> None:
    with pytest.raises(ValueError, match="unknown timeframe '7m'"):
        MarketDataCore(VENUE, "7m")


def test_seed_last_after_restart_suppresses_already_published_bars() -> None:
    core = MarketDataCore(VENUE)
    core.seed_last("BTCUSDT", T0_MS * NS_PER_MS)
    core.seed_last("BTCUSDT", (T0_MS - 60_000) * NS_PER_MS)  # an older seed never lowers the mark
    assert core.on_frame(frame(T0_MS), ts_init=1) == []
    assert [b.open_time for b in core.on_frame(frame(T0_MS + 60_000), ts_init=1)] == [
        (T0_MS + 60_000) * NS_PER_MS]


def test_backfill_start_is_the_bar_after_the_last_published() -> None:
    core = MarketDataCore(VENUE)
    assert core.backfill_start_ms("BTCUSDT") is None
    core.seed_last("BTCUSDT", T0_MS * NS_PER_MS)
    assert core.backfill_start_ms("BTCUSDT") == T0_MS + 60_000


def test_on_rest_klines_emits_closed_bars_oldest_first_marked_backfilled() -> None:
    core = MarketDataCore(VENUE)
    rows = [rest_row(T0_MS + i * 60_000) for i in (2, 0, 3, 1)]
    now_ms = T0_MS + 3 * 60_000 + 30_000  # bar 3 is still forming
    bars = core.on_rest_klines("BTCUSDT", rows, ts_init=7, now_ms=now_ms)
    assert [b.open_time for b in bars] == [(T0_MS + i * 60_000) * NS_PER_MS for i in range(3)]
    assert all(b.backfilled and b.ts_init == 7 and b.symbol == "BTCUSDT" for b in bars)
    assert bars[0].event_id == ids.bar_id(VENUE, "BTCUSDT", "1m", T0_MS * NS_PER_MS)
    assert bars[0].ts_event == (T0_MS + 59_999) * NS_PER_MS


def test_on_rest_klines_bar_closing_exactly_now_is_not_yet_closed() -> None:
    core = MarketDataCore(VENUE)
    assert core.on_rest_klines("BTCUSDT", [rest_row(T0_MS)], ts_init=1, now_ms=T0_MS + 59_999) == []
    assert len(core.on_rest_klines("BTCUSDT", [rest_row(T0_MS)], ts_init=1, now_ms=T0_MS + 60_000)) == 1


def test_backfill_then_live_frame_of_a_backfilled_bar_is_not_emitted_again() -> None:
    core = MarketDataCore(VENUE)
    rows = [rest_row(T0_MS + i * 60_000) for i in range(3)]
    core.on_rest_klines("BTCUSDT", rows, ts_init=1, now_ms=T0_MS + 10 * 60_000)
    assert core.on_frame(frame(T0_MS + 2 * 60_000), ts_init=2) == []
    live = core.on_frame(frame(T0_MS + 3 * 60_000), ts_init=3)
    assert [(b.open_time, b.backfilled) for b in live] == [((T0_MS + 3 * 60_000) * NS_PER_MS, False)]


def test_backfill_after_live_skips_published_and_fills_only_newer() -> None:
    core = MarketDataCore(VENUE)
    core.on_frame(frame(T0_MS + 60_000), ts_init=1)
    rows = [rest_row(T0_MS + i * 60_000) for i in range(4)]
    bars = core.on_rest_klines("BTCUSDT", rows, ts_init=2, now_ms=T0_MS + 10 * 60_000)
    assert [b.open_time for b in bars] == [(T0_MS + i * 60_000) * NS_PER_MS for i in (2, 3)]


def test_on_rest_klines_malformed_rows_raise_frame_error() -> None:
    with pytest.raises(FrameError, match="column 4 \\(close\\)"):
        MarketDataCore(VENUE).on_rest_klines("BTCUSDT", [rest_row(T0_MS, close="-1")], 1, T0_MS * 2)


@given(st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=60))
def test_any_mix_of_live_and_backfill_emits_each_bar_at_most_once_in_order(
        steps: list[tuple[int, bool]]) -> None:
    core = MarketDataCore(VENUE)
    emitted: list[int] = []
    for minute, via_rest in steps:
        open_ms = T0_MS + minute * 60_000
        if via_rest:
            bars = core.on_rest_klines("BTCUSDT", [rest_row(open_ms)], 1, now_ms=T0_MS + 10**8)
        else:
            bars = core.on_frame(frame(open_ms), ts_init=1)
        emitted.extend(b.open_time for b in bars)
    assert emitted == sorted(set(emitted))
    assert all((t - T0_MS * NS_PER_MS) % MINUTE_NS == 0 for t in emitted)
