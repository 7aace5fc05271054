"""The API's read model and its answers, pure: the event log the decision cores make of wave bars
(tests.support.pipeline) folded in, every answer checked against a computation of its own."""

from __future__ import annotations

import math

import msgspec
import pytest

from services.api import answers
from services.api import performance as perf
from services.api import queries as q
from services.api.readmodel import ReadModel
from tests.support.bars import wave_bars
from tests.support.pipeline import run_cores
from ticktape.events import (
    AccountUpdated,
    EmergencyStop,
    Event,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    ResumeTrading,
    SessionStarted,
    SessionStopped,
)
from ticktape.events.codec import encode

MIN = 60_000_000_000


def _log() -> list[Event]:
    bars: list[Event] = []
    for a, b in zip(wave_bars("BTCUSDT", n=200), wave_bars("ETHUSDT", n=200, period=56), strict=True):
        bars += [a, b]
    return run_cores(bars)


LOG = _log()


def fold(events: list[Event]) -> ReadModel:
    model = ReadModel()
    for seq, event in enumerate(events, 1):
        model.apply(event, seq, seq * MIN)
    return model


def test_folding_the_same_log_twice_gives_the_same_answers() -> None:
    a, b = fold(LOG), fold(LOG)
    for make in (
        lambda m: answers.fills(m, q.FillsQuery(limit=1000), 1000),
        lambda m: answers.orders(m, q.OrdersQuery(limit=1000), 1000),
        lambda m: answers.positions(m, q.PositionsQuery()),
        lambda m: answers.performance(m, q.PerformanceQuery(), 3600),
    ):
        assert msgspec.json.encode(make(a)) == msgspec.json.encode(make(b))


