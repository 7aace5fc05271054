"""The series the Grafana dashboards of deploy/ need beyond the pipeline's: closed bars per venue,
order events per account with their reason code, and the trace exemplar of an observation (the
scrape that carries it: tests/integration/test_metrics_exemplars.py)."""

from __future__ import annotations

import time

import msgspec
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ALWAYS_ON

from ticktape.events import OrderCanceled, OrderFilled, OrderRejected, OrderSubmitted, PositionUpdated
from ticktape.metrics import ServiceMetrics, trace_exemplar


def _submitted(i: int, reason: str | None = None) -> OrderSubmitted:
    order = OrderSubmitted(
        event_id=f"o{i}",
        ts_event=1,
        ts_init=1,
        order_id=f"o{i}",
        account="acct-1",
        venue="sim",
        symbol="BTCUSDT",
        side="buy",
        quantity=1.0,
    )
    return order if reason is None else msgspec.structs.replace(order, reduce_only=True, reason=reason)


def test_bars_published_are_counted_per_venue_backfilled_ones_too() -> None:
    m = ServiceMetrics("market_data")
    now = time.time_ns()
    m.bar_published("binance_usdm", now - 60 * 10**9)
    m.bar_published("binance_usdm", now - 120 * 10**9)  # a backfilled, older bar is still a bar
    m.bar_published("hyperliquid", now)
    assert m.value("ticktape_bars_published", venue="binance_usdm") == 2
    assert m.value("ticktape_bars_published", venue="hyperliquid") == 1


def test_order_events_are_counted_per_account_and_type_with_their_reason_code() -> None:
    m = ServiceMetrics("execution")
    rejected = OrderRejected(
        event_id="r1",
        ts_event=1,
        ts_init=1,
        account="acct-2",
        strategy="ema",
        venue="sim",
        symbol="BTCUSDT",
        side=None,
        quantity=0.0,
        reason="max_gross_exposure",
        detail="gross 12000 > 10000",
        signal_id="s1",
    )
    filled = OrderFilled(
        event_id="f1",
        ts_event=1,
        ts_init=1,
        order_id="o1",
        account="acct-1",
        venue="sim",
        symbol="BTCUSDT",
        side="buy",
        quantity=1.0,
        price=100.0,
        fee=0.04,
    )
    canceled = OrderCanceled(
        event_id="c1",
        ts_event=1,
        ts_init=1,
        order_id="o2",
        account="acct-1",
        venue="sim",
        symbol="BTCUSDT",
        reason="emergency_stop",
    )
    position = PositionUpdated(
        event_id="p1",
        ts_event=1,
        ts_init=1,
        account="acct-1",
        venue="sim",
        symbol="BTCUSDT",
        quantity=1.0,
        avg_price=100.0,
        mark_price=100.0,
        realized_pnl=0.0,
        unrealized_pnl=0.0,
        fees_paid=0.04,
    )
    m.order_events([_submitted(1), _submitted(2), filled, canceled, position, rejected])
    count = m.value
    assert count("ticktape_order_events", account="acct-1", type="exec.order.submitted", reason="") == 2
    assert count("ticktape_order_events", account="acct-1", type="exec.order.filled", reason="") == 1
    assert count("ticktape_order_events", account="acct-1", type="exec.order.canceled", reason="emergency_stop") == 1
    assert (
        count("ticktape_order_events", account="acct-2", type="risk.order.rejected", reason="max_gross_exposure") == 1
    )
    assert count("ticktape_order_events", type="exec.position.updated") == 0  # a gauge's business
    assert count("ticktape_order_events") == 5


def test_an_unset_optional_reason_is_an_empty_label_and_a_set_one_its_code() -> None:
    m = ServiceMetrics("execution")
    fields = OrderSubmitted.__struct_fields__
    if "reason" not in fields:  # the optional reason of a reduce-only order is not in this build
        m.order_events([_submitted(1)])
        assert m.value("ticktape_order_events", reason="") == 1
        return
    m.order_events([_submitted(1), _submitted(2, reason="stop_loss")])
    assert m.value("ticktape_order_events", type="exec.order.submitted", reason="") == 1
    assert m.value("ticktape_order_events", type="exec.order.submitted", reason="stop_loss") == 1
    labels = {
        s.labels["reason"] for f in m.registry.collect() for s in f.samples if s.name == "ticktape_order_events_total"
    }
    assert labels == {"", "stop_loss"}


def test_trace_exemplar_names_a_sampled_trace_only() -> None:
    assert trace_exemplar() is None  # no span
    with TracerProvider(sampler=ALWAYS_OFF).get_tracer("t").start_as_current_span("unsampled"):
        assert trace_exemplar() is None  # telemetry.setup without an OTLP endpoint: nothing exported
    with TracerProvider(sampler=ALWAYS_ON).get_tracer("t").start_as_current_span("sampled") as span:
        expected = {"trace_id": format(span.get_span_context().trace_id, "032x")}
        assert trace_exemplar() == expected
    # after the span ends its context can still be current (an ack callback of its publish)
    with trace.use_span(span, end_on_exit=False):
        assert not span.is_recording()
        assert trace_exemplar() == expected
