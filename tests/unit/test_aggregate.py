"""BarAggregator: UTC-aligned windows, emitted once when closed (last minute or a gap), exact
field rules, duplicates and late bars ignored, byte-identical output for identical input."""

from __future__ import annotations

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.market_data.aggregate import DEFAULT_TIMEFRAMES, BarAggregator
from ticktape import ids
from ticktape.clock import MINUTE_NS, NS_PER_MS, TIMEFRAME_NS
from ticktape.events import BarClosed

VENUE, SYMBOL = "binance_usdm", "BTCUSDT"
DAY = 1_700_006_400 * 1_000_000_000  # 2023-11-15 00:00:00 UTC in ns
_encoder = msgspec.json.Encoder()


def minute_bar(
    minute: int,
    *,
    o: float = 10.0,
    h: float = 12.0,
    low: float = 9.0,
    c: float = 11.0,
    v: float = 1.5,
    backfilled: bool = False,
    symbol: str = SYMBOL,
    venue: str = VENUE,
    ts_init: int | None = None,
) -> BarClosed:
    """The 1m bar `minute` minutes after DAY (negative: before it)."""
    t = DAY + minute * MINUTE_NS
    return BarClosed(
        event_id=ids.bar_id(venue, symbol, "1m", t),
        ts_event=t + MINUTE_NS - NS_PER_MS,
        ts_init=t + MINUTE_NS if ts_init is None else ts_init,
        venue=venue,
        symbol=symbol,
        timeframe="1m",
        open_time=t,
        close_time=t + MINUTE_NS - NS_PER_MS,
        open=o,
        high=h,
        low=low,
        close=c,
        volume=v,
        quote_volume=v * 10,
        trades=minute % 7,
        taker_buy_volume=v / 2,
        taker_buy_quote_volume=v * 5,
        backfilled=backfilled,
    )


def feed(agg: BarAggregator, minutes: list[int], **kw: object) -> list[BarClosed]:
    return [out for m in minutes for out in agg.on_bar(minute_bar(m, **kw))]  # type: ignore[arg-type]


def test_full_window_is_emitted_once_on_its_last_minute_with_every_field() -> None:
    agg = BarAggregator(("5m",))
    bars = [
        minute_bar(0, o=10, h=12, low=9, c=11, v=1.0),
        minute_bar(1, o=11, h=15, low=10, c=14, v=2.0),
        minute_bar(2, o=14, h=14, low=8, c=9, v=0.5, backfilled=True),
        minute_bar(3, c=10.5, v=0.25),
        minute_bar(4, o=10.5, h=11, low=10, c=10.75, v=4.0),
    ]
    outs = [agg.on_bar(b) for b in bars]
    assert outs[:4] == [[], [], [], []]
    [five] = outs[4]
    assert five == BarClosed(
        event_id=ids.bar_id(VENUE, SYMBOL, "5m", DAY),
        ts_event=DAY + 5 * MINUTE_NS - NS_PER_MS,
        ts_init=bars[4].ts_init,
        causation_id=bars[4].event_id,
        venue=VENUE,
        symbol=SYMBOL,
        timeframe="5m",
        open_time=DAY,
        close_time=DAY + 5 * MINUTE_NS - NS_PER_MS,
        open=10.0,
        high=15.0,
        low=8.0,
        close=10.75,
        volume=7.75,
        quote_volume=77.5,
        trades=0 + 1 + 2 + 3 + 4,
        taker_buy_volume=3.875,
        taker_buy_quote_volume=38.75,
        backfilled=True,
    )
    assert agg.on_bar(minute_bar(5)) == []  # the next window only starts


def test_windows_align_to_utc_epoch_boundaries_for_every_timeframe() -> None:
    agg = BarAggregator()
    # from 23:00 UTC the day before to 00:00 UTC: the 23:59 bar closes one window of each timeframe
    out = feed(agg, list(range(-60, 0)))
    last = [b for b in out if b.causation_id == minute_bar(-1).event_id]
    assert [(b.timeframe, b.open_time) for b in last] == [
        ("5m", DAY - 5 * MINUTE_NS),
        ("15m", DAY - 15 * MINUTE_NS),
        ("1h", DAY - 60 * MINUTE_NS),
        ("4h", DAY - 240 * MINUTE_NS),
        ("1d", DAY - 1440 * MINUTE_NS),
    ]
    # only the 23:00 hour arrived: the 4h and 1d bars hold just those minutes, opening at 23:00's open
    assert all(b.open_time % TIMEFRAME_NS[b.timeframe] == 0 for b in out)
    assert [b.volume for b in last] == [7.5, 22.5, 90.0, 90.0, 90.0]


