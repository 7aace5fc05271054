"""The risk core: sizing, every rejection reason, pending orders, emergency stop."""

from __future__ import annotations

import math

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.risk.config import AccountConfig, RiskConfig
from services.risk.core import FILTER_SUBJECTS, RiskCore, order_id_for
from ticktape import ids
from ticktape.errors import InvalidInput
from ticktape.events import (
    AccountUpdated,
    EmergencyStop,
    Event,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderRejected,
    PositionUpdated,
    ResumeTrading,
    SignalGenerated,
    codec,
)
from ticktape.events.signals import Side

_n = 0


def signal(
    side: Side, price: float = 100.0, *, symbol: str = "BTCUSDT", strategy: str = "ensemble9", previous: Side = "flat"
) -> SignalGenerated:
    global _n
    _n += 1
    return SignalGenerated(
        event_id=f"sig-{_n}",
        ts_event=1_000 + _n,
        ts_init=2_000 + _n,
        causation_id=f"bar-{_n}",
        correlation_id=f"bar-{_n}",
        strategy=strategy,
        venue="binance",
        symbol=symbol,
        timeframe="1m",
        side=side,
        previous_side=previous,
        price=price,
        bar_open_time=60 * _n,
        target={"long": 1.0, "short": -1.0, "flat": 0.0}[side],
    )


def position(
    qty: float, mark: float = 100.0, *, account: str = "paper-main", symbol: str = "BTCUSDT"
) -> PositionUpdated:
    return PositionUpdated(
        event_id=f"pos-{qty}-{mark}",
        ts_event=0,
        ts_init=0,
        account=account,
        venue="binance",
        symbol=symbol,
        quantity=qty,
        avg_price=mark,
        mark_price=mark,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        fees_paid=0.0,
    )


def account_update(equity: float, account: str = "paper-main") -> AccountUpdated:
    return AccountUpdated(
        event_id=f"acct-{equity}",
        ts_event=0,
        ts_init=0,
        account=account,
        initial_equity=10_000.0,
        equity=equity,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        fees_paid=0.0,
        gross_exposure=0.0,
        net_exposure=0.0,
    )


def filled(approval: OrderApproved, price: float | None = None) -> OrderFilled:
    return OrderFilled(
        event_id=f"fill-{approval.event_id}",
        ts_event=0,
        ts_init=0,
        order_id=order_id_for(approval.event_id),
        account=approval.account,
        venue=approval.venue,
        symbol=approval.symbol,
        side=approval.side,
        quantity=approval.quantity,
        price=price or approval.reference_price,
        fee=0.0,
    )


def canceled(approval: OrderApproved) -> OrderCanceled:
    return OrderCanceled(
        event_id=f"cancel-{approval.event_id}",
        ts_event=0,
        ts_init=0,
        order_id=order_id_for(approval.event_id),
        account=approval.account,
        venue=approval.venue,
        symbol=approval.symbol,
        reason="emergency_stop",
    )


def stop(account: str = "*") -> EmergencyStop:
    return EmergencyStop(event_id=f"stop-{account}", ts_event=0, ts_init=0, reason="test", account=account)


def resume(account: str = "*") -> ResumeTrading:
    return ResumeTrading(event_id=f"resume-{account}", ts_event=0, ts_init=0, reason="test", account=account)


def core(**account: object) -> RiskCore:
    return RiskCore(RiskConfig(accounts=(AccountConfig(**account),)))  # type: ignore[arg-type]


def one(events: list[Event]) -> Event:
    assert len(events) == 1, events
    return events[0]


def approved(events: list[Event]) -> OrderApproved:
    e = one(events)
    assert isinstance(e, OrderApproved), e
    return e


def rejected(events: list[Event]) -> OrderRejected:
    e = one(events)
    assert isinstance(e, OrderRejected), e
    return e


