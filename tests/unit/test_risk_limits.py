"""Risk that stops the bleeding: loss limits (per account and global) that halt with a reason code,
max open positions, per-order max notional, protective stop-loss / take-profit, cooldown after a
stop, and reducing orders while halted. Each rule is exercised on both sides of its threshold."""

from __future__ import annotations

from typing import TypeVar

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.risk.config import AccountConfig, RiskConfig
from services.risk.core import RiskCore, order_id_for
from services.risk.limits import DAY_NS, margin_use
from ticktape import ids, subjects
from ticktape.clock import MINUTE_NS
from ticktape.events import (
    AccountUpdated,
    EmergencyStop,
    Event,
    OrderApproved,
    OrderFilled,
    OrderRejected,
    OrderSubmitted,
    PositionUpdated,
    ResumeTrading,
    RiskHalted,
    SignalGenerated,
)
from ticktape.events.codec import decode, encode
from ticktape.events.signals import Side

E = TypeVar("E", bound=Event)

T0 = 1_700_000_000 * 1_000_000_000 // DAY_NS * DAY_NS  # a UTC midnight
_n = 0


def _next() -> int:
    global _n
    _n += 1
    return _n


def signal(side: Side, price: float = 100.0, *, symbol: str = "BTCUSDT", ts: int = T0) -> SignalGenerated:
    n = _next()
    return SignalGenerated(
        event_id=f"sig-{n}",
        ts_event=ts,
        ts_init=ts,
        strategy="ensemble9",
        venue="binance",
        symbol=symbol,
        timeframe="1m",
        side=side,
        previous_side="flat",
        price=price,
        bar_open_time=ts - MINUTE_NS,
        target={"long": 1.0, "short": -1.0, "flat": 0.0}[side],
    )


def position(
    qty: float, mark: float = 100.0, *, avg: float = 100.0, symbol: str = "BTCUSDT", ts: int = T0, account: str = "a"
) -> PositionUpdated:
    return PositionUpdated(
        event_id=f"pos-{_next()}",
        ts_event=ts,
        ts_init=ts,
        account=account,
        venue="binance",
        symbol=symbol,
        quantity=qty,
        avg_price=avg if qty else 0.0,
        mark_price=mark,
        realized_pnl=0.0,
        unrealized_pnl=qty * (mark - avg),
        fees_paid=0.0,
    )


def equity(value: float, ts: int = T0, account: str = "a") -> AccountUpdated:
    return AccountUpdated(
        event_id=f"acct-{_next()}",
        ts_event=ts,
        ts_init=ts,
        account=account,
        initial_equity=10_000.0,
        equity=value,
        realized_pnl=0.0,
        unrealized_pnl=value - 10_000.0,
        fees_paid=0.0,
        gross_exposure=0.0,
        net_exposure=0.0,
    )


def fill(a: OrderApproved) -> OrderFilled:
    return OrderFilled(
        event_id=f"fill-{a.event_id}",
        ts_event=a.ts_event,
        ts_init=a.ts_init,
        order_id=order_id_for(a.event_id),
        account=a.account,
        venue=a.venue,
        symbol=a.symbol,
        side=a.side,
        quantity=a.quantity,
        price=a.reference_price,
        fee=0.0,
    )


def stop(account: str = "*") -> EmergencyStop:
    return EmergencyStop(event_id=f"stop-{_next()}", ts_event=T0, ts_init=T0, reason="test", account=account)


def resume(account: str = "*") -> ResumeTrading:
    return ResumeTrading(event_id=f"resume-{_next()}", ts_event=T0, ts_init=T0, reason="test", account=account)


def core(*accounts: AccountConfig, **risk: object) -> RiskCore:
    return RiskCore(RiskConfig(accounts=accounts or (AccountConfig(name="a"),), **risk))  # type: ignore[arg-type]


def account(**limits: object) -> AccountConfig:
    return AccountConfig(name="a", **limits)  # type: ignore[arg-type]


def one(events: list[Event], kind: type[E]) -> E:
    """The single output, of type `kind`."""
    assert len(events) == 1 and isinstance(events[0], kind), events
    return events[0]


def halts(events: list[Event]) -> list[RiskHalted]:
    assert all(isinstance(e, RiskHalted) for e in events), events
    return [e for e in events if isinstance(e, RiskHalted)]


def accounts_and_kinds(events: list[Event]) -> list[tuple[str, str | None]]:
    return [(type(e).__name__, getattr(e, "account", None)) for e in events]


# --- max_drawdown -------------------------------------------------------------------------


