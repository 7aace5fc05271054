"""The per-IP budget planner (exchanges.budget): a role's share of a venue's documented limits,
and whether a ranked universe fits it, is trimmed (lowest ranks dropped first) or refused."""

from __future__ import annotations

from types import SimpleNamespace

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchanges import adapter_for
from exchanges.budget import IpBudget, ip_budget, plan_universe, refusal, trimmed_event
from services.symbol_registry.core import BudgetExceeded, within_budget
from ticktape import config as cfg
from ticktape import subjects
from ticktape.config import IpBudgetShares, IpLimitOverrides, VenueSettings, VenuesSettings
from ticktape.events.codec import decode
from ticktape.ratelimit import WindowLimiter
from ticktape.venues import ALL, BINANCE_SPOT, BINANCE_USDM, HYPERLIQUID

COINS = tuple(f"C{i:04d}" for i in range(2000))


def hl(share: float = 0.8, on_exceed: str = "trim", **limits: int) -> IpBudget:
    settings = VenueSettings(
        ip_budget=IpBudgetShares(market_data=share, symbol_registry=0.0, execution=round(1 - share, 6)),
        on_exceed=on_exceed,
        limits=IpLimitOverrides(**limits),
    )
    return ip_budget(HYPERLIQUID, settings, "market_data")


def test_hyperliquid_budget_is_the_share_of_its_documented_per_ip_limits():
    documented = adapter_for(HYPERLIQUID).limits
    b = ip_budget(HYPERLIQUID, VenueSettings(), "market_data")  # default share 0.8
    assert (b.connections, b.subscriptions, b.messages_per_minute, b.connection_attempts) == (
        int(documented.connections_per_ip * 0.8),
        int(documented.subscriptions_per_ip * 0.8),
        int(documented.messages_per_minute_per_ip * 0.8),
        int(documented.connection_attempts * 0.8),
    )
    reserved = ip_budget(HYPERLIQUID, VenueSettings(), "execution")
    assert b.subscriptions + reserved.subscriptions <= documented.subscriptions_per_ip


@pytest.mark.parametrize("venue", [BINANCE_SPOT, BINANCE_USDM])
def test_binance_budget_limits_connection_attempts_and_leaves_undocumented_limits_open(venue):
    b = ip_budget(venue, VenueSettings(), "market_data")
    assert b.connection_attempts == int(adapter_for(venue).limits.connection_attempts * 0.8)
    assert (b.connections, b.subscriptions, b.messages_per_minute) == (None, None, None)
    plan = plan_universe(b, COINS, streams_per_symbol=2, streams_per_connection=100)
    assert plan.decision == "fits" and plan.kept == COINS and plan.connections == 40


def test_universe_within_the_budget_fits_unchanged():
    plan = plan_universe(hl(), COINS[:300], streams_per_symbol=2, streams_per_connection=100)
    assert (plan.decision, plan.kept, plan.dropped, plan.bound) == ("fits", COINS[:300], (), "")
    assert (plan.subscriptions, plan.connections) == (600, 6)


def test_over_the_subscription_budget_keeps_the_best_ranked_and_drops_the_rest_in_rank_order():
    plan = plan_universe(hl(), COINS[:500], streams_per_symbol=2, streams_per_connection=1000)
    assert plan.decision == "trimmed"
    assert plan.kept == COINS[:400] and plan.dropped == COINS[400:500]
    assert (plan.bound, plan.bound_value, plan.subscriptions) == ("subscriptions_per_ip", 800, 800)


def test_over_the_connection_budget_binds_when_connections_are_small():
    plan = plan_universe(hl(connections_per_ip=2), COINS[:50], streams_per_symbol=1, streams_per_connection=10)
    # 2 x 0.8 = 1 connection of 10 streams
    assert (plan.decision, plan.kept, plan.bound, plan.bound_value) == ("trimmed", COINS[:10], "connections_per_ip", 1)
    assert plan.connections == 1


