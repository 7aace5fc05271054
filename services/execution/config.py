"""Typed settings of the execution service: paper fill model costs, the sub-accounts, and for live
accounts the venue gateway's endpoints and limits."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from ticktape import accounts as accts
from ticktape.clock import TIMEFRAME_NS

# An account name becomes a subject token (orders.<account>.<symbol>); "*" is reserved.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Bps = Annotated[float, msgspec.Meta(ge=0, lt=10_000)]
# The venues a live account can trade at (the gateway has a client for each).
LIVE_VENUES: tuple[str, ...] = ("binance_usdm", "hyperliquid")


class AccountConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Execution's view of one account and the cash it starts with (built from the top-level
    `accounts:` section by from_raw, the list risk reads too; not a YAML key of its own).

    `max_leverage` is execution's own limit, behind risk's: an approval that would raise the
    account's gross exposure (positions and pending orders at their last prices, this order at
    its reference price) above max_leverage x equity is canceled ("max_leverage"); an order
    that lowers gross exposure always passes. Risk sizes at fraction x equity within its own
    exposure limits, so only a forged or broken approval reaches it; the config check refuses a
    max_leverage x initial_equity below risk's max_gross_exposure (ticktape.accounts).

    `mode` "live" (only when the service is started with live trading switched on,
    services.execution.loading): the core does not paper-fill the account's orders, the venue
    gateway sends them to `venue` with the credentials the environment variables named here hold
    (never the values), and the venue's answers drive fills and positions. initial_equity should
    be what the venue account holds at the start (its equity is computed as for paper)."""

    name: Name = "paper-main"
    initial_equity: Annotated[float, msgspec.Meta(gt=0)] = 10_000.0
    max_leverage: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 10.0
    mode: Literal["paper", "live"] = "paper"
    venue: str | None = None
    network: Literal["mainnet", "testnet"] | None = None
    api_key_env: str | None = None
    api_secret_env: str | None = None
    wallet_key_env: str | None = None
    account_address: str | None = None
    vault_address: str | None = None
    reconcile: accts.ReconcilePolicy = accts.ReconcilePolicy()

    @classmethod
    def of(cls, account: accts.Account) -> AccountConfig:
        if account.mode != "live":  # a paper account's view is exactly what it always was
            return cls(
                name=account.name, initial_equity=account.initial_equity, max_leverage=account.limits.max_leverage
            )
        return cls(
            name=account.name,
            initial_equity=account.initial_equity,
            max_leverage=account.limits.max_leverage,
            mode="live",
            venue=account.venue,
            network=account.network,
            api_key_env=account.api_key_env,
            api_secret_env=account.api_secret_env,
            wallet_key_env=account.wallet_key_env,
            account_address=account.account_address,
            vault_address=account.vault_address,
            reconcile=account.reconcile,
        )


class LiveSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The live accounts' venue gateway (services/execution/gateway.py); unused without one. Where
    it sends orders is the account's endpoint (ticktape.live.endpoint: its network, or the venue
    simulator's under venue_sim), the one `ticktape up --live` shows before it starts.

    max_order_age_s: an order whose OrderSubmitted was stored longer ago than this and never
    reached the venue (an outage, a restart) is not sent any more: the venue is asked by client
    order id and, when it does not have it, the order is refused "not_sent". recv_window_ms:
    Binance's recvWindow. slippage_bps: how far through the reference price a Hyperliquid market
    order (an aggressive IOC limit) may fill. fill_wait_s: after an answer that says some of an
    order filled, how long its fills may take on the user stream before the gateway asks for
    them by REST. reconcile_every_s: how often each live account's open orders, positions and
    balance are compared with the log again (services.execution.reconcile), preferably at a moment
    when none of its orders is in flight (waiting at most one more period); it is compared once at
    start before it may trade.
    request_timeout_s: how long a request to the venue may go unanswered before its outcome is
    unknown (an order is then looked up by client order id, never simply sent again)."""

    max_order_age_s: Annotated[float, msgspec.Meta(gt=0)] = 60.0
    recv_window_ms: Annotated[int, msgspec.Meta(ge=1, le=60_000)] = 5_000
    slippage_bps: Annotated[float, msgspec.Meta(gt=0, le=5_000)] = 500.0
    fill_wait_s: Annotated[float, msgspec.Meta(gt=0, le=600)] = 5.0
    reconcile_every_s: Annotated[float, msgspec.Meta(ge=1, le=86_400)] = 60.0
    request_timeout_s: Annotated[float, msgspec.Meta(gt=0, le=120)] = 10.0


class ExecutionConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`mode`: "paper", the mode of every paper account's orders: they fill at the open of the
    next `timeframe` bar, moved by `slippage_bps` against us, paying `taker_fee_bps`. Accounts
    whose own mode is live trade at their venue through the gateway (`live`).

    LIVE_EXECUTION declares that this service can trade live accounts (ticktape.config reads it:
    without it, live accounts never load and `ticktape up --live` stops after its checks)."""

    LIVE_EXECUTION: ClassVar[bool] = True

    mode: Literal["paper"] = "paper"
    timeframe: str = "1m"
    slippage_bps: Bps = 2.0
    taker_fee_bps: Bps = 4.0
    accounts: tuple[AccountConfig, ...] = (AccountConfig(),)
    live: LiveSettings = LiveSettings()

    def __post_init__(self) -> None:
        if self.timeframe not in TIMEFRAME_NS:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAME_NS)} (got {self.timeframe!r})")
        if not self.accounts:
            raise ValueError("accounts must not be empty")
        names = [a.name for a in self.accounts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"account names must be unique (duplicated: {', '.join(dupes)})")
        for a in self.accounts:
            if a.mode == "live" and a.venue not in LIVE_VENUES:
                raise ValueError(
                    f"account {a.name}: a live account needs venue: one of {', '.join(LIVE_VENUES)} (got {a.venue!r})"
                )

    def live_accounts(self) -> tuple[AccountConfig, ...]:
        return tuple(a for a in self.accounts if a.mode == "live")
