"""Every endpoint of the API, declared once: its method, path, query Struct, response Struct and
whether it needs the bearer token. The HTTP app (services.api.http) routes from this table and the
OpenAPI document (services.api.openapi) is generated from it."""

from __future__ import annotations

from dataclasses import dataclass

from services.api import queries as q
from services.api import strategies as st
from services.api import views as v


@dataclass(frozen=True)
class Route:
    name: str
    method: str
    path: str
    summary: str
    query: type
    response: type
    statuses: tuple[int, ...] = (200,)
    control: bool = False
    body: type | None = None


ROUTES: tuple[Route, ...] = (
    Route(
        "health",
        "GET",
        "/health",
        "A 0-100 health score and its components: 200 at or above the threshold, else 503",
        q.NoQuery,
        v.Health,
        (200, 503),
    ),
    Route(
        "symbols",
        "GET",
        "/api/v1/symbols",
        "The tradable universe per venue (rank, 24h quote volume, trading rules); as_of for an earlier one",
        q.SymbolsQuery,
        v.Symbols,
    ),
    Route(
        "signals",
        "GET",
        "/api/v1/signals/{symbol}",
        "The latest signal of each strategy for a symbol, with its diagnostics (the EMA kinds: every head's vote)",
        q.SignalsQuery,
        v.Signals,
        (200, 404),
    ),
    Route("positions", "GET", "/api/v1/positions", "Positions per account and symbol", q.PositionsQuery, v.Positions),
    Route(
        "accounts",
        "GET",
        "/api/v1/accounts",
        "Sub-accounts: equity, P&L, exposure, halted",
        q.AccountsQuery,
        v.Accounts,
    ),
    Route("orders", "GET", "/api/v1/orders", "Orders, newest first, filtered and paginated", q.OrdersQuery, v.Orders),
    Route("fills", "GET", "/api/v1/fills", "Fills, newest first, filtered and paginated", q.FillsQuery, v.Fills),
    Route(
        "performance",
        "GET",
        "/api/v1/performance",
        "Per account and per strategy: P&L, fees, funding, win rate, max drawdown, Sharpe (session and window)",
        q.PerformanceQuery,
        v.Performance,
    ),
    Route(
        "websocket_status",
        "GET",
        "/api/v1/websocket/status",
        "Market data's WebSocket shards and bar freshness per venue",
        q.NoQuery,
        v.WebsocketStatus,
    ),
    Route(
        "scheduler_status",
        "GET",
        "/api/v1/scheduler/status",
        "Signal workers, their strategies, signal rate and lag",
        q.NoQuery,
        v.SchedulerStatus,
    ),
    Route("sessions", "GET", "/api/v1/sessions", "Recorded sessions, newest first", q.NoQuery, v.Sessions),
    Route("metrics", "GET", "/api/v1/metrics", "The read model's counters as JSON", q.NoQuery, v.MetricsSummary),
    Route(
        "strategies",
        "GET",
        "/api/v1/strategies",
        "The managed strategies (`ticktape strategies`): entry, status, version, when added and last changed",
        q.NoQuery,
        st.Strategies,
    ),
    Route(
        "strategy_add",
        "POST",
        "/api/v1/strategies",
        "Add a managed strategy: checked like a config entry (400 naming the field), stored and published; "
        "the signal service warms it up and runs it from the next bar",
        q.NoQuery,
        st.StrategyAccepted,
        (202, 409),
        control=True,
        body=st.StrategyRequest,
    ),
    *(
        Route(
            f"strategy_{action}",
            "POST",
            f"/api/v1/strategies/{{id}}/{action}",
            summary,
            q.NoQuery,
            st.StrategyAccepted,
            (202, 404, 409),
            control=True,
        )
        for action, summary in (
            ("pause", "Pause a managed strategy: it stays warm and signals nothing; its last target stays"),
            ("resume", "Resume a paused strategy: the next bar signals its target if it changed"),
            ("retire", "Retire a managed strategy for good"),
        )
    ),
    Route(
        "control_stop",
        "POST",
        "/api/v1/control/stop",
        "Emergency stop (an account, or '*' for every one): risk rejects new signals, execution cancels pending "
        "orders; with flatten, execution also closes every position with reduce-only orders",
        q.NoQuery,
        v.ControlAccepted,
        (202,),
        control=True,
        body=v.StopRequest,
    ),
    Route(
        "control_resume",
        "POST",
        "/api/v1/control/resume",
        "Lift an emergency stop",
        q.NoQuery,
        v.ControlAccepted,
        (202,),
        control=True,
        body=v.ControlRequest,
    ),
)