def test_drawdown_below_the_limit_then_nothing_at_the_limit_then_risk_halts_with_the_reason() -> None:
    c = core(account(max_drawdown=0.1))
    assert c.handle(equity(11_000.0)) == []  # the peak
    assert c.handle(equity(9_901.0)) == []  # 9.99 % below it
    cause = equity(9_900.0)
    halt = one(c.handle(cause), RiskHalted)
    assert (halt.account, halt.reason, halt.flatten) == ("a", "max_drawdown", False)
    assert (halt.equity, halt.reference_equity, halt.limit) == (9_900.0, 11_000.0, 0.1)
    assert halt.event_id == ids.child_id(cause.event_id, "risk.a.halt", 0)
    assert (halt.causation_id, halt.ts_event) == (cause.event_id, cause.ts_event)
    assert subjects.for_event(halt) == "risk.halted.a"
    assert decode(encode(halt)) == halt
    assert c.handle(equity(9_000.0)) == []  # halted once, not again on every later mark
    r = one(c.handle(signal("long")), OrderRejected)
    assert r.reason == "halted" and "max_drawdown" in r.detail


def test_drawdown_is_measured_from_the_initial_equity_before_any_update() -> None:
    c = core(account(max_drawdown=0.2))
    assert c.handle(equity(8_001.0)) == []
    assert one(c.handle(equity(8_000.0)), RiskHalted).reason == "max_drawdown"


def test_on_breach_flatten_asks_execution_to_close_the_positions() -> None:
    c = core(account(max_drawdown=0.1, on_breach="flatten"))
    halt = one(c.handle(equity(9_000.0)), RiskHalted)
    assert halt.flatten is True


def test_resume_lifts_risks_halt_and_rearms_the_limit_from_the_equity_then() -> None:
    c = core(account(max_drawdown=0.1))
    c.handle(equity(9_000.0))
    c.handle(resume("a"))
    assert c.handle(equity(8_200.0)) == []  # 8.9 % below 9,000, the equity at the resume
    assert isinstance(c.handle(signal("long"))[0], OrderApproved)
    assert one(c.handle(equity(8_100.0)), RiskHalted).reason == "max_drawdown"


def test_an_account_already_halted_by_the_operator_gets_no_second_halt() -> None:
    c = core(account(max_drawdown=0.1))
    c.handle(stop("a"))
    assert c.handle(equity(5_000.0)) == []


# --- max_daily_loss -----------------------------------------------------------------------


def test_daily_loss_is_measured_from_the_equity_the_utc_day_of_event_time_opened_with() -> None:
    c = core(account(max_daily_loss=0.05))
    assert c.handle(equity(9_600.0, T0 + 60 * MINUTE_NS)) == []  # day 1: -4 %
    assert c.handle(equity(9_200.0, T0 + DAY_NS + MINUTE_NS)) == []  # day 2 opened at 9,600: -4.2 %
    assert c.handle(equity(9_121.0, T0 + DAY_NS + 2 * MINUTE_NS)) == []  # -4.99 % of 9,600
    halt = one(c.handle(equity(9_120.0, T0 + DAY_NS + 3 * MINUTE_NS)), RiskHalted)
    assert (halt.reason, halt.reference_equity, halt.limit) == ("max_daily_loss", 9_600.0, 0.05)


def test_the_same_loss_within_one_day_trips_the_daily_limit() -> None:
    c = core(account(max_daily_loss=0.05))
    assert c.handle(equity(9_600.0, T0 + MINUTE_NS)) == []
    assert one(c.handle(equity(9_200.0, T0 + 2 * MINUTE_NS)), RiskHalted).reason == "max_daily_loss"


def test_a_late_update_of_an_earlier_day_does_not_reopen_the_day() -> None:
    c = core(account(max_daily_loss=0.05))
    c.handle(equity(10_000.0, T0 + DAY_NS))
    assert c.handle(equity(9_700.0, T0 + 10)) == []  # late, day before: no new day opens at it
    assert one(c.handle(equity(9_500.0, T0 + DAY_NS + 1)), RiskHalted).reason == "max_daily_loss"


# --- global limits --------------------------------------------------------------------------


def test_global_drawdown_halts_every_account_once_with_the_sum_measured() -> None:
    c = core(AccountConfig(name="a"), AccountConfig(name="b"), max_drawdown=0.1)
    assert c.handle(equity(8_001.0, account="a")) == []  # the sum is 18,001 of 20,000
    cause = equity(8_000.0, account="a")
    out = c.handle(cause)
    assert [(e.account, e.reason, e.equity, e.reference_equity) for e in halts(out)] == [
        ("a", "global_max_drawdown", 18_000.0, 20_000.0),
        ("b", "global_max_drawdown", 18_000.0, 20_000.0),
    ]
    assert len({e.event_id for e in out}) == 2
    assert c.handle(equity(7_000.0, account="b")) == []
    c.handle(resume())
    assert c.handle(equity(6_900.0, account="b")) == []  # re-armed at the sum at the resume