def test_orders_fills_and_strategies_follow_the_log() -> None:
    model = fold(LOG)
    submitted = [e for e in LOG if isinstance(e, OrderSubmitted)]
    fills = [e for e in LOG if isinstance(e, OrderFilled)]
    assert submitted and fills
    page = answers.orders(model, q.OrdersQuery(limit=1000), 1000)
    assert [o.order_id for o in page.items] == [o.order_id for o in reversed(submitted)]
    assert all(o.status == "filled" and o.avg_fill_price is not None for o in page.items)
    assert {o.strategy for o in page.items} == {"ensemble9"}
    got = answers.fills(model, q.FillsQuery(limit=1000), 1000)
    assert [f.fill_id for f in got.items] == [f.event_id for f in reversed(fills)]
    # pages tile the whole list, and the page size is capped
    pages = [answers.fills(model, q.FillsQuery(limit=3, offset=o), 1000) for o in range(0, len(fills), 3)]
    assert [f.fill_id for p in pages for f in p.items] == [f.fill_id for f in got.items]
    assert pages[-1].next_offset is None and pages[0].next_offset == 3
    assert len(answers.fills(model, q.FillsQuery(limit=1000), 2).items) == 2
    since = fills[len(fills) // 2].ts_event
    assert answers.fills(model, q.FillsQuery(since_ns=since, limit=1000), 1000).total == sum(
        1 for f in fills if f.ts_event >= since
    )


def test_a_canceled_order_keeps_its_reason() -> None:
    order = next(e for e in LOG if isinstance(e, OrderSubmitted))
    cancel = OrderCanceled(
        event_id="c1",
        ts_event=order.ts_event + 1,
        ts_init=order.ts_init + 1,
        order_id=order.order_id,
        account=order.account,
        venue=order.venue,
        symbol=order.symbol,
        reason="halted",
    )
    model = fold([order, cancel])
    (view,) = answers.orders(model, q.OrdersQuery(status="canceled"), 10).items
    assert (view.reason, view.filled_quantity, view.avg_fill_price) == ("halted", 0.0, None)


def test_strategy_pnl_is_the_accounts_when_one_strategy_trades_it() -> None:
    model = fold(LOG)
    account = [e for e in LOG if isinstance(e, AccountUpdated)][-1]
    perf_view = answers.performance(model, q.PerformanceQuery(), 86_400)
    (acct,) = perf_view.accounts
    (strategy,) = perf_view.strategies
    assert acct.session.pnl == pytest.approx(account.equity - account.initial_equity)
    assert strategy.realized_pnl == pytest.approx(account.realized_pnl)
    assert strategy.unrealized_pnl == pytest.approx(account.unrealized_pnl)
    assert strategy.session.pnl == pytest.approx(acct.session.pnl)
    assert acct.session.fees == pytest.approx(account.fees_paid)
    assert acct.session.trades == strategy.session.trades > 0


def test_the_session_span_starts_at_the_latest_session() -> None:
    half = len(LOG) // 2
    start = SessionStarted(
        event_id="s2", ts_event=0, ts_init=0, session_id="s2", config_hash="h", config_json="{}", code_version="v"
    )
    model = fold([*LOG[:half], start, *LOG[half:]])
    (acct,) = answers.performance(model, q.PerformanceQuery(), 86_400).accounts
    updates = [e for e in LOG if isinstance(e, AccountUpdated)]
    before = [e for e in LOG[:half] if isinstance(e, AccountUpdated)][-1]
    assert acct.session.pnl == pytest.approx(updates[-1].equity - before.equity)
    assert acct.session.marks == len(updates) - sum(1 for e in LOG[:half] if isinstance(e, AccountUpdated))
    stop = SessionStopped(event_id="x", ts_event=5, ts_init=5, session_id="s2", reason="stopped")
    model.apply(stop, len(LOG) + 2, 0)
    (session,) = answers.sessions(model).sessions
    assert (session.session_id, session.stopped_ns, session.reason) == ("s2", 5, "stopped")


def test_positions_are_the_latest_per_key_and_halts_fold_like_risk() -> None:
    model = fold(LOG)
    latest = {}
    for e in LOG:
        if isinstance(e, PositionUpdated):
            latest[(e.account, e.venue, e.symbol)] = e
    views = answers.positions(model, q.PositionsQuery())
    assert {(p.account, p.venue, p.symbol): p.quantity for p in views.positions} == {
        k: v.quantity for k, v in latest.items()
    }
    only_eth = answers.positions(model, q.PositionsQuery(symbol="ETHUSDT")).positions
    assert {p.symbol for p in only_eth} == {"ETHUSDT"}
    for n, (event, halted) in enumerate(
        [
            (EmergencyStop(event_id="a", ts_event=1, ts_init=1, reason="r"), True),
            (ResumeTrading(event_id="b", ts_event=2, ts_init=2, reason="r", account="paper-main"), False),
            (ResumeTrading(event_id="c", ts_event=3, ts_init=3, reason="r"), False),
            (EmergencyStop(event_id="d", ts_event=4, ts_init=4, reason="r", account="paper-main"), True),
        ]
    ):
        model.apply(event, 10_000 + n, 0)
        assert answers.accounts(model, q.AccountsQuery()).accounts[0].halted is halted


def test_universe_as_of_and_symbols() -> None:
    from ticktape.events import UniverseMember, UniverseUpdated

    def universe(as_of: int, symbols: tuple[str, ...]) -> UniverseUpdated:
        return UniverseUpdated(
            event_id=f"u{as_of}",
            ts_event=as_of,
            ts_init=as_of,
            venue="hyperliquid",
            quote_asset="USDC",
            top_n=2,
            as_of=as_of,
            symbols=symbols,
            members=tuple(UniverseMember(symbol=s, rank=2 - i, quote_volume=1.0) for i, s in enumerate(symbols)),
        )

    model = fold([universe(100, ("BTC", "ETH")), universe(200, ("SOL", "BTC"))])
    now = answers.symbols(model, q.SymbolsQuery()).universes[0]
    assert [m.symbol for m in now.members] == ["BTC", "SOL"]  # in rank order
    assert answers.symbols(model, q.SymbolsQuery(as_of="150")).universes[0].event_id == "u100"
    assert answers.symbols(model, q.SymbolsQuery(as_of="99")).universes == ()
    assert answers.symbols(model, q.SymbolsQuery(venue="binance_spot")).universes == ()
    assert model.known_symbol("SOL") and not model.known_symbol("ETH")  # ETH left the universe
    with pytest.raises(q.BadParameter):
        answers.symbols(model, q.SymbolsQuery(as_of="2026-02-30T00:00:00Z"))
    assert q.parse_time("t", "1970-01-01T00:00:01.5Z") == 1_500_000_000


def test_configured_strategies_come_from_the_session_config() -> None:
    doc = '{"signal": {"strategies": [{"kind": "ema_cross", "name": "fast"}, {"name": "ens", "kind": "ensemble"}]}}'
    assert answers.configured_strategies(doc) == (("fast", "ema_cross"), ("ens", "ensemble"))
    assert answers.configured_strategies("not json") == ()
    assert answers.configured_strategies('{"signal": []}') == ()


def test_drawdown_and_sharpe() -> None:
    assert perf.max_drawdown([100, 120, 90, 130, 125]) == (30, pytest.approx(0.25))
    assert perf.max_drawdown([100, 101, 102]) == (0, 0)
    assert perf.sharpe([100, 101, 102], [1, 2]) is None  # fewer than three returns
    flat = perf.sharpe([100, 100, 100, 100], [1, 2, 3])
    assert flat is None  # no variation
    values = [100.0, 101.0, 100.5, 102.0, 101.0]
    returns = [(b - a) / a for a, b in zip(values, values[1:], strict=False)]
    mean = sum(returns) / len(returns)
    sd = math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
    minute = 60 * 10**9
    expected = mean / sd * math.sqrt(perf.YEAR_NS / minute)
    assert perf.sharpe(values, [minute * i for i in range(1, 5)]) == pytest.approx(expected)


def test_stats_over_a_window_start_from_the_value_before_it() -> None:
    curve = perf.Curve(base=1000.0)
    for i, v in enumerate([1010.0, 990.0, 1020.0, 1005.0], 1):
        curve.mark(i, i * MIN, v)
    curve.trades.append(perf.Trade(3, 3 * MIN, 1.5, closed=True, win=True))
    curve.trades.append(perf.Trade(4, 4 * MIN, 0.5, closed=True, win=False))
    whole = perf.stats(curve, perf.Span())
    assert (whole.pnl, whole.trades, whole.wins, whole.win_rate, whole.fees) == (5.0, 2, 1, 0.5, 2.0)
    assert whole.max_drawdown == pytest.approx(20.0)
    tail = perf.stats(curve, perf.Span(0, 3 * MIN))
    assert tail.pnl == pytest.approx(1005.0 - 990.0) and tail.marks == 2
    assert perf.stats(curve, perf.Span(99)).pnl == 0.0  # nothing in it: no change


def test_fills_of_an_unknown_order_still_count() -> None:
    fill = next(e for e in LOG if isinstance(e, OrderFilled))
    model = fold([fill])
    (view,) = answers.fills(model, q.FillsQuery(), 10).items
    assert view.strategy == "" and encode(fill)  # no order, no approval: no strategy
