"""The archive's storage watch on a real nats-server with ticktape's authorization: a tiny event
log is reported by a StorageAlert on ops.storage.stream (published with the archive's own
credentials) while it still has room, and refuses new events once full; a disk above the
threshold is reported by the periodic watch."""

from __future__ import annotations

import asyncio

import pytest
import structlog
from nats.js.errors import APIError

from services.archive.storage import StorageWatch
from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import StorageAlert
from ticktape.metrics import ServiceMetrics
from ticktape.runtime import LiveClock
from ticktape.testing.bus import stream_events
from ticktape.testing.waiting import eventually

TINY = 64 * 1024
SETTINGS = NatsSettings(max_bytes=TINY, trades_max_bytes=TINY, dlq_max_bytes=TINY, dlq_payloads_max_bytes=1024**2)


def _watch(js, metrics, paths=(), threshold=0.8):
    return StorageWatch(
        js,
        SETTINGS,
        paths,
        threshold=threshold,
        repeat_s=3600.0,
        metrics=metrics,
        log=structlog.get_logger(),
        clock=LiveClock(),
    )


async def test_event_log_near_its_byte_limit_then_alert_published_before_it_is_full(nats_auth):
    admin, archive, market_data = [await nats_auth.connect(r) for r in ("admin", "archive", "market_data")]
    try:
        admin_js = admin.jetstream()
        await ensure_streams(admin_js, SETTINGS)
        metrics = ServiceMetrics("archive")
        watch = _watch(archive.jetstream(), metrics)
        bars = wave_bars(n=2000)
        alerts: list[StorageAlert] = []
        for start in range(0, len(bars), 5):
            await publish_batch(market_data.jetstream(), [(b, {}) for b in bars[start : start + 5]], pipelined=False)
            before = (await admin_js.stream_info(SETTINGS.stream)).state.bytes
            alerts = await watch.check_once()
            if alerts:
                break
            assert before / TINY < 0.8, "crossed the threshold without an alert"
        (alert,) = [a for a in alerts if a.name == SETTINGS.stream]
        assert alert.resource == "stream" and alert.limit_bytes == TINY and 0.8 <= alert.fraction < 1.0
        info = await admin_js.stream_info(SETTINGS.stream)
        assert info.state.bytes < TINY, "the alert came only once the stream was full"
        assert alert in await stream_events(admin_js, SETTINGS.stream, [subjects.ALL_OPS])
        assert metrics.value("ticktape_storage_used_fraction", resource="stream", store=SETTINGS.stream) >= 0.8
        assert await watch.check_once() == [], "repeated before storage_alert_repeat_s"

        # the event log refuses new events once full, loudly, and keeps every recorded one
        first_seq = info.state.first_seq
        with pytest.raises(APIError):
            for more in range(start + 5, len(bars), 5):
                await publish_batch(
                    market_data.jetstream(), [(b, {}) for b in bars[more : more + 5]], pipelined=False, attempts=1
                )
        assert (await admin_js.stream_info(SETTINGS.stream)).state.first_seq == first_seq
    finally:
        for nc in (admin, archive, market_data):
            await nc.close()


async def test_disk_above_threshold_then_periodic_watch_publishes_alert(nats_auth, tmp_path):
    admin, archive = await nats_auth.connect("admin"), await nats_auth.connect("archive")
    stop = asyncio.Event()
    try:
        admin_js = admin.jetstream()
        await ensure_streams(admin_js, SETTINGS)
        metrics = ServiceMetrics("archive")
        # any disk in use is above a threshold of one byte in a billion
        watch = _watch(archive.jetstream(), metrics, paths=[str(tmp_path)], threshold=1e-9)
        task = asyncio.create_task(watch.run(stop, interval_s=0.05))

        async def disk_alerts() -> list[StorageAlert]:
            found = await stream_events(admin_js, SETTINGS.stream, [subjects.storage_alert("disk")])
            return [e for e in found if isinstance(e, StorageAlert) and e.name == str(tmp_path)]

        (alert,) = await eventually(disk_alerts, what="a disk StorageAlert")
        assert 0 < alert.used_bytes <= alert.limit_bytes
        assert metrics.value("ticktape_storage_used_fraction", resource="disk", store=str(tmp_path)) > 0
        assert metrics.value("ticktape_errors", kind="storage_check") == 0
        stop.set()
        await asyncio.wait_for(task, timeout=5)
    finally:
        stop.set()
        await admin.close()
        await archive.close()


async def test_limit_below_what_the_event_log_holds_then_provisioning_refuses_and_keeps_it(nats_url):
    import nats

    from ticktape.config import ConfigError

    nc = await nats.connect(nats_url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, SETTINGS)
        await publish_batch(js, [(b, {}) for b in wave_bars(n=50)], pipelined=False)
        held = (await js.stream_info(SETTINGS.stream)).state
        smaller = NatsSettings(max_bytes=held.bytes // 2, trades_max_bytes=TINY, dlq_max_bytes=TINY)
        with pytest.raises(ConfigError):
            await ensure_streams(js, smaller)
        after = await js.stream_info(SETTINGS.stream)
        assert (after.state.first_seq, after.state.messages, after.config.max_bytes) == (
            held.first_seq,
            held.messages,
            TINY,
        )
    finally:
        await nc.close()