def test_gap_closes_a_window_with_the_minutes_it_received() -> None:
    agg = BarAggregator(("5m", "15m"))
    assert feed(agg, [0, 1, 2]) == []
    out = agg.on_bar(minute_bar(7, o=20, c=21))  # minutes 3..6 never came
    assert [(b.timeframe, b.open_time, b.volume, b.close, b.causation_id) for b in out] == [
        ("5m", DAY, 4.5, 11.0, minute_bar(7).event_id)
    ]
    out = feed(agg, [14])  # 14 completes 15m [0, 15) (holding 0, 1, 2, 7, 14) and 5m [10, 15)
    assert [(b.timeframe, b.open_time, b.volume) for b in out] == [
        ("5m", DAY + 5 * MINUTE_NS, 1.5),
        ("5m", DAY + 10 * MINUTE_NS, 1.5),
        ("15m", DAY, 7.5),
    ]


def test_bar_exactly_at_a_window_end_closes_it_as_a_gap() -> None:
    agg = BarAggregator(("5m",))
    feed(agg, [0, 1, 2, 3])
    [five] = agg.on_bar(minute_bar(5))
    assert (five.open_time, five.volume, five.causation_id) == (DAY, 6.0, minute_bar(5).event_id)


def test_windows_without_any_minute_produce_no_bar() -> None:
    agg = BarAggregator(("5m",))
    out = feed(agg, [0, 4, 60, 64])  # an hour with nothing in between
    assert [b.open_time for b in out] == [DAY, DAY + 60 * MINUTE_NS]


def test_duplicate_and_late_bars_are_dropped_without_touching_state() -> None:
    clean = feed(BarAggregator(("5m", "15m")), list(range(0, 16)))
    agg = BarAggregator(("5m", "15m"))
    noisy = []
    for m in range(0, 16):
        noisy += agg.on_bar(minute_bar(m))
        noisy += agg.on_bar(minute_bar(m, c=999.0, v=1e6))  # a duplicate with other values
        if m >= 3:
            noisy += agg.on_bar(minute_bar(m - 3, h=1e9))  # a late bar
    assert noisy == clean


def test_symbols_and_venues_aggregate_independently() -> None:
    agg = BarAggregator(("5m",))
    out = []
    for m in range(5):
        out += agg.on_bar(minute_bar(m, symbol="BTCUSDT"))
        out += agg.on_bar(minute_bar(m, symbol="ETHUSDT", v=2.0))
        out += agg.on_bar(minute_bar(m, venue="binance_spot", symbol="BTCUSDT", v=3.0))
    assert [(b.venue, b.symbol, b.volume) for b in out] == [
        ("binance_usdm", "BTCUSDT", 7.5),
        ("binance_usdm", "ETHUSDT", 10.0),
        ("binance_spot", "BTCUSDT", 15.0),
    ]


def test_backfilled_is_any_component_backfilled() -> None:
    agg = BarAggregator(("5m",))
    assert not feed(agg, [0, 1, 2, 3, 4])[0].backfilled
    assert feed(agg, [5, 6, 7, 8, 9], backfilled=True)[0].backfilled


def test_rejects_bars_it_cannot_aggregate_and_bad_timeframes() -> None:
    agg = BarAggregator(("5m",))
    with pytest.raises(ValueError, match="takes 1m bars"):
        agg.on_bar(msgspec.structs.replace(minute_bar(0), timeframe="5m"))
    with pytest.raises(ValueError, match="not on a 1m boundary"):
        agg.on_bar(msgspec.structs.replace(minute_bar(0), open_time=DAY + 1))
    with pytest.raises(ValueError, match="unknown timeframe '2h'"):
        BarAggregator(("2h",))
    with pytest.raises(ValueError, match="not a multiple"):
        BarAggregator(("1m",))
    assert BarAggregator(("1d", "5m", "5m")).timeframes == ("5m", "1d")
    assert BarAggregator().timeframes == DEFAULT_TIMEFRAMES


@given(st.lists(st.integers(0, 3000), max_size=200), st.booleans())
def test_same_input_gives_byte_identical_output(minutes: list[int], sort: bool) -> None:
    seq = sorted(minutes) if sort else minutes
    runs = [b"".join(_encoder.encode(b) for b in feed(BarAggregator(), seq)) for _ in range(2)]
    assert runs[0] == runs[1]


@given(st.lists(st.integers(0, 3000), max_size=300))
def test_each_window_is_emitted_at_most_once_and_only_after_it_closed(minutes: list[int]) -> None:
    agg = BarAggregator()
    seen: set[tuple[str, int]] = set()
    for m in minutes:
        bar = minute_bar(m)
        for out in agg.on_bar(bar):
            key = (out.timeframe, out.open_time)
            assert key not in seen
            seen.add(key)
            assert bar.open_time >= out.open_time + TIMEFRAME_NS[out.timeframe] - MINUTE_NS