def test_global_daily_loss_with_flatten() -> None:
    c = core(AccountConfig(name="a"), AccountConfig(name="b"), max_daily_loss=0.02, on_breach="flatten")
    out = c.handle(equity(9_500.0, account="b"))  # 2.5 % of the 20,000 the day opened with
    assert [(e.account, e.reason, e.flatten) for e in halts(out)] == [
        ("a", "global_max_daily_loss", True),
        ("b", "global_max_daily_loss", True),
    ]


def test_an_accounts_own_limit_halts_it_alone() -> None:
    c = core(AccountConfig(name="a", max_drawdown=0.1), AccountConfig(name="b"))
    assert [e.account for e in halts(c.handle(equity(8_000.0, account="a")))] == ["a"]
    out = c.handle(signal("long"))
    assert accounts_and_kinds(out) == [("OrderRejected", "a"), ("OrderApproved", "b")]


# --- reducing orders while halted -----------------------------------------------------------


def test_while_risk_halted_a_reducing_signal_passes_even_with_reduce_while_halted_off() -> None:
    c = core(account(max_drawdown=0.1))
    c.handle(position(10.0))
    c.handle(equity(9_000.0))
    a = one(c.handle(signal("flat")), OrderApproved)
    assert (a.side, a.quantity, a.target_quantity, a.reduce_only, a.reason) == (
        "sell",
        10.0,
        0.0,
        True,
        "halted_reduce",
    )


def test_while_halted_a_flip_is_cut_to_the_close_and_an_opening_order_is_rejected() -> None:
    c = core(account(), reduce_while_halted=True)
    c.handle(position(10.0))
    c.handle(stop())
    a = one(c.handle(signal("short")), OrderApproved)
    assert (a.side, a.quantity, a.target_quantity) == ("sell", 10.0, 0.0)
    c.handle(fill(a))
    c.handle(position(0.0))
    r = one(c.handle(signal("long")), OrderRejected)
    assert r.reason == "halted"
    assert r.detail == "trading is halted by an emergency stop"


def test_while_halted_a_signal_that_would_increase_the_position_is_rejected() -> None:
    c = core(account(), reduce_while_halted=True)
    c.handle(position(5.0))
    c.handle(stop())
    r = one(c.handle(signal("long")), OrderRejected)  # target 10: more, not less
    assert r.reason == "halted"


# --- max_open_positions ----------------------------------------------------------------------


def test_max_open_positions_refuses_a_new_symbol_but_not_one_already_held() -> None:
    c = core(account(max_open_positions=1))
    c.handle(position(10.0, symbol="BTCUSDT"))
    r = one(c.handle(signal("long", symbol="ETHUSDT")), OrderRejected)
    assert r.reason == "max_open_positions"
    assert isinstance(c.handle(signal("short", symbol="BTCUSDT"))[0], OrderApproved)  # a flip adds none


def test_max_open_positions_counts_orders_on_their_way_and_frees_a_slot_when_flat() -> None:
    c = core(account(max_open_positions=1))
    a = one(c.handle(signal("long", symbol="BTCUSDT")), OrderApproved)
    r = one(c.handle(signal("long", symbol="ETHUSDT")), OrderRejected)
    assert r.reason == "max_open_positions"
    c.handle(fill(a))
    c.handle(position(10.0, symbol="BTCUSDT"))
    close = one(c.handle(signal("flat", symbol="BTCUSDT")), OrderApproved)
    c.handle(fill(close))
    c.handle(position(0.0, symbol="BTCUSDT"))
    assert isinstance(c.handle(signal("long", symbol="ETHUSDT"))[0], OrderApproved)


# --- max_order_notional ----------------------------------------------------------------------


def test_max_order_notional_refuses_a_larger_order_and_passes_one_at_the_limit() -> None:
    r = one(core(account(max_order_notional=999.0)).handle(signal("long")), OrderRejected)  # 10 x 100
    assert r.reason == "max_order_notional" and r.quantity == 10.0
    assert isinstance(core(account(max_order_notional=1_000.0)).handle(signal("long"))[0], OrderApproved)


def test_max_order_notional_never_refuses_a_close() -> None:
    c = core(account(max_order_notional=100.0))
    c.handle(position(50.0))
    a = one(c.handle(signal("flat")), OrderApproved)
    assert a.notional == 5_000.0


