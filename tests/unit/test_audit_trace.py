"""Presenting causal traces (pure) and the audit service's settings."""

from __future__ import annotations

import pytest

from services.audit.config import AuditConfig
from services.audit.service import load
from tests.support.bars import wave_bars
from ticktape import config as cfg
from ticktape import ids, subjects
from ticktape.audit import chain, trace
from ticktape.events import OrderFilled
from ticktape.events.codec import encode

BAR = wave_bars(n=1)[0]
FILL = OrderFilled(
    event_id=ids.derive("fill", 1),
    ts_event=BAR.ts_event,
    ts_init=BAR.ts_init,
    causation_id="order-1",
    correlation_id=BAR.event_id,
    order_id="o1",
    account="paper-main",
    venue="binance_usdm",
    symbol="BTCUSDT",
    side="buy",
    quantity=2.0,
    price=101.5,
    fee=0.08,
)


def rows_for(*events) -> list[chain.Row]:
    return chain.chain("TICKTAPE", [(i + 1, subjects.for_event(e), encode(e)) for i, e in enumerate(events)])


def test_key_fields_of_a_fill_say_what_was_traded():
    (row,) = rows_for(FILL)
    assert trace.key_fields(row) == {
        "order_id": "o1",
        "account": "paper-main",
        "symbol": "BTCUSDT",
        "side": "buy",
        "quantity": 2.0,
        "price": 101.5,
        "fee": 0.08,
        "mode": "paper",
    }


def test_key_fields_of_a_bar_show_its_open_time_as_utc():
    (row,) = rows_for(BAR)
    fields = trace.key_fields(row)
    assert fields["open_time"] == trace.iso_ns(BAR.open_time) and fields["close"] == BAR.close


def test_key_fields_of_an_unknown_type_are_its_short_scalars():
    row = chain.make_row(
        chain.GENESIS,
        "TICKTAPE",
        1,
        "x.y",
        b'{"type":"x.new","event_id":"e","ts_event":1,"a":1,"b":"s","c":[1],"d":"' + b"z" * 100 + b'"}',
    )
    assert trace.key_fields(row) == {"a": 1, "b": "s"}


def test_iso_ns_is_utc_with_milliseconds():
    assert trace.iso_ns(0) == "1970-01-01T00:00:00.000Z"
    assert trace.iso_ns(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123Z"
    assert trace.iso_ns(None) == "-"


def test_trace_when_the_cause_is_not_archived_then_says_so():
    rows = rows_for(FILL)
    doc = trace.to_json(FILL.event_id, rows, missing="order-1", correlation_id=BAR.event_id)
    assert doc["missing_cause"] == "order-1" and doc["root_cause"] is None
    assert "order-1: cause not in the audit log" in trace.to_text(FILL.event_id, rows, missing="order-1")


def test_trace_text_lists_the_chain_newest_first_then_the_correlation():
    fill, bar = rows_for(FILL, BAR)
    text = trace.to_text(
        FILL.event_id, [fill, bar], correlation_id=BAR.event_id, correlated=[bar, fill], correlated_total=2
    )
    assert text.index(FILL.event_id) < text.index(BAR.event_id)
    assert f"root cause: md.bar.closed {BAR.event_id}" in text
    assert f"correlation {BAR.event_id}: 2 events" in text


def test_audit_config_defaults_and_errors_name_the_key():
    assert load({}) == AuditConfig()
    assert load({"audit": {"checkpoint_every": 10}}).checkpoint_every == 10
    with pytest.raises(cfg.ConfigError, match=r"audit\.checkpoint_evry: unknown key; allowed: .*checkpoint_every"):
        load({"audit": {"checkpoint_evry": 10}})
    with pytest.raises(cfg.ConfigError, match=r"audit\.batch"):
        load({"audit": {"batch": 0}})
