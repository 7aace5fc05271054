"""The symbol-registry shell: on start and every refresh interval, fetch the venue's
exchangeInfo and 24h tickers, select the universe (pure core), record it in PostgreSQL
(current + history), then publish it on symbols.universe.<venue>."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import psycopg
from opentelemetry import trace

from ticktape import config as cfg
from ticktape import runtime, telemetry
from ticktape.bus.publisher import publish_batch
from ticktape.events import UniverseUpdated

from services.symbol_registry import store
from services.symbol_registry.config import SymbolRegistryConfig
from services.symbol_registry.core import exchange_info_url, select_universe, tickers_24h_url

RETRY_MAX_S = 30.0


def load(raw: dict[str, Any]) -> SymbolRegistryConfig:
    return cfg.load_section("symbol_registry", SymbolRegistryConfig, raw)


async def fetch_json(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        resp.raise_for_status()
        return await resp.json(content_type=None)


async def refresh(rt: runtime.Runtime, config: SymbolRegistryConfig, session: aiohttp.ClientSession,
                  conn: psycopg.AsyncConnection[Any], rest_url: str) -> UniverseUpdated:
    info = await fetch_json(session, exchange_info_url(rest_url))
    tickers = await fetch_json(session, tickers_24h_url(rest_url))
    previous = await store.latest_universe(conn, config.venue)
    event = select_universe(info, tickers, venue=config.venue, quote_asset=config.quote_asset,
                            top_n=config.top_n, previous=previous.symbols if previous else None)
    await store.save_universe(conn, event)
    with trace.get_tracer("ticktape.symbol_registry").start_as_current_span(
        "symbol_registry universe", kind=trace.SpanKind.PRODUCER,
        attributes={"ticktape.event_id": event.event_id},
    ):
        headers = telemetry.inject({})
    await publish_batch(rt.js, [(event, headers)])
    rt.metrics.published()
    rt.log.info("universe published", venue=event.venue, symbols=len(event.symbols),
                added=len(event.added), removed=len(event.removed), event_id=event.event_id)
    return event


async def serve(rt: runtime.Runtime, config: SymbolRegistryConfig) -> None:
    dsn = rt.common.postgres.dsn
    if not dsn:
        rt.log.error(str(cfg.ConfigError("postgres.dsn is not set: run under `ticktape up` (which "
                                         "starts an embedded PostgreSQL) or set TICKTAPE_PG_DSN")))
        raise SystemExit(cfg.EXIT_CONFIG)
    rest_url = (rt.common.venue_sim or config.rest_url).rstrip("/")
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        applied = await store.apply_migrations(conn)
        if applied:
            rt.log.info("migrations applied", files=applied)
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            delay = 1.0
            while not rt.stop.is_set():
                wait = config.refresh_interval_s
                try:
                    await refresh(rt, config, session, conn, rest_url)
                    delay = 1.0
                except (aiohttp.ClientError, asyncio.TimeoutError, ValueError) as exc:
                    rt.metrics.error("refresh")
                    rt.log.warning("universe refresh failed; retrying", error=repr(exc), retry_in_s=delay)
                    wait, delay = delay, min(delay * 2, RETRY_MAX_S)
                try:
                    await asyncio.wait_for(rt.stop.wait(), timeout=wait)
                except asyncio.TimeoutError:
                    pass


def main() -> None:
    runtime.run("symbol_registry", load, serve)