# --- max_margin_use -------------------------------------------------------------------------


def test_max_margin_use_refuses_an_order_whose_margin_would_take_more_than_the_fraction_of_equity() -> None:
    """45 BTC held at 100 (4,500) and a 1,000 ETH order: gross 5,500, margin at max_leverage 10 is
    550, 5.5 % of the 10,000 equity."""
    c = core(account(max_margin_use=0.05))
    c.handle(position(45.0, symbol="BTCUSDT"))
    r = one(c.handle(signal("long", symbol="ETHUSDT")), OrderRejected)
    assert (r.reason, r.quantity) == ("max_margin_use", 10.0)
    roomier = core(account(max_margin_use=0.055))  # 5.5 %: at the limit, allowed
    roomier.handle(position(45.0, symbol="BTCUSDT"))
    assert isinstance(roomier.handle(signal("long", symbol="ETHUSDT"))[0], OrderApproved)
    levered = core(account(max_margin_use=0.05, max_leverage=20.0))  # the same at 20x: 2.75 %
    levered.handle(position(45.0, symbol="BTCUSDT"))
    assert isinstance(levered.handle(signal("long", symbol="ETHUSDT"))[0], OrderApproved)


def test_max_margin_use_follows_equity_and_never_refuses_a_close() -> None:
    c = core(account(max_margin_use=0.1))
    c.handle(position(50.0))  # 5,000 gross: 500 margin
    c.handle(equity(4_000.0))  # 12.5 % of what is left
    r = one(c.handle(signal("long", symbol="ETHUSDT")), OrderRejected)
    assert r.reason == "max_margin_use"
    assert isinstance(c.handle(signal("flat"))[0], OrderApproved)  # reducing is always allowed


def test_margin_use_without_equity_is_unbounded() -> None:
    assert margin_use(1_000.0, 10.0, 10_000.0) == pytest.approx(0.01)
    assert margin_use(1_000.0, 10.0, 0.0) == float("inf")


# --- stop_loss / take_profit ----------------------------------------------------------------


def test_stop_loss_of_a_long_closes_it_reduce_only_on_the_mark_that_crosses() -> None:
    c = core(account(stop_loss=0.05))
    assert c.handle(position(10.0, 95.01)) == []
    mark = position(10.0, 95.0)
    a = one(c.handle(mark), OrderApproved)
    assert (a.side, a.quantity, a.reference_price, a.target_quantity) == ("sell", 10.0, 95.0, 0.0)
    assert (a.reduce_only, a.reason, a.signal_id, a.account) == (True, "stop_loss", "", "a")
    assert a.event_id == ids.child_id(mark.event_id, "risk.a.stop_loss", 0)
    assert subjects.for_event(a) == "risk.approved.a.BTCUSDT"
    assert b'"reduce_only":true' in encode(a)


def test_stop_loss_of_a_short_buys_it_back() -> None:
    c = core(account(stop_loss=0.05))
    assert c.handle(position(-4.0, 104.9)) == []
    a = one(c.handle(position(-4.0, 105.0)), OrderApproved)
    assert (a.side, a.quantity, a.reason) == ("buy", 4.0, "stop_loss")


def test_take_profit_closes_a_winner() -> None:
    c = core(account(take_profit=0.1))
    assert c.handle(position(10.0, 109.9)) == []
    a = one(c.handle(position(10.0, 110.0)), OrderApproved)
    assert (a.side, a.reason) == ("sell", "take_profit")
    c = core(account(take_profit=0.1))
    a = one(c.handle(position(-10.0, 90.0)), OrderApproved)
    assert (a.side, a.reason) == ("buy", "take_profit")


def test_no_second_protective_order_while_the_first_is_on_its_way() -> None:
    c = core(account(stop_loss=0.05))
    a = one(c.handle(position(10.0, 94.0)), OrderApproved)
    assert c.handle(position(10.0, 90.0)) == []
    c.handle(fill(a))
    assert c.handle(position(0.0, 90.0)) == []


def test_protective_exits_pass_an_operators_stop_even_with_reduce_while_halted_off() -> None:
    c = core(account(stop_loss=0.05))
    c.handle(stop())
    a = one(c.handle(position(10.0, 90.0)), OrderApproved)
    assert a.reason == "stop_loss"


def submitted(a: OrderApproved) -> OrderSubmitted:
    return OrderSubmitted(
        event_id=f"sub-{a.event_id}",
        ts_event=a.ts_event,
        ts_init=a.ts_init,
        order_id=order_id_for(a.event_id),
        account=a.account,
        venue=a.venue,
        symbol=a.symbol,
        side=a.side,
        quantity=a.quantity,
        approval_id=a.event_id,
    )