def test_refuse_keeps_nothing_and_the_error_names_the_keys_to_change():
    b = hl(on_exceed="refuse")
    plan = plan_universe(b, COINS[:900], streams_per_symbol=1, streams_per_connection=1000)
    assert (plan.decision, plan.kept, plan.dropped) == ("refused", (), COINS[:900])
    message = refusal(plan, b, "symbol_registry.venues[0].top_n")
    for key in ("venues.hyperliquid.ip_budget.market_data", "symbol_registry.venues[0].top_n", "on_exceed: trim"):
        assert key in message
    assert "900 subscriptions" in message and "budget of 800" in message


def test_a_share_that_leaves_market_data_no_connection_is_a_config_error_naming_the_key():
    with pytest.raises(ValueError, match=r"venues\.hyperliquid\.ip_budget\.market_data"):
        hl(share=0.05)  # 10 connections x 0.05 = 0


def test_shares_over_one_are_a_config_error():
    with pytest.raises(cfg.ConfigError, match="venues.hyperliquid.ip_budget"):
        cfg.load_common({"venues": {"hyperliquid": {"ip_budget": {"market_data": 0.9, "execution": 0.2}}}})
    with pytest.raises(cfg.ConfigError, match="on_exceed"):
        cfg.load_common({"venues": {"hyperliquid": {"on_exceed": "ignore"}}})


def test_every_service_reads_one_declaration_per_venue():
    common = cfg.load_common({"venues": {"hyperliquid": {"limits": {"subscriptions_per_ip": 10}}}})
    assert set(msgspec.structs.asdict(common.venues)) == set(ALL)
    assert ip_budget(HYPERLIQUID, common.venues.of(HYPERLIQUID), "market_data").subscriptions == 8
    assert ip_budget(HYPERLIQUID, common.venues.of(HYPERLIQUID), "symbol_registry").subscriptions == 1
    with pytest.raises(ValueError):
        VenuesSettings().of("kraken")


@given(st.permutations(COINS[:40]), st.integers(1, 3), st.integers(1, 40))
def test_drop_order_is_rank_order_whatever_the_sizes(ranked, per_symbol, limit):
    b = hl(share=1.0, subscriptions_per_ip=limit)
    plan = plan_universe(b, ranked, streams_per_symbol=per_symbol, streams_per_connection=1000)
    fit = limit // per_symbol
    assert plan.kept == tuple(ranked[:fit]) and plan.dropped == tuple(ranked[fit:])
    assert plan.subscriptions <= limit
    assert plan == plan_universe(b, ranked, streams_per_symbol=per_symbol, streams_per_connection=1000)


def test_trimmed_event_derives_its_id_from_the_universe_and_goes_on_the_services_subject():
    plan = plan_universe(hl(subscriptions_per_ip=5), COINS[:6], streams_per_symbol=1, streams_per_connection=10)
    md = trimmed_event(plan, service="market_data", universe_id="u1", ts=7)
    assert md == trimmed_event(plan, service="market_data", universe_id="u1", ts=7)
    assert (md.kept, md.dropped, md.limit, md.limit_value, md.causation_id) == (
        COINS[:4],
        COINS[4:6],
        "subscriptions_per_ip",
        4,
        "u1",
    )
    assert subjects.for_event(md) == "md.trimmed.hyperliquid"
    reg = trimmed_event(plan, service="symbol_registry", universe_id="u1", ts=7)
    assert subjects.for_event(reg) == "symbols.trimmed.hyperliquid" and reg.event_id != md.event_id
    assert subjects.decode_on("md.trimmed.hyperliquid", msgspec.json.encode(md)) == md
    with pytest.raises(subjects.SubjectMismatch):
        subjects.expect("md.trimmed.hyperliquid", reg)
    assert decode(msgspec.json.encode(reg)) == reg


def _hl_body(volumes: dict[str, float]) -> bytes:
    meta = {"universe": [{"name": name} for name in volumes]}
    ctxs = [{"dayNtlVlm": str(v)} for v in volumes.values()]
    return msgspec.json.encode([meta, ctxs])


