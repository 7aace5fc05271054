"""MarketDataCore: closed bars out once each, in order, from live frames and REST backfill."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchanges import HyperliquidAdapter, Trade
from exchanges.base import FrameError
from services.market_data import core as md_core
from services.market_data.core import MarketDataCore
from ticktape import ids
from ticktape.clock import MINUTE_NS, NS_PER_MS
from ticktape.events import BarClosed, TradeTick, codec
from ticktape.testing.data import shared_data
from ticktape.venues import HYPERLIQUID

VENUE = "binance_usdm"
T0_MS = 1626992700000  # 2021-07-22 22:25 UTC, a minute boundary


def frame(
    open_ms: int = T0_MS, *, symbol: str = "BTCUSDT", closed: bool = True, interval: str = "1m", close: str = "101.0"
) -> bytes:
    k = {
        "t": open_ms,
        "T": open_ms + 59_999,
        "s": symbol,
        "i": interval,
        "f": 1,
        "L": 9,
        "o": "100.5",
        "c": close,
        "h": "102.0",
        "l": "99.5",
        "v": "12.5",
        "n": 9,
        "x": closed,
        "q": "1260.0",
        "V": "6.0",
        "Q": "605.0",
        "B": "0",
    }
    return json.dumps(
        {
            "stream": f"{symbol.lower()}@kline_{interval}",
            "data": {"e": "kline", "E": open_ms + 60_000, "s": symbol, "k": k},
        }
    ).encode()


def rest_row(open_ms: int, close: str = "101.0") -> list[object]:
    return [open_ms, "100.5", "102.0", "99.5", close, "12.5", open_ms + 59_999, "1260.0", 9, "6.0", "605.0", "0"]


def captured_frames(*streams: str) -> list[bytes]:
    path = shared_data("cryptofeed", "BINANCE_FUTURES.ws.1.0")
    return [
        line.partition(": ")[2].encode()
        for line in path.read_text().splitlines()
        if line[:1].isdigit() and any(f'{s}"' in line for s in streams)
    ]


def captured_kline_frames() -> list[bytes]:
    return captured_frames("@kline_1m")


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
        ts_event=1626992759999 * NS_PER_MS,
        ts_init=42,
        venue=VENUE,
        symbol="SUSHIUSDT",
        timeframe="1m",
        open_time=open_ns,
        close_time=1626992759999 * NS_PER_MS,
        open=7.608,
        high=7.618,
        low=7.607,
        close=7.617,
        volume=3005.0,
        quote_volume=22875.859,
        trades=113,
        taker_buy_volume=1900.0,
        taker_buy_quote_volume=14464.696,
        backfilled=False,
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
    assert [b.open_time for b in core.on_frame(frame(T0_MS + 60_000), ts_init=1)] == [(T0_MS + 60_000) * NS_PER_MS]


def test_backfill_start_is_the_bar_after_the_last_published() -> None:
    core = MarketDataCore(VENUE)
    assert core.backfill_start_ms("BTCUSDT") is None
    core.seed_last("BTCUSDT", T0_MS * NS_PER_MS)
    assert core.backfill_start_ms("BTCUSDT") == T0_MS + 60_000


def test_on_backfill_emits_closed_bars_oldest_first_marked_backfilled() -> None:
    core = MarketDataCore(VENUE)
    rows = [rest_row(T0_MS + i * 60_000) for i in (2, 0, 3, 1)]
    now_ms = T0_MS + 3 * 60_000 + 30_000  # bar 3 is still forming
    bars = core.on_backfill("BTCUSDT", rows, ts_init=7, now_ms=now_ms)
    assert [b.open_time for b in bars] == [(T0_MS + i * 60_000) * NS_PER_MS for i in range(3)]
    assert all(b.backfilled and b.ts_init == 7 and b.symbol == "BTCUSDT" for b in bars)
    assert bars[0].event_id == ids.bar_id(VENUE, "BTCUSDT", "1m", T0_MS * NS_PER_MS)
    assert bars[0].ts_event == (T0_MS + 59_999) * NS_PER_MS


def test_on_backfill_bar_closing_exactly_now_is_not_yet_closed() -> None:
    core = MarketDataCore(VENUE)
    assert core.on_backfill("BTCUSDT", [rest_row(T0_MS)], ts_init=1, now_ms=T0_MS + 59_999) == []
    assert len(core.on_backfill("BTCUSDT", [rest_row(T0_MS)], ts_init=1, now_ms=T0_MS + 60_000)) == 1


def test_backfill_then_live_frame_of_a_backfilled_bar_is_not_emitted_again() -> None:
    core = MarketDataCore(VENUE)
    rows = [rest_row(T0_MS + i * 60_000) for i in range(3)]
    core.on_backfill("BTCUSDT", rows, ts_init=1, now_ms=T0_MS + 10 * 60_000)
    assert core.on_frame(frame(T0_MS + 2 * 60_000), ts_init=2) == []
    live = core.on_frame(frame(T0_MS + 3 * 60_000), ts_init=3)
    assert [(b.open_time, b.backfilled) for b in live] == [((T0_MS + 3 * 60_000) * NS_PER_MS, False)]


def test_backfill_after_live_skips_published_and_fills_only_newer() -> None:
    core = MarketDataCore(VENUE)
    core.on_frame(frame(T0_MS + 60_000), ts_init=1)
    rows = [rest_row(T0_MS + i * 60_000) for i in range(4)]
    bars = core.on_backfill("BTCUSDT", rows, ts_init=2, now_ms=T0_MS + 10 * 60_000)
    assert [b.open_time for b in bars] == [(T0_MS + i * 60_000) * NS_PER_MS for i in (2, 3)]


def test_on_backfill_malformed_rows_raise_frame_error() -> None:
    with pytest.raises(FrameError, match="column 4 \\(close\\)"):
        MarketDataCore(VENUE).on_backfill("BTCUSDT", [rest_row(T0_MS, close="-1")], 1, T0_MS * 2)


@given(st.lists(st.tuples(st.integers(0, 30), st.booleans()), max_size=60))
def test_any_mix_of_live_and_backfill_emits_each_bar_at_most_once_in_order(steps: list[tuple[int, bool]]) -> None:
    core = MarketDataCore(VENUE)
    emitted: list[int] = []
    for minute, via_rest in steps:
        open_ms = T0_MS + minute * 60_000
        if via_rest:
            bars = core.on_backfill("BTCUSDT", [rest_row(open_ms)], 1, now_ms=T0_MS + 10**8)
        else:
            bars = core.on_frame(frame(open_ms), ts_init=1)
        emitted.extend(b.open_time for b in bars)
    assert emitted == sorted(set(emitted))
    assert all((t - T0_MS * NS_PER_MS) % MINUTE_NS == 0 for t in emitted)


# -- venue-generic core: trades, other venues, aggregation -----------------------------------


def agg_trade_frame(agg_id: int = 46744553, *, maker: bool = False) -> bytes:
    return json.dumps(
        {
            "stream": "sushiusdt@aggTrade",
            "data": {
                "e": "aggTrade",
                "E": 1626992741254,
                "a": agg_id,
                "s": "SUSHIUSDT",
                "p": "7.6040",
                "q": "9",
                "f": 99592540,
                "l": 99592540,
                "T": 1626992741101,
                "m": maker,
            },
        }
    ).encode()


def test_on_frame_agg_trade_emits_a_trade_tick() -> None:
    [tick] = MarketDataCore(VENUE).on_frame(agg_trade_frame(maker=True), ts_init=9)
    assert tick == TradeTick(
        event_id=ids.trade_id(VENUE, "SUSHIUSDT", "46744553"),
        ts_event=1626992741101 * NS_PER_MS,
        ts_init=9,
        venue=VENUE,
        symbol="SUSHIUSDT",
        trade_id="46744553",
        price=7.604,
        size=9.0,
        aggressor="sell",
    )


def test_on_frame_the_same_trade_twice_gets_the_same_id_for_jetstream_to_drop() -> None:
    core = MarketDataCore(VENUE)
    assert core.on_frame(agg_trade_frame(), 1) == core.on_frame(agg_trade_frame(), 1)


def test_on_frame_captured_usdm_stream_of_klines_and_trades_keeps_frame_order() -> None:
    core = MarketDataCore(VENUE)
    events = [e for raw in captured_frames("@kline_1m", "@aggTrade") for e in core.on_frame(raw, 1)]
    assert Counter(type(e).__name__ for e in events) == {"TradeTick": 91, "BarClosed": 4}


def test_core_takes_an_adapter_instance_or_a_venue_name() -> None:
    adapter = HyperliquidAdapter()
    core = MarketDataCore(adapter, "1m")
    assert (core.adapter, core.venue) == (adapter, "hyperliquid")
    assert MarketDataCore("binance_spot").venue == "binance_spot"
    with pytest.raises(ValueError, match="unknown venue 'kraken'"):
        MarketDataCore("kraken")


def test_reset_connection_drops_a_hyperliquid_candle_in_progress() -> None:
    core = MarketDataCore(HYPERLIQUID)
    hl = json.dumps(
        {
            "channel": "candle",
            "data": {
                "t": T0_MS,
                "T": T0_MS + 59_999,
                "s": "BTC",
                "i": "1m",
                "o": "1",
                "c": "1",
                "h": "1",
                "l": "1",
                "v": "1",
                "n": 1,
            },
        }
    )
    core.on_frame(hl, 1)
    core.reset_connection()
    assert core.on_frame(hl.replace(str(T0_MS), str(T0_MS + 60_000)), 1) == []


def test_backfill_request_starts_after_the_last_published_bar() -> None:
    core = MarketDataCore(VENUE)
    assert core.backfill_request("https://fapi.binance.com", "BTCUSDT", limit=1000, now_ms=0).url.endswith(
        "symbol=BTCUSDT&interval=1m&limit=1000"
    )
    core.seed_last("BTCUSDT", T0_MS * NS_PER_MS)
    assert core.backfill_request("https://fapi.binance.com", "BTCUSDT", limit=1000, now_ms=0).url.endswith(
        f"&startTime={T0_MS + 60_000}"
    )


def test_aggregate_bars_follow_the_one_minute_bar_that_closes_them() -> None:
    core = MarketDataCore(VENUE, aggregate=("5m", "15m"))
    start = 1626992400000  # 22:20 UTC, a 5m and 15m boundary
    out = [core.on_frame(frame(start + i * 60_000), ts_init=i) for i in range(5)]
    assert [[b.timeframe for b in o] for o in out] == [["1m"]] * 4 + [["1m", "5m"]]
    five = out[4][1]
    assert (five.open_time, five.close_time, five.causation_id, five.volume) == (
        start * NS_PER_MS,
        (start + 300_000 - 1) * NS_PER_MS,
        out[4][0].event_id,
        62.5,
    )


def test_aggregates_of_backfilled_bars_are_backfilled_and_warm_rebuilds_open_windows() -> None:
    start = 1626992400000
    rows = [rest_row(start + i * 60_000) for i in range(5)]
    core = MarketDataCore(VENUE, aggregate=("5m",))
    bars = core.on_backfill("BTCUSDT", rows, ts_init=1, now_ms=start + 10**7)
    assert [(b.timeframe, b.backfilled) for b in bars] == [("1m", True)] * 5 + [("5m", True)]
    # restart after 3 of the 5 minutes were published: warm with them, then the live rest
    restarted = MarketDataCore(VENUE, aggregate=("5m",))
    restarted.warm(bars[:3])
    assert restarted.last_open_time("BTCUSDT") == bars[2].open_time
    later = [b for i in (3, 4) for b in restarted.on_frame(frame(start + i * 60_000), ts_init=1)]
    assert [b.timeframe for b in later] == ["1m", "1m", "5m"]
    assert later[-1].volume == bars[-1].volume and later[-1].event_id == bars[-1].event_id


class _OneTrade:
    """A stub adapter whose every frame is one trade (only what on_frame touches)."""

    venue = "binance_spot"

    def __init__(self) -> None:
        self.trade = Trade("X", 1, 1.0, 1.0, 0, None)

    def parse(self, raw: bytes | str) -> list[Trade]:
        return [self.trade]


@given(symbol=st.text(min_size=1, max_size=16), trade_id=st.integers(0, 2**64) | st.text(max_size=40))
def test_trade_event_id_is_the_natural_key_of_venue_symbol_and_trade_id(symbol: str, trade_id: int | str) -> None:
    adapter = _OneTrade()
    core = MarketDataCore(adapter)  # type: ignore[arg-type]
    for _ in range(2):  # the second call uses the cached per-symbol prefix
        adapter.trade = Trade(symbol, trade_id, 1.0, 2.0, 3, None)
        [tick] = core.on_frame(b"", 0)
        assert tick.event_id == ids.trade_id("binance_spot", symbol, str(trade_id))
        assert (tick.trade_id, tick.aggressor) == (str(trade_id), "")


def test_live_bar_after_a_skipped_minute_is_held_until_the_gap_is_backfilled() -> None:
    core = MarketDataCore(VENUE)
    assert [b.open_time for b in core.on_frame(frame(T0_MS), 1)] == [T0_MS * NS_PER_MS]
    # minute T0+1 never arrives live; T0+2 does
    assert core.on_frame(frame(T0_MS + 120_000), 2) == []
    assert core.gaps() == ["BTCUSDT"]
    assert core.on_frame(frame(T0_MS + 180_000), 3) == []  # later bars queue behind the gap
    rows = [rest_row(T0_MS + 60_000)]
    filled = core.on_backfill("BTCUSDT", rows, 4, now_ms=T0_MS + 10 * 60_000)
    assert [(b.open_time // NS_PER_MS, b.backfilled) for b in filled] == [(T0_MS + 60_000, True)]
    released = core.release("BTCUSDT")
    assert [(b.open_time // NS_PER_MS, b.backfilled) for b in released] == [
        (T0_MS + 120_000, False),
        (T0_MS + 180_000, False),
    ]
    assert core.gaps() == []


def test_gap_the_venue_cannot_fill_is_released_in_order_after_backfill_finds_nothing() -> None:
    core = MarketDataCore(VENUE)
    core.on_frame(frame(T0_MS), 1)
    assert core.on_frame(frame(T0_MS + 300_000), 2) == []
    assert core.on_backfill("BTCUSDT", [], 3, now_ms=T0_MS + 10 * 60_000) == []
    assert [b.open_time // NS_PER_MS for b in core.release("BTCUSDT")] == [T0_MS + 300_000]
    assert core.on_frame(frame(T0_MS + 360_000), 4)[0].open_time // NS_PER_MS == T0_MS + 360_000