def test_risk_when_long_signal_then_sizes_fraction_of_initial_equity() -> None:
    sig = signal("long", 250.0)
    a = approved(core().handle(sig))
    assert (a.side, a.quantity, a.target_quantity) == ("buy", 4.0, 4.0)  # 0.1 x 10_000 / 250
    assert (a.notional, a.reference_price) == (1_000.0, 250.0)
    assert (a.signal_id, a.bar_open_time, a.strategy) == (sig.event_id, sig.bar_open_time, "ensemble9")
    assert a.event_id == ids.child_id(sig.event_id, "risk.paper-main", 0)
    assert (a.causation_id, a.correlation_id) == (sig.event_id, sig.correlation_id)
    assert (a.ts_event, a.ts_init) == (sig.ts_event, sig.ts_init)


def test_risk_when_account_updated_then_sizes_on_latest_equity() -> None:
    c = core()
    c.handle(account_update(20_000.0))
    assert approved(c.handle(signal("long", 100.0))).quantity == 20.0


def test_risk_when_short_signal_then_sells_target() -> None:
    a = approved(core().handle(signal("short", 100.0)))
    assert (a.side, a.quantity, a.target_quantity) == ("sell", 10.0, -10.0)


def test_risk_when_short_not_allowed_then_short_signal_only_closes() -> None:
    c = core(allow_short=False)
    assert c.handle(signal("short")) == []
    c.handle(position(10.0))
    a = approved(c.handle(signal("short")))
    assert (a.side, a.quantity, a.target_quantity) == ("sell", 10.0, 0.0)


def test_risk_when_holding_long_and_signal_flips_short_then_orders_the_difference() -> None:
    c = core()
    c.handle(position(10.0, 100.0))
    a = approved(c.handle(signal("short", 100.0)))
    assert (a.side, a.quantity) == ("sell", 20.0)


def test_risk_when_flat_signal_without_position_then_nothing() -> None:
    assert core().handle(signal("flat")) == []


def test_risk_when_already_at_target_then_nothing() -> None:
    c = core()
    c.handle(position(0.1 * 10_000 / 3.0, 3.0))
    assert c.handle(signal("long", 3.0)) == []


def test_risk_when_order_pending_then_not_double_counted() -> None:
    c = core(strategies=("*",))
    a = approved(c.handle(signal("long", 100.0)))
    assert c.handle(signal("long", 100.0, strategy="other")) == []  # pending 10 already
    assert c.pending_quantity("paper-main", ("binance", "BTCUSDT")) == 10.0
    c.handle(filled(a))
    assert c.pending_quantity("paper-main", ("binance", "BTCUSDT")) == 0.0
    assert c.handle(signal("long", 100.0)) == []  # now held as a position, still not doubled
    c.handle(position(10.0))  # execution's view agrees
    c.handle(filled(a))  # a redelivered fill changes nothing
    assert c.handle(signal("long", 100.0)) == []
    assert approved(c.handle(signal("flat", 100.0))).quantity == 10.0


def test_risk_when_signal_redelivered_then_same_decision_and_pending_counted_once() -> None:
    c = core()
    sig = signal("long")
    first = c.handle(sig)
    assert c.handle(sig) == first
    assert c.pending_quantity("paper-main", ("binance", "BTCUSDT")) == 10.0


def test_risk_when_order_canceled_then_pending_released() -> None:
    c = core()
    a = approved(c.handle(signal("long")))
    c.handle(canceled(a))
    assert approved(c.handle(signal("long"))).quantity == 10.0


def test_risk_when_halted_then_rejects_and_resume_lifts_it() -> None:
    c = core()
    c.handle(stop())
    r = rejected(c.handle(signal("long")))
    assert (r.reason, r.side, r.quantity) == ("halted", "buy", 10.0)
    assert r.detail
    c.handle(resume())
    assert approved(c.handle(signal("long"))).quantity == 10.0


def test_risk_when_halted_with_reduce_while_halted_off_then_closing_orders_are_rejected_too() -> None:
    c = RiskCore(RiskConfig(reduce_while_halted=False))  # how every run before the key decided
    c.handle(position(10.0))
    c.handle(stop("paper-main"))
    assert rejected(c.handle(signal("flat"))).reason == "halted"