def test_registry_publishes_the_top_n_that_fits_with_the_trimmed_event():
    body = _hl_body({"BTC": 900.0, "ETH": 800.0, "SOL": 700.0, "DOGE": 600.0, "XRP": 500.0})
    b = hl(share=1.0, subscriptions_per_ip=3)
    universe, trimmed = within_budget(
        HYPERLIQUID, [body], quote_asset="USDC", top_n=5, ip_budget=b, date_ms=1_700_000_000_000
    )
    assert universe.symbols == ("BTC", "ETH", "SOL") and universe.top_n == 3
    assert trimmed is not None
    assert (trimmed.wanted, trimmed.dropped, trimmed.service) == (
        ("BTC", "ETH", "SOL", "DOGE", "XRP"),
        ("DOGE", "XRP"),
        "symbol_registry",
    )
    assert trimmed.causation_id == universe.event_id
    fits, none = within_budget(HYPERLIQUID, [body], quote_asset="USDC", top_n=3, ip_budget=b, date_ms=1_700_000_000_000)
    assert none is None and fits == universe
    with pytest.raises(BudgetExceeded, match="top_n"):
        within_budget(
            HYPERLIQUID,
            [body],
            quote_asset="USDC",
            top_n=5,
            ip_budget=hl(share=1.0, on_exceed="refuse", subscriptions_per_ip=3),
            date_ms=1_700_000_000_000,
        )


def test_registry_start_with_refuse_and_top_n_over_the_budget_exits_78():
    import structlog

    from services.symbol_registry.config import SymbolRegistryConfig, VenueUniverseConfig
    from services.symbol_registry.service import check_budgets

    venues = VenuesSettings(hyperliquid=VenueSettings(on_exceed="refuse"))
    rt = SimpleNamespace(common=cfg.CommonSettings(venues=venues), log=structlog.get_logger())
    config = SymbolRegistryConfig(venues=(VenueUniverseConfig(venue=HYPERLIQUID, top_n=900),))
    with pytest.raises(SystemExit) as exited:
        check_budgets(rt, config)
    assert exited.value.code == cfg.EXIT_CONFIG
    check_budgets(rt, SymbolRegistryConfig(venues=(VenueUniverseConfig(venue=HYPERLIQUID, top_n=800),)))


def test_request_weights_are_the_documented_ones():
    spot, usdm, hl = adapter_for(BINANCE_SPOT), adapter_for(BINANCE_USDM), adapter_for(HYPERLIQUID)
    url = "https://venue.example"
    assert [spot.request_weight(r) for r in spot.universe_requests(url)] == [20, 80]  # exchangeInfo, all tickers
    assert [usdm.request_weight(r) for r in usdm.universe_requests(url)] == [1, 40]
    assert [hl.request_weight(r) for r in hl.universe_requests(url)] == [20]
    time_request = spot.server_time_request(url)
    assert time_request is not None and spot.request_weight(time_request) == 1

    def klines(adapter, limit: int, start_ms: int | None = None) -> int:
        request = adapter.backfill_request(url, "BTC", "1m", start_ms=start_ms, limit=limit, now_ms=1_700_000_000_000)
        return adapter.request_weight(request)

    assert [klines(usdm, n) for n in (99, 100, 499, 500, 1000, 1500)] == [1, 2, 2, 5, 5, 10]
    assert klines(spot, 1000) == 2
    # candleSnapshot: 20, and one more per 60 candles its time range can return
    assert klines(hl, 1200) == 20 + 1201 // 60
    assert klines(hl, 1000, start_ms=1_700_000_000_000 - 5 * 60_000) == 20


async def test_window_limiter_never_lets_more_than_the_limit_through_in_any_window():
    now = [0.0]
    granted: list[tuple[float, int]] = []

    async def sleep(seconds: float) -> None:
        now[0] += seconds

    limiter = WindowLimiter(10, 60.0, clock=lambda: now[0], sleep=sleep)
    for units in (4, 4, 3, 1, 9, 2, 10, 1, 5):
        await limiter.acquire(units)
        granted.append((now[0], units))
        now[0] += 7.0
    for start, _ in granted:
        assert sum(u for t, u in granted if start <= t < start + 60.0) <= 10
    assert limiter.acquired == sum(u for _, u in granted)
    assert granted[2][0] >= 60.0  # 4 + 4 + 3 > 10: the third waited for the first to leave the window
    unlimited = WindowLimiter(None, 60.0, clock=lambda: now[0], sleep=sleep)
    before = now[0]
    for _ in range(100):
        await unlimited.acquire(50)
    assert now[0] == before
