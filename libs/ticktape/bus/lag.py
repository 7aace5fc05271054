"""A durable consumer's lag, polled for the metrics: every few seconds its consumer info's
num_pending (matching messages not yet delivered) and num_ack_pending (delivered, not yet acked)
become the gauges ticktape_consumer_lag and ticktape_consumer_ack_pending. Polled rather than
computed per message: one request every `interval` seconds, nothing on the hot path."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import nats.errors
from nats.js import JetStreamContext

from ticktape.metrics import ServiceMetrics


async def poll_lag(
    js: JetStreamContext,
    stream: str,
    durable: str,
    metrics: ServiceMetrics,
    stop: asyncio.Event,
    log: Any = None,
    interval: float = 5.0,
) -> None:
    """Export the durable's lag every `interval` seconds until `stop` is set. A failed poll (an
    outage, a durable not created yet) is skipped: the next one tries again."""
    while not stop.is_set():
        try:
            info = await js.consumer_info(stream, durable)
            metrics.consumer_lag(stream, durable, info.num_pending or 0, info.num_ack_pending or 0)
        except (nats.errors.Error, TimeoutError) as exc:
            if log is not None:
                log.debug("consumer lag poll failed", stream=stream, durable=durable, error=repr(exc))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)
