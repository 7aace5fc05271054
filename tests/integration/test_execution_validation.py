"""Execution and risk on a real nats-server: forged approvals (quantity 1e308, -1) are canceled
with a reason code and never filled, and every later account event keeps a finite equity that
risk consumes without a dead letter."""

from __future__ import annotations

import math

import pytest

from services.execution.config import ExecutionConfig
from services.execution.core import order_id_for
from services.execution.service import serve as serve_execution
from services.risk.config import RiskConfig
from services.risk.service import serve as serve_risk
from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import AccountUpdated, OrderApproved, OrderCanceled, OrderFilled, OrderSubmitted
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events, stream_messages
from ticktape.testing.services import common_settings, running_service

STREAM = "TICKTAPE"


@pytest.fixture
async def js(nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    return js


def approval(name: str, quantity: float, bar_open_time: int, price: float = 100.0) -> OrderApproved:
    """As a forger would publish it. JSON cannot carry the infinite notional of 1e308 x 100 (it
    would be written as null and dead-lettered as undecodable), so a forger states 1e308."""
    return OrderApproved(
        event_id=f"forged-{name}",
        ts_event=bar_open_time,
        ts_init=bar_open_time,
        account="paper-main",
        strategy="ensemble9",
        venue="binance_usdm",
        symbol="BTCUSDT",
        side="buy",
        quantity=quantity,
        reference_price=price,
        notional=min(quantity * price, 1e308),
        target_quantity=quantity,
        signal_id=f"sig-{name}",
        bar_open_time=bar_open_time,
    )


async def test_forged_approvals_then_canceled_with_reasons_no_fill_and_equity_stays_finite(nats_url, js):
    bars = wave_bars(n=6)
    huge = approval("huge", 1e308, bars[0].open_time)
    negative = approval("negative", -1.0, bars[0].open_time)
    sane = approval("sane", 2.0, bars[0].open_time, price=bars[0].close)
    await publish_batch(js, [(e, {}) for e in [bars[0], huge, negative, sane, *bars[1:]]])

    common = common_settings(nats_url)
    async with (
        running_service("execution", serve_execution, ExecutionConfig(), common),
        running_service("risk", serve_risk, RiskConfig(), common) as risk,
    ):

        async def outputs():
            events = await stream_events(js, STREAM, [subjects.ALL_ORDERS, subjects.ALL_FILLS, subjects.ALL_ACCOUNTS])
            accounts = [e for e in events if isinstance(e, AccountUpdated)]
            return events if len(accounts) == len(bars) - 1 else None  # a fill, then a mark per later bar

        events = await eventually(outputs, timeout=20, what="execution's orders, fills and account updates")
        # risk consumed everything execution published (its orders, fills, positions and
        # accounts) and dead-lettered none of it
        published = len(await stream_messages(js, STREAM, ["orders.>", "fills.>", "positions.>", "accounts.>"]))
        await eventually(
            lambda: risk.metrics.value("ticktape_received") >= published, timeout=20, what="risk to consume them"
        )
        assert risk.metrics.value("ticktape_dead_lettered") == 0

    canceled = {e.order_id: e.reason for e in events if isinstance(e, OrderCanceled)}
    assert canceled == {
        order_id_for(huge.event_id): "invalid_notional",
        order_id_for(negative.event_id): "invalid_quantity",
    }
    assert [e.order_id for e in events if isinstance(e, OrderSubmitted)] == [order_id_for(sane.event_id)]
    fills = [e for e in events if isinstance(e, OrderFilled)]
    assert [(f.order_id, f.quantity) for f in fills] == [(order_id_for(sane.event_id), 2.0)]
    assert math.isfinite(fills[0].fee) and fills[0].fee > 0
    accounts = [e for e in events if isinstance(e, AccountUpdated)]
    assert all(math.isfinite(a.equity) and math.isfinite(a.gross_exposure) for a in accounts)
    assert accounts[-1].equity == pytest.approx(10_000.0 + 2.0 * (bars[-1].close - fills[0].price) - fills[0].fee)
    assert await stream_events(js, "TICKTAPE_DLQ", [subjects.ALL_DLQ]) == []


async def test_approvals_against_the_registrys_trading_rules_then_rounded_to_lot_or_canceled(nats_url, js):
    """The rules travel as the registry publishes them (a UniverseUpdated on the bus, here parsed
    from the real Binance USD-M exchangeInfo capture the registry's tests use) and reach the
    execution service through its own consumer."""
    from exchanges import adapter_for
    from services.symbol_registry.core import universe_event
    from tests.unit.test_symbol_registry_core import dumps, passivbot_usdm_info, tickers_for

    info = passivbot_usdm_info()
    entries = adapter_for("binance_usdm").parse_universe([dumps(info), dumps(tickers_for(info))], "USDT")
    btc = next(e for e in entries if e.symbol == "BTCUSDT")
    assert btc.lot_size > 0 and btc.min_notional > 0  # what the capture states
    bars = wave_bars(n=3)
    universe = universe_event("binance_usdm", [btc], quote_asset="USDT", top_n=1, as_of=bars[0].open_time - 1)
    price = bars[0].close
    tiny = approval("tiny", btc.min_notional / price / 2, bars[0].open_time, price=price)  # half the minimum
    off_lot = approval("off_lot", 2 * btc.min_notional / price + btc.lot_size / 3, bars[0].open_time, price=price)
    await publish_batch(js, [(e, {}) for e in [universe, bars[0], tiny, off_lot, *bars[1:]]])

    async with running_service("execution", serve_execution, ExecutionConfig(), common_settings(nats_url)):

        async def orders():
            events = await stream_events(js, STREAM, [subjects.ALL_ORDERS, subjects.ALL_FILLS])
            return events if any(isinstance(e, OrderFilled) for e in events) else None

        events = await eventually(orders, timeout=20, what="execution's orders and fill")

    canceled = {e.order_id: e.reason for e in events if isinstance(e, OrderCanceled)}
    assert canceled == {order_id_for(tiny.event_id): "below_min_notional"}
    (sub,) = [e for e in events if isinstance(e, OrderSubmitted)]
    assert sub.order_id == order_id_for(off_lot.event_id)
    assert sub.quantity < off_lot.quantity and off_lot.quantity - sub.quantity < btc.lot_size
    assert math.isclose(sub.quantity / btc.lot_size, round(sub.quantity / btc.lot_size), abs_tol=1e-6)
    (fill,) = [e for e in events if isinstance(e, OrderFilled)]
    assert fill.quantity == sub.quantity
