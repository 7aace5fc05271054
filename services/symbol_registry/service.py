"""The symbol-registry shell: for every configured venue, on start and every refresh interval,
make the venue adapter's universe requests, select the universe (pure core), record it in
PostgreSQL (current + history), then publish it on symbols.universe.<venue>.

Each venue runs on its own task and schedule: one that fails (HTTP error, timeout, bad payload) is
counted (errors{kind="refresh"}), logged and retried with exponential backoff, while the others
keep their daily refresh. A database error stops the service (the supervisor restarts it)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import psycopg
from opentelemetry import trace

from exchanges import HttpRequest, adapter_for, budget
from services.symbol_registry import store
from services.symbol_registry.config import SymbolRegistryConfig, VenueUniverseConfig
from services.symbol_registry.core import BudgetExceeded, http_date_ms, top_n_plan, within_budget
from ticktape import config as cfg
from ticktape import runtime, telemetry
from ticktape.bus.publisher import publish_batch
from ticktape.clock import NS_PER_MS
from ticktape.events import UniverseUpdated
from ticktape.ratelimit import WindowLimiter

RETRY_INITIAL_S = 1.0
RETRY_MAX_S = 30.0
HTTP_TIMEOUT_S = 30.0
# A venue failing this way is retried; anything else (PostgreSQL, a bug) stops the service.
VENUE_FAILURES = (aiohttp.ClientError, asyncio.TimeoutError, ValueError)


def load(raw: dict[str, Any]) -> SymbolRegistryConfig:
    return cfg.load_section("symbol_registry", SymbolRegistryConfig, raw)


def rest_base(venue: VenueUniverseConfig, venue_sim: str | None) -> str:
    """The venue's REST base: its rest_url, or `<venue_sim>/<venue>` under the simulator."""
    if venue_sim:
        return f"{venue_sim.rstrip('/')}/{venue.venue}"
    return venue.rest_url.rstrip("/")


@dataclass
class Db:
    """The registry's one PostgreSQL connection; the venue tasks take turns on it."""

    conn: psycopg.AsyncConnection[Any]
    lock: asyncio.Lock


async def fetch(
    session: aiohttp.ClientSession,
    requests: list[HttpRequest],
    limiter: WindowLimiter | None = None,
    weight: Callable[[HttpRequest], int] = lambda request: 1,
) -> tuple[list[bytes], int | None]:
    """The bodies of the requests, in order, and the newest Date header among the responses (ms).
    Each request first takes its weight from limiter (the registry's REST weight budget)."""
    bodies: list[bytes] = []
    date_ms: int | None = None
    for req in requests:
        if limiter is not None:
            await limiter.acquire(weight(req))
        headers = {"Content-Type": "application/json"} if req.body is not None else None
        async with session.request(req.method, req.url, data=req.body, headers=headers) as resp:
            resp.raise_for_status()
            bodies.append(await resp.read())
            when = http_date_ms(resp.headers.get(aiohttp.hdrs.DATE))
            if when is not None:
                date_ms = when if date_ms is None else max(date_ms, when)
    return bodies, date_ms


async def refresh(
    rt: runtime.Runtime,
    venue: VenueUniverseConfig,
    session: aiohttp.ClientSession,
    db: Db,
    rest_url: str,
    limiter: WindowLimiter | None = None,
) -> UniverseUpdated:
    """One venue's refresh: fetch, select, store, publish. Raises a VENUE_FAILURES error when the
    venue does not answer or its payload is bad (nothing is stored or published then)."""
    adapter = adapter_for(venue.venue)
    bodies, date_ms = await fetch(session, adapter.universe_requests(rest_url), limiter, adapter.request_weight)
    if date_ms is None:
        # RFC 9110 makes origin servers send Date; without one, the time we received it at is
        # the best as_of there is (an input to the core, like the header would have been).
        date_ms = rt.clock.now_ns() // NS_PER_MS
    async with db.lock:
        previous = await store.latest_universe(db.conn, venue.venue)
        event, trimmed = within_budget(
            venue.venue,
            bodies,
            quote_asset=venue.quote_asset,
            top_n=venue.top_n,
            ip_budget=md_budget(rt, venue.venue),
            date_ms=date_ms,
            previous=previous.symbols if previous else None,
        )
        await store.save_universe(db.conn, event)
    with trace.get_tracer("ticktape.symbol_registry").start_as_current_span(
        "symbol_registry publish symbols.universe.updated",
        kind=trace.SpanKind.PRODUCER,
        attributes={"ticktape.event_id": event.event_id, "ticktape.venue": event.venue},
    ):
        headers = telemetry.inject({})
    await publish_batch(rt.js, [(event, headers)] + ([(trimmed, {})] if trimmed else []))
    rt.metrics.published(2 if trimmed else 1)
    if trimmed:
        rt.metrics.universe_trimmed(event.venue, len(trimmed.dropped))
        rt.log.warning(
            "universe trimmed to market data's per-IP budget",
            venue=event.venue,
            wanted=len(trimmed.wanted),
            kept=len(trimmed.kept),
            limit=trimmed.limit,
            limit_value=trimmed.limit_value,
        )
    rt.log.info(
        "universe published",
        venue=event.venue,
        symbols=len(event.symbols),
        added=len(event.added),
        removed=len(event.removed),
        event_id=event.event_id,
    )
    return event