def test_a_protective_order_execution_never_saw_is_forgotten_when_a_later_order_is_answered() -> None:
    """A stop_loss set on an account whose log crossed it before: rebuilding, risk makes a close
    that was never published. Execution answers approvals in the order risk made them, so the
    answer to a later one proves the close never reached it."""
    c = core(account(stop_loss=0.05))
    c.handle(position(10.0, 94.0, symbol="ETHUSDT"))  # the close made while rebuilding, never sent
    assert c._reduce_only_pending("a", ("binance", "ETHUSDT")) == -10.0
    later = one(c.handle(signal("long")), OrderApproved)
    c.handle(submitted(later))
    assert c._reduce_only_pending("a", ("binance", "ETHUSDT")) == 0.0
    assert list(c.pending) == [order_id_for(later.event_id)]
    assert one(c.handle(position(10.0, 93.0, symbol="ETHUSDT")), OrderApproved).reason == "stop_loss"  # protected again


def test_a_protective_order_that_execution_answered_stays_until_filled() -> None:
    c = core(account(stop_loss=0.05))
    close = one(c.handle(position(10.0, 94.0, symbol="ETHUSDT")), OrderApproved)
    later = one(c.handle(signal("long")), OrderApproved)
    c.handle(submitted(close))
    c.handle(submitted(later))
    assert set(c.pending) == {order_id_for(close.event_id), order_id_for(later.event_id)}
    c.handle(fill(close))
    assert set(c.pending) == {order_id_for(later.event_id)}


# --- cooldown --------------------------------------------------------------------------------


def test_after_a_stop_loss_no_new_entry_in_that_symbol_for_the_cooldown() -> None:
    c = core(account(stop_loss=0.05, cooldown_minutes=5))
    a = one(c.handle(position(10.0, 94.0, ts=T0)), OrderApproved)
    c.handle(fill(a))
    c.handle(position(0.0, 94.0, ts=T0))
    r = one(c.handle(signal("short", ts=T0 + 5 * MINUTE_NS - 1)), OrderRejected)
    assert r.reason == "cooldown"
    assert isinstance(c.handle(signal("long", symbol="ETHUSDT", ts=T0 + MINUTE_NS))[0], OrderApproved)
    assert isinstance(c.handle(signal("short", ts=T0 + 5 * MINUTE_NS))[0], OrderApproved)


def test_a_take_profit_starts_no_cooldown() -> None:
    c = core(account(stop_loss=0.05, take_profit=0.05, cooldown_minutes=5))
    a = one(c.handle(position(10.0, 106.0, ts=T0)), OrderApproved)
    assert a.reason == "take_profit"
    c.handle(fill(a))
    c.handle(position(0.0, 106.0, ts=T0))
    assert isinstance(c.handle(signal("long", ts=T0 + MINUTE_NS))[0], OrderApproved)


# --- off by default ----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    marks=st.lists(st.floats(min_value=1.0, max_value=1_000.0), min_size=1, max_size=20),
    equities=st.lists(st.floats(min_value=1.0, max_value=50_000.0), min_size=1, max_size=20),
)
def test_without_the_new_keys_no_mark_or_equity_ever_decides_anything(
    marks: list[float], equities: list[float]
) -> None:
    c = core(account())
    for i, m in enumerate(marks):
        assert c.handle(position(10.0 if i % 2 else -3.0, m, ts=T0 + i * DAY_NS)) == []
    for i, e in enumerate(equities):
        assert c.handle(equity(e, T0 + i * DAY_NS)) == []


def test_the_new_optional_fields_are_absent_from_an_ordinary_approval() -> None:
    a = one(core(account()).handle(signal("long")), OrderApproved)
    assert b"reduce_only" not in encode(a) and b'"reason"' not in encode(a)
    assert msgspec.json.decode(encode(a), type=OrderApproved) == a


@pytest.mark.parametrize(
    ("limits", "where"),
    [
        ({"max_drawdown": 0.0}, "max_drawdown"),
        ({"max_drawdown": 1.0}, "max_drawdown"),
        ({"stop_loss": 1.5}, "stop_loss"),
        ({"max_open_positions": 0}, "max_open_positions"),
        ({"cooldown_minutes": -1}, "cooldown_minutes"),
    ],
)
def test_limits_out_of_range_are_refused(limits: dict[str, object], where: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=where):
        msgspec.convert({"name": "a", **limits}, AccountConfig)
