"""No trading on history: backfilled bars warm the strategies but never signal; a side they changed
is signalled on the next live bar, at its price (issue #8 item 10)."""

from __future__ import annotations

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from services.signal.config import EmaCrossConfig, SignalConfig
from services.signal.core import SignalCore
from services.signal.service import load
from services.signal.strategies import EmaCross, EmaCrossParams
from tests.support.backfill import new_symbol_then_outage
from tests.unit.test_signal_core import FALLING, RISING, bar
from ticktape import events as ev
from ticktape import subjects
from ticktape.events import BarClosed, SignalGenerated
from ticktape.replay.simulate import simulate_session
from ticktape.strategy import BarHistory, Context

LEGACY = {"signal": {"trade_backfilled": True}}


def core(*, trade_backfilled: bool = False) -> SignalCore:
    strategy = EmaCrossConfig(name="x", fast=2, slow=4)
    return SignalCore(SignalConfig(strategies=(strategy,), trade_backfilled=trade_backfilled))


def history(i: int, close: float) -> BarClosed:
    return msgspec.structs.replace(bar(i, close), backfilled=True)


def run(c: SignalCore, bars: list[BarClosed]) -> list[SignalGenerated]:
    out = [e for b in bars for e in c.handle(b)]
    signals = [e for e in out if isinstance(e, SignalGenerated)]
    assert signals == out
    return signals


def test_a_new_symbols_history_warms_the_strategy_but_signals_nothing():
    c = core()
    past = [history(i, x) for i, x in enumerate(RISING)]
    assert run(c, past) == []
    live = bar(10, 110.0)
    (signal,) = run(c, [live])
    # warm: the strategy's votes on the live bar are those of one that saw every bar
    reference = EmaCross(EmaCrossParams(fast=2, slow=4), name="x")
    decisions = [reference.on_bar(Context(b, BarHistory({}))) for b in [*past, live]]
    last = decisions[-1]
    assert last is not None and callable(last.diagnostics)
    assert signal.diagnostics["votes"] == last.diagnostics()["votes"]
    assert run(core(), [live]) == []  # a cold strategy cannot decide on one bar


def test_the_first_live_bar_after_history_signals_once_at_its_own_price():
    c = core()
    run(c, [history(i, x) for i, x in enumerate(RISING)])
    live = bar(10, 110.0)
    (signal,) = run(c, [live])
    assert (signal.side, signal.previous_side) == ("long", "flat")
    assert signal.price == live.close and signal.bar_open_time == live.open_time
    assert signal.causation_id == live.event_id and signal.ts_event == live.close_time
    assert run(c, [bar(11 + i, 111.0 + i) for i in range(5)]) == []  # still long: nothing more


def test_every_strategy_signals_at_most_once_on_the_first_live_bar():
    c = SignalCore(SignalConfig())  # the default ensemble and EMA cross
    closes = [100.0 + i for i in range(60)]
    assert run(c, [history(i, x) for i, x in enumerate(closes)]) == []
    live = bar(60, 160.0)
    signals = run(c, [live])
    assert sorted(s.strategy for s in signals) == sorted(s.name for s in SignalConfig().strategies)
    assert {(s.side, s.previous_side, s.price) for s in signals} == {("long", "flat", 160.0)}


def test_an_outage_whose_side_changed_and_changed_back_signals_nothing_on_repair_or_after():
    c = core()
    (long_,) = run(c, [bar(i, x) for i, x in enumerate(RISING)])  # live: long
    assert long_.side == "long"
    gap = [history(10 + i, x) for i, x in enumerate([*FALLING, *RISING])]  # short, then long again
    assert run(core(trade_backfilled=True), [bar(i, x) for i, x in enumerate(RISING)] + gap) != []  # would have
    assert run(c, gap) == []
    assert run(c, [bar(30, 120.0)]) == []  # the side live trading holds is the strategy's side


