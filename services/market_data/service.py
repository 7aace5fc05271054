"""The market-data shell: one feed per configured venue, one pipelined publisher, periodic
md.status.<venue> health events, clean drain on stop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp

from exchanges.funding import FUNDING_VENUES
from services.market_data.config import MarketDataConfig
from services.market_data.feed import VenueFeed
from services.market_data.funding import FundingPoller
from ticktape import config as cfg
from ticktape import runtime
from ticktape.bus.atomic import AtomicBatchPublisher, Publisher
from ticktape.bus.pipeline import PipelinedPublisher


def load(raw: dict[str, Any]) -> MarketDataConfig:
    return cfg.load_section("market_data", MarketDataConfig, raw)


async def _report(rt: runtime.Runtime, feeds: list[VenueFeed], publisher: Publisher, interval: float) -> None:
    while not rt.stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.stop.wait(), timeout=interval)
        for feed in feeds:
            await publisher.publish(feed.status())
        await publisher.flush()


async def _flusher(rt: runtime.Runtime, feeds: list[VenueFeed], publisher: Publisher) -> None:
    """Settle acks regularly so a failed publish is retried within a fraction of a second; roll-ups
    still waiting for their minute's last 1m bar go out too."""
    while not rt.stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.stop.wait(), timeout=0.2)
        for feed in feeds:
            await feed.publish_later()
        await publisher.flush()


async def serve(rt: runtime.Runtime, config: MarketDataConfig) -> None:
    pipelined = PipelinedPublisher(rt.js, window=config.publish_window, observe=rt.metrics.publish_acked)
    publisher: Publisher = pipelined
    if config.atomic_batches:
        publisher = AtomicBatchPublisher(
            pipelined,
            observe=rt.metrics.publish_acked,
            on_disabled=lambda why: rt.log.warning("atomic batches off: publishing bars one by one", reason=why),
        )
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        feeds = [VenueFeed(rt, config, v, session, publisher) for v in config.venues]
        feed_tasks = [asyncio.create_task(f.run()) for f in feeds]
        if config.funding_poll_s is not None:  # perpetual funding settlements, polled
            pollers = [
                FundingPoller(f, config.funding_poll_s, config.funding_lookback_s)
                for f in feeds
                if f.venue in FUNDING_VENUES
            ]
            feed_tasks += [asyncio.create_task(p.run()) for p in pollers]
        tasks = [
            *feed_tasks,
            asyncio.create_task(_report(rt, feeds, publisher, config.status_interval_s)),
            asyncio.create_task(_flusher(rt, feeds, publisher)),
        ]
        stopper = asyncio.create_task(rt.stop.wait())
        try:
            pending: set[asyncio.Task[Any]] = {*tasks, stopper}
            while not stopper.done():  # until the stop, or the first task that fails
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    task.result()
        finally:
            # Stop: the feeds are cancelled wherever they wait (a REST backfill, a warm-up read, a
            # universe seed, their shards' sockets), since what they had not published yet is
            # backfilled on the next start; the reporter and the flusher end on rt.stop, then
            # the publisher settles what was published.
            rt.stop.set()
            stopper.cancel()
            for task in feed_tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for feed in feeds:  # roll-ups whose 1m bars are published
                await feed.publish_later()
            await publisher.flush()
            if isinstance(publisher, AtomicBatchPublisher):
                await publisher.aclose()


def main() -> None:
    runtime.run("market_data", load, serve)