def test_risk_when_halted_then_a_closing_order_passes_reduce_only_by_default() -> None:
    c = RiskCore(RiskConfig())
    c.handle(position(10.0))
    c.handle(stop("paper-main"))
    a = approved(c.handle(signal("flat")))
    assert (a.side, a.quantity, a.reduce_only, a.reason) == ("sell", 10.0, True, "halted_reduce")


def test_risk_when_one_account_stopped_then_others_still_trade() -> None:
    c = RiskCore(RiskConfig(accounts=(AccountConfig(name="a"), AccountConfig(name="b"))))
    c.handle(stop("a"))
    out = c.handle(signal("long"))
    assert [(type(e).__name__, e.account) for e in out] == [  # type: ignore[union-attr]
        ("OrderRejected", "a"),
        ("OrderApproved", "b"),
    ]


def test_risk_when_no_equity_then_rejects_opening_but_allows_closing() -> None:
    c = core()
    c.handle(account_update(0.0))
    r = rejected(c.handle(signal("long")))
    assert (r.reason, r.side, r.quantity) == ("no_equity", "buy", 0.0)
    c.handle(position(-5.0))
    assert approved(c.handle(signal("flat"))).quantity == 5.0


def test_risk_when_target_above_symbol_limit_then_rejects() -> None:
    c = core(fraction=0.6)  # 6_000 > 5_000
    r = rejected(c.handle(signal("long")))
    assert (r.reason, r.quantity) == ("max_notional_per_symbol", 60.0)
    assert "6000.00" in r.detail


def test_risk_when_gross_exposure_would_exceed_limit_then_rejects() -> None:
    c = core(max_notional_per_symbol=1_000.0, max_gross_exposure=1_500.0)
    approved(c.handle(signal("long", symbol="BTCUSDT")))  # pending 1_000 counts
    r = rejected(c.handle(signal("long", symbol="ETHUSDT")))
    assert r.reason == "max_gross_exposure" and "2000.00" in r.detail


def test_risk_when_closing_then_exposure_limits_do_not_apply() -> None:
    c = core(max_notional_per_symbol=1_000.0, max_gross_exposure=1_000.0)
    c.handle(position(30.0, 100.0))  # over both limits already (e.g. limits were lowered)
    a = approved(c.handle(signal("flat")))
    assert (a.side, a.quantity, a.target_quantity) == ("sell", 30.0, 0.0)


def test_risk_when_strategy_not_subscribed_then_ignored() -> None:
    assert core().handle(signal("long", strategy="ema_cross_9_21")) == []
    assert approved(core(strategies=("*",)).handle(signal("long", strategy="any")))


def test_risk_when_several_accounts_then_decides_in_config_order() -> None:
    c = RiskCore(
        RiskConfig(
            accounts=(
                AccountConfig(name="z", fraction=0.2),
                AccountConfig(name="a", initial_equity=1_000.0),
            )
        )
    )
    out = c.handle(signal("long", 100.0))
    assert [(e.account, e.quantity) for e in out] == [("z", 20.0), ("a", 1.0)]  # type: ignore[union-attr]
    assert len({e.event_id for e in out}) == 2


def test_risk_when_signal_price_invalid_then_raises() -> None:
    with pytest.raises(ValueError, match="bad price"):
        core().handle(signal("long", 0.0))


@given(
    equity=st.floats(min_value=1.0, max_value=1e7),
    price=st.floats(min_value=1e-4, max_value=1e6),
    held=st.floats(min_value=-1e3, max_value=1e3),
    side=st.sampled_from(["long", "short", "flat"]),
)
def test_risk_when_approved_then_position_plus_order_reaches_target(
    equity: float, price: float, held: float, side: Side
) -> None:
    c = core(max_notional_per_symbol=1e12, max_gross_exposure=1e12)
    c.handle(account_update(equity))
    c.handle(position(held, price))
    for e in c.handle(signal(side, price)):
        assert isinstance(e, OrderApproved)
        signed = e.quantity if e.side == "buy" else -e.quantity
        assert held + signed == pytest.approx(e.target_quantity, rel=1e-9, abs=1e-9)
        assert e.target_quantity == {"long": 1, "short": -1, "flat": 0}[side] * 0.1 * equity / price


