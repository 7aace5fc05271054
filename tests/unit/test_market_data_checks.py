"""Market data's bar checks: a closed venue bar that is not sane becomes a BarRejected with a
reason code, in its place in the output, and never a BarClosed."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest

from services.market_data.config import BarChecks, MarketDataConfig
from services.market_data.core import MarketDataCore
from tests.support.recorded import OCTOBOT_BTC, OCTOBOT_ETH, convert_octobot
from ticktape import ids, subjects
from ticktape.clock import NS_PER_MS
from ticktape.events import BarClosed, BarRejected, codec

VENUE = "binance_usdm"
T0_MS = 1626992400000  # 2021-07-22 22:20 UTC: a 5m boundary
MIN_MS = 60_000
DAY_MS = 86_400_000


def kline(open_ms: int = T0_MS, symbol: str = "BTCUSDT", **values: str | int) -> dict[str, object]:
    k: dict[str, object] = {
        "t": open_ms,
        "T": open_ms + 59_999,
        "s": symbol,
        "i": "1m",
        "f": 1,
        "L": 9,
        "o": "100.5",
        "c": "101.0",
        "h": "102.0",
        "l": "99.5",
        "v": "12.5",
        "n": 9,
        "x": True,
        "q": "1260.0",
        "V": "6.0",
        "Q": "605.0",
        "B": "0",
    }
    k.update(values)
    return k


def frame(open_ms: int = T0_MS, **values: str | int) -> bytes:
    k = kline(open_ms, **values)
    return json.dumps(
        {"stream": "btcusdt@kline_1m", "data": {"e": "kline", "E": open_ms + 60_000, "s": k["s"], "k": k}}
    ).encode()


def rest_row(open_ms: int, o: str = "100.5", h: str = "102.0", lo: str = "99.5", c: str = "101.0") -> list[object]:
    return [open_ms, o, h, lo, c, "12.5", open_ms + 59_999, "1260.0", 9, "6.0", "605.0", "0"]


def one_rejection(events: list) -> BarRejected:
    assert len(events) == 1 and isinstance(events[0], BarRejected), events
    return events[0]


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        ({"c": "1e308", "h": "1e308"}, "price"),
        ({"o": "1e308", "c": "1e308", "h": "1e308", "l": "1e308"}, "price"),
        ({"l": "1e-320"}, "price"),
        ({"o": "0", "l": "0"}, "price"),
        ({"h": "100.0"}, "range"),  # below the close
        ({"l": "101.0"}, "range"),  # above the open
        ({"v": "1e31"}, "volume"),
        ({"Q": "1e300"}, "volume"),
        ({"t": 0, "T": 59_999}, "open_time"),  # 1970
        ({"t": T0_MS + 1, "T": T0_MS + 60_000}, "open_time"),  # not on a minute
    ],
)
def test_first_bar_when_not_sane_then_rejected_with_a_reason_and_nothing_published(
    values: dict[str, str | int], reason: str
) -> None:
    core = MarketDataCore(VENUE, aggregate=("5m",))
    rejected = one_rejection(core.on_frame(frame(**values), ts_init=7))
    open_ms = values.get("t", T0_MS)
    assert isinstance(open_ms, int)
    open_ns = open_ms * NS_PER_MS
    assert (rejected.reason, rejected.venue, rejected.symbol, rejected.timeframe) == (reason, VENUE, "BTCUSDT", "1m")
    assert (rejected.open_time, rejected.ts_init, rejected.backfilled) == (open_ns, 7, False)
    assert rejected.detail
    assert rejected.event_id == ids.child_id(ids.bar_id(VENUE, "BTCUSDT", "1m", open_ns), "market_data.reject", 0)
    assert subjects.for_event(rejected) == "md.rejected.binance_usdm.BTCUSDT"
    assert codec.decode(codec.encode(rejected)) == rejected


def test_bar_of_1970_after_real_bars_then_reported_not_silently_dropped_as_old() -> None:
    core = MarketDataCore(VENUE)
    assert isinstance(core.on_frame(frame(T0_MS), 1)[0], BarClosed)
    assert one_rejection(core.on_frame(frame(t=0, T=59_999), 2)).reason == "open_time"
    assert core.last_open_time("BTCUSDT") == T0_MS * NS_PER_MS
    assert core.on_frame(frame(T0_MS), 3) == []  # a real repeat is still silent


def test_price_rejected_bar_counts_as_judged_and_the_next_bar_is_no_gap() -> None:
    core = MarketDataCore(VENUE, aggregate=("5m",))
    out = [e for i in range(5) for e in core.on_frame(frame(T0_MS + i * MIN_MS, **bad_at(i, 2)), i)]
    assert [type(e).__name__ for e in out] == [
        "BarClosed",
        "BarClosed",
        "BarRejected",
        "BarClosed",
        "BarClosed",
        "BarClosed",
    ]
    assert core.gaps() == []
    five = out[-1]
    assert isinstance(five, BarClosed) and five.timeframe == "5m"
    assert five.high == 102.0 and five.volume == 4 * 12.5  # the refused minute is simply absent


def bad_at(i: int, bad: int) -> dict[str, str | int]:
    return {"c": "1e308", "h": "1e308"} if i == bad else {}


def test_bar_far_after_the_previous_one_then_rejected_and_the_mark_is_not_moved() -> None:
    core = MarketDataCore(VENUE)
    core.on_frame(frame(T0_MS), 1)
    far = T0_MS + 400 * DAY_MS
    assert core.on_frame(frame(far), 2) == []  # held as a gap first, like any jump
    assert core.on_backfill("BTCUSDT", [], 3, now_ms=far + DAY_MS) == []
    assert one_rejection(core.release("BTCUSDT")).reason == "open_time"
    assert core.last_open_time("BTCUSDT") == T0_MS * NS_PER_MS
    assert [type(e) for e in core.on_frame(frame(T0_MS + MIN_MS), 4)] == [BarClosed]


def test_price_band_when_bar_moves_tenfold_then_rejected_until_the_window_passes() -> None:
    checks = BarChecks(max_move=10.0, band_window_s=180)
    core = MarketDataCore(VENUE, checks=checks)
    core.on_frame(frame(T0_MS), 0)
    high = {"o": "1000", "c": "1010", "h": "1020", "l": "995"}  # ~10x the close of 101
    kinds = [[type(e).__name__ for e in core.on_frame(frame(T0_MS + i * MIN_MS, **high), i)] for i in range(1, 5)]
    # minutes 1-3 are within 180 s of the last accepted bar; minute 4 is not: a new reference
    assert kinds == [["BarRejected"]] * 3 + [["BarClosed"]]
    spike = {"h": "5000"}  # a wick 5x the previous close of 1010 is still in the band
    assert isinstance(core.on_frame(frame(T0_MS + 5 * MIN_MS, **spike, o="1000", c="1010", l="995"), 5)[0], BarClosed)


def test_price_band_when_a_single_bad_print_then_the_next_normal_bar_passes() -> None:
    core = MarketDataCore(VENUE)
    core.on_frame(frame(T0_MS), 0)
    assert one_rejection(core.on_frame(frame(T0_MS + MIN_MS, l="0.5"), 1)).reason == "price_band"
    assert isinstance(core.on_frame(frame(T0_MS + 2 * MIN_MS), 2)[0], BarClosed)


def test_backfill_when_a_row_is_not_sane_then_rejected_in_place_and_the_rest_published() -> None:
    core = MarketDataCore(VENUE)
    rows = [rest_row(T0_MS + i * MIN_MS) for i in range(4)]
    rows[1] = rest_row(T0_MS + MIN_MS, lo="1e-320")
    out = core.on_backfill("BTCUSDT", rows, ts_init=5, now_ms=T0_MS + 10 * MIN_MS)
    assert [(type(e).__name__, e.open_time // NS_PER_MS, e.backfilled) for e in out] == [
        ("BarClosed", T0_MS, True),
        ("BarRejected", T0_MS + MIN_MS, True),
        ("BarClosed", T0_MS + 2 * MIN_MS, True),
        ("BarClosed", T0_MS + 3 * MIN_MS, True),
    ]
    assert core.backfill_start_ms("BTCUSDT") == T0_MS + 4 * MIN_MS
    assert core.on_backfill("BTCUSDT", rows, ts_init=6, now_ms=T0_MS + 10 * MIN_MS) == []


def test_warm_and_seed_set_the_band_reference() -> None:
    core = MarketDataCore(VENUE)
    core.seed_last("BTCUSDT", (T0_MS - MIN_MS) * NS_PER_MS, close=10.0)
    assert one_rejection(core.on_frame(frame(T0_MS), 1)).reason == "price_band"  # 101 > 10 x 10
    warmed = MarketDataCore(VENUE)
    bar = core.on_frame(frame(T0_MS + MIN_MS, o="10", c="10", h="10", l="10"), 2)[0]
    assert isinstance(bar, BarClosed)
    warmed.warm([bar])
    assert one_rejection(warmed.on_frame(frame(T0_MS + 2 * MIN_MS), 3)).reason == "price_band"


def test_same_frames_then_same_outputs_byte_for_byte() -> None:
    frames = [frame(T0_MS + i * MIN_MS, **bad_at(i, 3)) for i in range(6)] + [frame(t=0, T=59_999)]

    def run() -> list[bytes]:
        core = MarketDataCore(VENUE, aggregate=("5m",))
        return [codec.encode(e) for i, f in enumerate(frames) for e in core.on_frame(f, i)]

    assert run() == run()


def test_real_recorded_bars_then_none_is_rejected(tmp_path: Path) -> None:
    csvs = sorted(convert_octobot(tmp_path, OCTOBOT_BTC, OCTOBOT_ETH).glob("*.csv"))
    assert csvs
    total = 0
    for csv in csvs:
        symbol = csv.name.split("-")[0]
        rows = [line.split(",") for line in csv.read_text().splitlines()]
        now_ms = int(rows[-1][6]) + 1
        core = MarketDataCore(VENUE, aggregate=("5m", "1h"))
        out = core.on_backfill(symbol, rows, ts_init=1, now_ms=now_ms)  # strings, as the REST body's JSON would be
        assert not [e for e in out if isinstance(e, BarRejected)]
        total += sum(isinstance(e, BarClosed) and e.timeframe == "1m" for e in out)
    assert total > 400


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"bar_checks": {"max_price": 1e13}}, r"\$.bar_checks.max_price"),
        ({"bar_checks": {"min_price": 0}}, r"\$.bar_checks.min_price"),
        ({"bar_checks": {"min_price": 5.0, "max_price": 1.0}}, "min_price must be < max_price"),
        ({"bar_checks": {"max_move": 1.0}}, r"\$.bar_checks.max_move"),
        ({"bar_checks": {"band": 1}}, "unknown field"),
    ],
)
def test_bar_checks_config_when_invalid_then_error_names_the_key(section: dict, message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(section, MarketDataConfig)


def test_bar_checks_config_defaults_are_the_hard_sanity_band() -> None:
    checks = msgspec.convert({}, MarketDataConfig).bar_checks
    assert (checks.min_price, checks.max_price, checks.max_move) == (1e-12, 1e12, 10.0)
    assert checks.min_open_time_ms == 1_230_768_000_000  # 2009-01-01 UTC