async def run_venue(
    rt: runtime.Runtime, venue: VenueUniverseConfig, interval_s: float, session: aiohttp.ClientSession, db: Db
) -> None:
    """Refresh one venue now and every interval_s until rt.stop; on failure retry after 1 s,
    doubling up to RETRY_MAX_S, then go back to the interval after a success."""
    rest_url = rest_base(venue, rt.common.venue_sim)
    own = budget.ip_budget(venue.venue, rt.common.venues.of(venue.venue), "symbol_registry")
    limiter = WindowLimiter(own.rest_weight_per_minute, 60.0)  # the registry's share of REST weight
    delay = RETRY_INITIAL_S
    while not rt.stop.is_set():
        wait = interval_s
        try:
            await refresh(rt, venue, session, db, rest_url, limiter)
            delay = RETRY_INITIAL_S
        except BudgetExceeded as exc:  # venues.<venue>.on_exceed: refuse
            rt.log.error(str(cfg.ConfigError(str(exc))))
            raise SystemExit(cfg.EXIT_CONFIG) from None
        except VENUE_FAILURES as exc:
            rt.metrics.error("refresh")
            rt.log.warning(
                "universe refresh failed; retrying", venue=venue.venue, url=rest_url, error=repr(exc), retry_in_s=delay
            )
            wait, delay = delay, min(delay * 2, RETRY_MAX_S)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(rt.stop.wait(), timeout=wait)


def md_budget(rt: runtime.Runtime, venue: str) -> budget.IpBudget:
    """Market data's share of the venue's per-IP limits, from the shared `venues` settings: the
    registry's universe is what market data will subscribe."""
    return budget.ip_budget(venue, rt.common.venues.of(venue), "market_data")


def check_budgets(rt: runtime.Runtime, config: SymbolRegistryConfig) -> None:
    """At start: every venue's top_n against market data's budget. Over it, with on_exceed
    refuse (or a budget that is itself wrong), a config error: exit 78; with trim, a warning (each
    refresh publishes the trimmed universe and a UniverseTrimmed)."""
    for i, venue in enumerate(config.venues):
        try:
            budget.ip_budget(venue.venue, rt.common.venues.of(venue.venue), "symbol_registry")  # its own REST share
            plan = top_n_plan(md_budget(rt, venue.venue), [str(n) for n in range(venue.top_n)])
            if plan.decision == "refused":
                raise BudgetExceeded(
                    budget.refusal(plan, md_budget(rt, venue.venue), f"symbol_registry.venues[{i}].top_n")
                )
        except (BudgetExceeded, ValueError) as exc:
            rt.log.error(str(cfg.ConfigError(str(exc))))
            raise SystemExit(cfg.EXIT_CONFIG) from None
        if plan.decision == "trimmed":
            rt.log.warning(
                "top_n is over market data's per-IP budget: universes will be trimmed",
                venue=venue.venue,
                top_n=venue.top_n,
                max_symbols=plan.max_symbols,
                limit=plan.bound,
            )


async def serve(rt: runtime.Runtime, config: SymbolRegistryConfig) -> None:
    check_budgets(rt, config)
    dsn = runtime.require_pg_dsn(rt)
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        applied = await store.apply_migrations(conn)
        if applied:
            rt.log.info("migrations applied", files=applied)
        db = Db(conn, asyncio.Lock())
        timeout = aiohttp.ClientTimeout(total=HTTP_TIMEOUT_S)
        async with aiohttp.ClientSession(timeout=timeout) as session, asyncio.TaskGroup() as tasks:
            for venue in config.venues:
                tasks.create_task(
                    run_venue(rt, venue, config.refresh_interval_s, session, db), name=f"symbol_registry:{venue.venue}"
                )


def main() -> None:
    runtime.run("symbol_registry", load, serve)