def test_a_side_the_outage_changed_is_signalled_on_the_first_live_bar_not_at_a_historical_price():
    c = core()
    run(c, [bar(i, x) for i, x in enumerate(RISING)])  # long
    gap = [history(10 + i, x) for i, x in enumerate(FALLING)]  # turns short during the outage
    assert run(c, gap) == []
    live = bar(20, 89.0)
    (signal,) = run(c, [live])
    assert (signal.side, signal.previous_side) == ("short", "long")
    assert signal.price == 89.0 and signal.bar_open_time == live.open_time
    assert signal.price not in {b.close for b in gap}


def test_trade_backfilled_true_signals_on_history_exactly_like_live_bars():
    closes = [*RISING, *FALLING, *RISING]
    marked = run(core(trade_backfilled=True), [history(i, x) for i, x in enumerate(closes)])
    plain = run(core(), [bar(i, x) for i, x in enumerate(closes)])
    assert len(plain) == 3 and [msgspec.json.encode(s) for s in marked] == [msgspec.json.encode(s) for s in plain]


def test_the_live_service_defaults_to_no_trading_on_history():
    assert load({}).trade_backfilled is False
    assert load({"signal": {"trade_backfilled": True}}).trade_backfilled is True


@settings(max_examples=150, deadline=None)
@given(
    steps=st.lists(st.tuples(st.floats(-3.0, 3.0), st.booleans()), min_size=1, max_size=80),
)
def test_signals_come_only_from_live_bars_and_leave_live_trading_on_the_strategys_side(steps):
    """Against a core that trades every bar: after each live bar the side last signalled is the
    reference's side, each signal is priced at its own live bar's close, and the signalled sides
    form a chain (each previous_side is the side signalled before it)."""
    c, reference = core(), core(trade_backfilled=True)
    price, signalled, reference_side = 100.0, "flat", "flat"
    for i, (move, backfilled) in enumerate(steps):
        price = max(1.0, price + move)
        b = msgspec.structs.replace(bar(i, price), backfilled=backfilled)
        for s in reference.handle(b):
            assert isinstance(s, SignalGenerated)
            reference_side = s.side
        out = run(c, [b])
        assert len(out) <= 1
        if backfilled:
            assert out == []
            continue
        for s in out:
            assert s.price == b.close and s.bar_open_time == b.open_time and s.previous_side == signalled
            signalled = s.side
        assert signalled == reference_side


TRADING = (SignalGenerated, ev.OrderApproved, ev.OrderRejected, ev.OrderSubmitted, ev.OrderFilled)


def _caused_by_history(events: list[ev.Event]) -> list[ev.Event]:
    """The signals, risk decisions, orders and fills whose causal chain starts at a backfilled bar
    (positions and accounts are marked on every bar, history included: valuation, not trading)."""
    by_id = {e.event_id: e for e in events}

    def root(e: ev.Event) -> ev.Event:
        while e.causation_id in by_id:
            e = by_id[e.causation_id]
        return e

    return [e for e in events if isinstance(e, TRADING) and isinstance(r := root(e), BarClosed) and r.backfilled]


def _session_events(config: dict) -> list[ev.Event]:
    _, records = simulate_session(new_symbol_then_outage("BTCUSDT"), config, "s")
    return [subjects.decode_on(r.subject, r.data) for r in records]


def test_through_risk_and_execution_history_makes_no_order_and_no_fill():
    events = _session_events({})
    assert [e for e in events if isinstance(e, BarClosed) and e.backfilled]  # history was there
    assert _caused_by_history(events) == []
    fills = [e for e in events if isinstance(e, ev.OrderFilled)]
    assert fills  # live bars still trade
    live_closes = {e.close for e in events if isinstance(e, BarClosed) and not e.backfilled}
    assert all(s.price in live_closes for s in events if isinstance(s, SignalGenerated))
    # the same bars with the old behaviour: orders and fills at historical prices
    legacy = _caused_by_history(_session_events(LEGACY))
    assert any(isinstance(e, ev.OrderFilled) for e in legacy) and any(isinstance(e, SignalGenerated) for e in legacy)
