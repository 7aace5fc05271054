"""The consuming shell on a real nats-server: order, dead letters, restarts without duplicates."""

from __future__ import annotations

import base64

import nats
import pytest

from services.signal.config import SignalConfig
from services.signal.core import SignalCore
from services.signal.service import serve as serve_signal
from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import DeadLettered, SignalGenerated
from ticktape.events.codec import encode
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events
from ticktape.testing.services import common_settings, running_service

STREAM = "TICKTAPE"


@pytest.fixture
async def js(nats_client):
    js = nats_client.jetstream()
    await ensure_streams(js, NatsSettings())
    return js


def reference_signals(bars) -> list[SignalGenerated]:
    core = SignalCore(SignalConfig())
    return [out for bar in bars for out in core.handle(bar)]


async def signals_on_bus(js) -> list[SignalGenerated]:
    return [e for e in await stream_events(js, STREAM, [subjects.ALL_SIGNALS]) if isinstance(e, SignalGenerated)]


async def test_signal_service_when_bars_arrive_then_publishes_what_the_core_decides(nats_url, js):
    bars = wave_bars(n=100)
    expected = reference_signals(bars)
    assert expected, "the wave must produce crossovers"
    await publish_batch(js, [(b, {}) for b in bars])
    async with running_service("signal", serve_signal, SignalConfig(), common_settings(nats_url)):
        got = await eventually(
            lambda: _when_len(signals_on_bus(js), len(expected)), timeout=20, what="all expected signals"
        )
    assert [encode(s) for s in got] == [encode(s) for s in expected]


async def _when_len(coro, n):
    items = await coro
    return items if len(items) >= n else None


async def test_restart_mid_stream_then_state_is_rebuilt_and_nothing_is_duplicated(nats_url, js):
    bars = wave_bars(n=160)
    expected = reference_signals(bars)
    await publish_batch(js, [(b, {}) for b in bars[:70]])
    common = common_settings(nats_url)
    async with running_service("signal", serve_signal, SignalConfig(), common):
        first = [s for s in expected if s.bar_open_time <= bars[69].open_time]
        await eventually(lambda: _when_len(signals_on_bus(js), len(first)), timeout=20, what="first half")
    # the service is down while the rest of the bars arrive
    await publish_batch(js, [(b, {}) for b in bars[70:]])
    async with running_service("signal", serve_signal, SignalConfig(), common):
        got = await eventually(
            lambda: _when_len(signals_on_bus(js), len(expected)), timeout=20, what="all signals after restart"
        )
    assert [encode(s) for s in got] == [encode(s) for s in expected]
    assert len({s.event_id for s in got}) == len(got)


async def test_republishing_the_same_outputs_then_jetstream_drops_duplicates(js):
    bars = wave_bars(n=3)
    first = await publish_batch(js, [(b, {}) for b in bars])
    again = await publish_batch(js, [(b, {}) for b in bars])
    assert not any(a.duplicate for a in first)
    assert all(a.duplicate for a in again)
    assert (await js.stream_info(STREAM)).state.messages == 3


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"{not json", "undecodable"),
        (b'{"type":"md.bar.closed","event_id":"x"}', "undecodable"),
        (b'{"type":"md.bar.v9","event_id":"x","ts_event":1,"ts_init":1}', "unknown_type"),
    ],
)
async def test_bad_bus_message_then_dead_lettered_counted_and_processing_continues(nats_url, js, payload, reason):
    bars = wave_bars(n=100)
    subject = subjects.bar("binance_usdm", "BTCUSDT", "1m")
    await publish_batch(js, [(b, {}) for b in bars[:50]])
    await js.publish(subject, payload)
    await publish_batch(js, [(b, {}) for b in bars[50:]])
    expected = reference_signals(bars)
    async with running_service("signal", serve_signal, SignalConfig(), common_settings(nats_url)) as rt:
        await eventually(
            lambda: _when_len(signals_on_bus(js), len(expected)), timeout=20, what="signals after the poison message"
        )
        letters = await eventually(
            lambda: _when_len(stream_events(js, "TICKTAPE_DLQ", [subjects.dead_letter("signal")]), 1),
            timeout=10,
            what="dead letter",
        )
        assert rt.metrics.value("ticktape_rejected", reason=reason) == 1
        assert rt.metrics.value("ticktape_dead_lettered") == 1
    letter = letters[0]
    assert isinstance(letter, DeadLettered)
    assert base64.b64decode(letter.payload_b64) == payload  # nothing lost
    assert letter.source == subject and letter.stream_seq == 51


async def test_plain_nats_client_reads_dead_letters_as_json(nats_url, js):
    import json

    await js.publish(subjects.bar("binance_usdm", "ETHUSDT", "1m"), b"\xff\xfe")
    async with running_service("signal", serve_signal, SignalConfig(), common_settings(nats_url)):
        nc = await nats.connect(nats_url)
        try:
            sub = await nc.jetstream().subscribe("dlq.>", ordered_consumer=True)
            msg = await sub.next_msg(timeout=10)
            body = json.loads(msg.data)
        finally:
            await nc.close()
    assert body["type"] == "dlq.dead_lettered" and body["service"] == "signal"


async def test_bar_with_negative_price_then_rejected_as_invalid_input_and_strategies_keep_running(nats_url, js):
    import msgspec

    bars = wave_bars(n=100)
    bad = msgspec.structs.replace(bars[60], close=-1.0, event_id="bad-bar")
    await publish_batch(js, [(b, {}) for b in bars[:60]] + [(bad, {})] + [(b, {}) for b in bars[60:]])
    expected = reference_signals(bars)
    async with running_service("signal", serve_signal, SignalConfig(), common_settings(nats_url)) as rt:
        await eventually(
            lambda: _when_len(signals_on_bus(js), len(expected)), timeout=20, what="signals after the bad bar"
        )
        await eventually(
            lambda: rt.metrics.value("ticktape_rejected", reason="invalid_input") == 1, what="invalid input counted"
        )
        assert rt.metrics.value("ticktape_errors", kind="strategy_quarantined") == 0
    letters = await stream_events(js, "TICKTAPE_DLQ", [subjects.dead_letter("signal")])
    assert [letter.stream_seq for letter in letters] == [61]
