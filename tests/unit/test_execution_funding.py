"""Perpetual funding in paper P&L: the payment math against hand-checked numbers from real
Hyperliquid fundingHistory records (../shared/data), the execution core applying FundingRate to
open paper positions, the venues' funding wire formats parsed, and market data's events."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
import yaml

from exchanges.base import FrameError
from exchanges.funding import FundingRecord, funding_request, parse_funding
from services.execution.config import ExecutionConfig
from services.execution.core import ExecutionCore, funding_payment
from services.market_data.funding import funding_event_id, funding_events
from ticktape import ids
from ticktape.clock import MINUTE_NS, NS_PER_MS
from ticktape.errors import InvalidInput
from ticktape.events import AccountUpdated, BarClosed, Event, FundingRate, OrderApproved, PositionUpdated, codec
from ticktape.events.risk import OrderSide

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
NAUTILUS = DATA / "nautilus_trader" / "hyperliquid" / "http_funding_history.json"
CASSETTE = DATA / "hyperliquid_python_sdk_cassettes" / "test_get_funding_history[1684811870000].yaml"
T0 = 1_769_900_000_000 * NS_PER_MS  # 2026-01-31 22:53 UTC, before the nautilus records


def hl_records(path: Path = NAUTILUS) -> list[FundingRecord]:
    return parse_funding("hyperliquid", path.read_bytes(), "BTC")


def cassette_body() -> bytes:
    doc = yaml.safe_load(CASSETTE.read_text())
    (body,) = [
        i["response"]["body"]["string"] for i in doc["interactions"] if '"fundingHistory"' in i["request"]["body"]
    ]
    return str(body).encode()


def test_real_records_when_parsed_then_rates_and_times_are_the_venues() -> None:
    records = hl_records()
    assert [(r.time_ms, r.rate, r.mark_price) for r in records] == [
        (1769908800000, 0.0000125, 0.0),
        (1769912400000, -0.0000081, 0.0),
        (1769916000000, 0.0000033, 0.0),  # the record without `premium` parses too
    ]
    cassette = parse_funding("hyperliquid", cassette_body(), "BTC")
    assert len(cassette) == 34
    assert (cassette[0].time_ms, cassette[0].rate) == (1683849600048, -0.00061334)
    assert (cassette[-1].time_ms, cassette[-1].rate) == (1684800000022, -0.00018991)


def test_payment_when_long_pays_positive_rate_and_short_receives_it() -> None:
    r1, r2, _ = hl_records()
    # 0.5 BTC long at 100,000: 0.5 x 100,000 x 0.0000125 = 0.625 paid
    assert funding_payment(0.5, 100_000.0, r1.rate) == pytest.approx(-0.625, abs=1e-12)
    # the same short receives it
    assert funding_payment(-0.5, 100_000.0, r1.rate) == pytest.approx(0.625, abs=1e-12)
    # a negative rate: 2 BTC short at 100,000 pays 2 x 100,000 x 0.0000081 = 1.62
    assert funding_payment(-2.0, 100_000.0, r2.rate) == pytest.approx(-1.62, abs=1e-12)
    # 2023 cassette, first record: -0.061334% on 3 BTC long at 26,000 -> receives 47.84052
    first = parse_funding("hyperliquid", cassette_body(), "BTC")[0]
    assert funding_payment(3.0, 26_000.0, first.rate) == pytest.approx(47.84052, abs=1e-9)


def bar(i: int, price: float, venue: str = "hyperliquid", symbol: str = "BTC") -> BarClosed:
    open_time = T0 + i * MINUTE_NS
    close_time = open_time + MINUTE_NS - NS_PER_MS
    return BarClosed(
        event_id=ids.bar_id(venue, symbol, "1m", open_time),
        ts_event=close_time,
        ts_init=close_time + 7,
        venue=venue,
        symbol=symbol,
        timeframe="1m",
        open_time=open_time,
        close_time=close_time,
        open=price,
        high=price,
        low=price,
        close=price,
        volume=1.0,
        quote_volume=1.0,
    )


def approval(side: OrderSide, qty: float, venue: str = "hyperliquid", symbol: str = "BTC") -> OrderApproved:
    return OrderApproved(
        event_id=f"appr-{side}-{qty}-{venue}-{symbol}",
        ts_event=11,
        ts_init=12,
        causation_id="sig",
        correlation_id="bar-0",
        account="paper-main",
        strategy="s",
        venue=venue,
        symbol=symbol,
        side=side,
        quantity=qty,
        reference_price=100_000.0,
        notional=qty * 100_000.0,
        target_quantity=qty,
        signal_id="sig",
        bar_open_time=T0,
    )


def funding_event(r: FundingRecord, venue: str = "hyperliquid") -> FundingRate:
    (event,) = funding_events(venue, [r], after_ms=0, ts_init=r.time_ms * NS_PER_MS + 5)
    return event


def holding(side: OrderSide, qty: float, price: float = 100_000.0) -> ExecutionCore:
    core = ExecutionCore(ExecutionConfig(slippage_bps=0.0, taker_fee_bps=0.0))
    core.handle(approval(side, qty))
    core.handle(bar(1, price))  # fills at the open, marks at the close
    return core


def of(events: list[Event], kind: type) -> list:
    return [e for e in events if isinstance(e, kind)]


def test_core_when_real_settlements_then_long_position_and_account_carry_them() -> None:
    core = holding("buy", 0.5)
    r1, r2, r3 = hl_records()
    out = core.handle(funding_event(r1))
    (pos,) = of(out, PositionUpdated)
    (acct,) = of(out, AccountUpdated)
    assert pos.funding == pytest.approx(-0.625, abs=1e-12)
    assert (pos.quantity, pos.mark_price) == (0.5, 100_000.0)
    assert acct.funding == pos.funding
    assert acct.equity == pytest.approx(10_000.0 - 0.625, abs=1e-9)  # flat price, no fees
    assert pos.ts_event == r1.time_ms * NS_PER_MS
    core.handle(funding_event(r2))  # -0.0000081: the long receives 0.405
    out = core.handle(funding_event(r3))  # 0.0000033: pays 0.165
    (acct,) = of(out, AccountUpdated)
    assert acct.funding == pytest.approx(-0.625 + 0.405 - 0.165, abs=1e-12)
    assert acct.equity == pytest.approx(10_000.0 - 0.385, abs=1e-9)
    # and the next bar's marks carry the total on
    out = core.handle(bar(2, 100_000.0))
    assert of(out, AccountUpdated)[0].funding == pytest.approx(-0.385, abs=1e-12)


def test_core_when_short_then_receives_positive_rate() -> None:
    core = holding("sell", 0.2)
    out = core.handle(funding_event(hl_records()[0]))
    (pos,) = of(out, PositionUpdated)
    assert pos.funding == pytest.approx(0.25, abs=1e-12)  # 0.2 x 100,000 x 0.0000125


def test_core_when_same_or_older_settlement_again_then_nothing_changes() -> None:
    core = holding("buy", 0.5)
    r1, r2, _ = hl_records()
    core.handle(funding_event(r2))
    repoll = funding_events("hyperliquid", [r2], after_ms=0, ts_init=999)[0]  # same id, other ts_init
    assert core.handle(repoll) == core.handle(funding_event(r2))  # memo: the same outputs, once applied
    assert core.handle(funding_event(r1)) == []  # older than the last applied
    assert core.accounts["paper-main"].positions[("hyperliquid", "BTC")].funding == pytest.approx(0.405, abs=1e-12)


def test_core_when_venue_gives_mark_then_it_prices_the_payment() -> None:
    core = ExecutionCore(ExecutionConfig(slippage_bps=0.0, taker_fee_bps=0.0))
    core.handle(approval("buy", 0.05, venue="binance_usdm", symbol="BTCUSDT"))
    core.handle(bar(1, 100_000.0, venue="binance_usdm", symbol="BTCUSDT"))
    body = (
        b'[{"symbol":"BTCUSDT","fundingRate":"0.00010000","fundingTime":1769932800000,"markPrice":"101000.00000000"}]'
    )
    (event,) = funding_events("binance_usdm", parse_funding("binance_usdm", body, "BTCUSDT"), after_ms=0, ts_init=1)
    (pos,) = of(core.handle(event), PositionUpdated)
    assert pos.funding == pytest.approx(-0.505, abs=1e-12)  # 0.05 x 101,000 x 0.0001
    assert pos.mark_price == 100_000.0  # the bar's mark is kept


def test_core_when_no_position_or_not_a_perp_venue_then_no_event() -> None:
    core = holding("buy", 0.5)
    other = funding_events(
        "hyperliquid", [FundingRecord(symbol="ETH", time_ms=1769908800000, rate=0.001)], after_ms=0, ts_init=1
    )
    assert core.handle(other[0]) == []
    spot = msgspec.structs.replace(funding_event(hl_records()[0]), venue="binance_spot", event_id="spot")
    assert core.handle(spot) == []


def test_core_when_rate_not_finite_then_input_refused() -> None:
    core = holding("buy", 0.5)
    bad = msgspec.structs.replace(funding_event(hl_records()[0]), rate=float("nan"), event_id="nan")
    with pytest.raises(InvalidInput):
        core.handle(bad)


def test_events_without_funding_keep_their_old_bytes() -> None:
    core = holding("buy", 0.5)
    out = core.handle(bar(2, 100_100.0))
    for event in of(out, PositionUpdated) + of(out, AccountUpdated):
        assert b'"funding"' not in codec.encode(event)
    core.handle(funding_event(hl_records()[0]))
    out = core.handle(bar(3, 100_100.0))
    for event in of(out, PositionUpdated) + of(out, AccountUpdated):
        encoded = codec.encode(event)
        assert b'"funding":-0.625' in encoded
        assert codec.decode(encoded) == event


def test_market_data_events_when_re_polled_then_same_ids_and_only_newer_published() -> None:
    records = hl_records()
    events = funding_events("hyperliquid", records, after_ms=records[0].time_ms, ts_init=5)
    assert [e.funding_time for e in events] == [r.time_ms * NS_PER_MS for r in records[1:]]
    assert events[0].event_id == funding_event_id("hyperliquid", "BTC", records[1].time_ms)
    again = funding_events("hyperliquid", records, after_ms=0, ts_init=6)
    assert [e.event_id for e in again[1:]] == [e.event_id for e in events]


def test_requests_are_the_venues_wire_formats() -> None:
    b = funding_request("binance_usdm", "https://fapi.binance.com/", "BTCUSDT", start_ms=1570608000000)
    assert (b.method, b.url, b.body) == (
        "GET",
        "https://fapi.binance.com/fapi/v1/fundingRate?symbol=BTCUSDT&startTime=1570608000000&limit=1000",
        None,
    )
    h = funding_request("hyperliquid", "https://api.hyperliquid.xyz", "BTC", start_ms=1681923833000)
    assert (h.method, h.url) == ("POST", "https://api.hyperliquid.xyz/info")
    # the body the official SDK sent in the recorded cassette, as JSON
    assert json.loads(h.body or b"") == {"type": "fundingHistory", "coin": "BTC", "startTime": 1681923833000}


@pytest.mark.parametrize(
    "body",
    [
        b"{",
        b'[{"coin":"BTC","time":1}]',
        b'[{"coin":"BTC","fundingRate":"2.5","time":1}]',
        b'[{"coin":"ETH","fundingRate":"0.1","time":1}]',
    ],
)
def test_parse_when_not_a_funding_history_then_frame_error(body: bytes) -> None:
    with pytest.raises(FrameError):
        parse_funding("hyperliquid", body, "BTC")


def test_api_performance_funding_is_what_the_settlements_cost_in_the_span() -> None:
    from services.api import answers
    from services.api import queries as q
    from services.api.readmodel import ReadModel

    core = ExecutionCore(ExecutionConfig(slippage_bps=0.0, taker_fee_bps=0.0))
    log: list[Event] = [*core.handle(approval("buy", 0.5)), *core.handle(bar(1, 100_000.0))]
    unsettled = len(log)
    r1, r2, r3 = hl_records()
    for r in (r1, r2, r3):
        log += core.handle(funding_event(r))
    model = ReadModel()
    for seq, event in enumerate(log, start=1):
        model.apply(event, seq, 0)
    (acct,) = answers.performance(model, q.PerformanceQuery(), 10**9).accounts
    # paid 0.625, received 0.405, paid 0.165: 0.385 paid, the same fall in equity
    assert acct.session.funding == pytest.approx(0.385, abs=1e-12)
    assert acct.session.pnl == pytest.approx(-0.385, abs=1e-9)
    # a model without any settlement answers 0.0, as before
    quiet = ReadModel()
    for seq, event in enumerate(log[:unsettled], start=1):
        quiet.apply(event, seq, 0)
    (before,) = answers.performance(quiet, q.PerformanceQuery(), 10**9).accounts
    assert before.session.funding == 0.0


def settlement(at_ns: int, rate: float = 0.0001, mark: float = 100_000.0) -> FundingRate:
    """A settlement at `at_ns` (on a minute boundary + 30 s: between two bars' opens)."""
    record = FundingRecord(symbol="BTC", time_ms=at_ns // NS_PER_MS, rate=rate, mark_price=mark)
    (event,) = funding_events("hyperliquid", [record], after_ms=0, ts_init=at_ns + 5 * MINUTE_NS)
    return event


def test_core_when_position_opened_after_the_settlement_but_before_its_poll_then_not_charged() -> None:
    core = ExecutionCore(ExecutionConfig(slippage_bps=0.0, taker_fee_bps=0.0))
    settled_at = T0 + MINUTE_NS // 2  # during bar 0; the position opens at bar 1's open, after it
    core.handle(approval("buy", 0.5))
    core.handle(bar(1, 100_000.0))
    assert core.handle(settlement(settled_at)) == []  # the poll brings it now: nothing was held then
    assert core.accounts["paper-main"].positions[("hyperliquid", "BTC")].funding == 0.0


def test_core_when_position_changed_after_the_settlement_then_charged_what_was_held_at_it() -> None:
    core = holding("buy", 0.5)  # opened at bar 1's open
    settled_at = T0 + MINUTE_NS + MINUTE_NS // 2  # during bar 1: 0.5 held
    more = msgspec.structs.replace(approval("buy", 0.25), event_id="appr-more", bar_open_time=T0 + MINUTE_NS)
    core.handle(more)
    core.handle(bar(2, 100_000.0))  # grown to 0.75 at bar 2's open, after the settlement
    (pos,) = of(core.handle(settlement(settled_at)), PositionUpdated)
    assert (pos.quantity, pos.funding) == (0.75, pytest.approx(-5.0, abs=1e-9))  # 0.5 x 100,000 x 0.0001


def test_core_when_position_closed_after_the_settlement_then_still_charged() -> None:
    core = holding("buy", 0.5)
    settled_at = T0 + MINUTE_NS + MINUTE_NS // 2  # during bar 1: 0.5 held
    close = msgspec.structs.replace(approval("sell", 0.5), event_id="appr-close", bar_open_time=T0 + MINUTE_NS)
    core.handle(close)
    core.handle(bar(2, 100_000.0))  # flat from bar 2's open, before the poll brings the settlement
    out = core.handle(settlement(settled_at))
    (pos,) = of(out, PositionUpdated)
    (acct,) = of(out, AccountUpdated)
    assert (pos.quantity, pos.funding) == (0.0, pytest.approx(-5.0, abs=1e-9))
    assert acct.equity == pytest.approx(10_000.0 - 5.0, abs=1e-9)