def test_filter_subjects_when_listed_then_cover_every_input() -> None:
    assert set(FILTER_SUBJECTS) == {
        "signals.>",
        "accounts.>",
        "positions.>",
        "fills.>",
        "orders.>",
        "control.>",
        "strategies.>",
    }


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"accounts": []}, "accounts must not be empty"),
        ({"accounts": [{"name": "a"}, {"name": "a"}]}, "account names must be unique"),
        ({"accounts": [{"fraction": 0}]}, r"Expected `float` > 0.0 - at `\$.accounts\[0\].fraction`"),
        ({"accounts": [{"max_notional_per_symbol": 30_000}]}, "max_notional_per_symbol must be <= max_gross_exposure"),
        ({"accounts": [{"strategies": []}]}, "strategies must list strategy names"),
        ({"accounts": [{"name": "*"}]}, "name"),
        ({"accounts": [{"leverage": 3}]}, "unknown field"),
    ],
)
def test_risk_config_when_invalid_then_error_names_the_key(section: dict, message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message):
        msgspec.convert(section, RiskConfig)


def test_risk_config_when_section_empty_then_one_paper_account() -> None:
    (acct,) = msgspec.convert({}, RiskConfig).accounts
    assert (acct.name, acct.initial_equity, acct.fraction) == ("paper-main", 10_000.0, 0.1)
    assert (acct.max_notional_per_symbol, acct.max_gross_exposure) == (5_000.0, 20_000.0)
    assert (acct.strategies, acct.allow_short) == (("ensemble9",), True)


# -- non-finite input is rejected, never propagated; absurd sizes get a reason code ------------


@pytest.mark.parametrize("price", [1e308, 1e-320, math.inf, math.nan, -1.0])
def test_risk_when_signal_price_outside_the_sane_band_then_rejected_as_input(price: float) -> None:
    c = core()
    with pytest.raises(InvalidInput, match="bad price"):
        c.handle(signal("long", price))
    assert not c.pending and c.books["paper-main"].prices == {}


@pytest.mark.parametrize(
    "event",
    [
        account_update(math.inf),
        account_update(math.nan),
        position(math.nan),
        position(1.0, math.inf),
        msgspec.structs.replace(filled(approved(core().handle(signal("long")))), quantity=-1.0),
        msgspec.structs.replace(filled(approved(core().handle(signal("long")))), price=math.inf),
    ],
)
def test_risk_when_execution_event_carries_a_non_finite_number_then_rejected_and_nothing_changes(
    event: Event,
) -> None:
    c = core()
    c.handle(account_update(20_000.0))
    with pytest.raises(InvalidInput):
        c.handle(event)
    book = c.books["paper-main"]
    assert (book.equity, book.positions) == (20_000.0, {})
    assert approved(c.handle(signal("long", 100.0))).quantity == 20.0  # still sizes on finite equity


def test_risk_when_size_would_be_absurd_then_rejects_invalid_size() -> None:
    c = core(max_notional_per_symbol=1e300, max_gross_exposure=1e300)
    c.handle(account_update(1e300))
    r = rejected(c.handle(signal("long", 100.0)))
    assert (r.reason, r.side, r.quantity) == ("invalid_size", "buy", 0.0)
    assert "hard limit" in r.detail


def test_risk_when_size_would_overflow_then_rejects_invalid_size_with_finite_numbers() -> None:
    c = core()
    c.handle(account_update(1e300))
    r = rejected(c.handle(signal("short", 1e-12)))  # 0.1 x 1e300 / 1e-12 = inf
    assert (r.reason, r.side, r.quantity) == ("invalid_size", "sell", 0.0)
    assert codec.decode(codec.encode(r)) == r
    assert not c.pending
