"""Typed settings of the risk service: the sub-accounts, their sizing and their limits, and the
limits over all of them."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import msgspec

from ticktape import accounts as accts

# An account name becomes a subject token (risk.approved.<account>.<symbol>), so no dots;
# "*" is reserved for "every account" in EmergencyStop/ResumeTrading.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Positive = Annotated[float, msgspec.Meta(gt=0)]
LossFraction = Annotated[float, msgspec.Meta(gt=0, lt=1)]


class AccountConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Risk's view of one account (built from the top-level `accounts:` section by from_raw; not
    a YAML key of its own): target notional = fraction x equity per signal, within the limits.

    `strategies` lists the strategy names whose signals this account trades ("*" = all; then
    the latest signal for a symbol sets its target, whichever strategy sent it). The loss
    limits, protective exits and cooldown are ticktape.accounts.AccountLimits'; None = off."""

    name: Name = "paper-main"
    initial_equity: Positive = 10_000.0
    fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.1
    max_notional_per_symbol: Positive = 5_000.0
    max_gross_exposure: Positive = 20_000.0
    strategies: tuple[str, ...] = ("ensemble9",)
    allow_short: bool = True
    max_drawdown: LossFraction | None = None
    max_daily_loss: LossFraction | None = None
    on_breach: Literal["halt", "flatten"] = "halt"
    max_order_notional: Positive | None = None
    max_open_positions: Annotated[int, msgspec.Meta(ge=1)] | None = None
    stop_loss: LossFraction | None = None
    take_profit: Annotated[float, msgspec.Meta(gt=0, le=100)] | None = None
    cooldown_minutes: Annotated[float, msgspec.Meta(ge=0)] = 0.0
    max_margin_use: Annotated[float, msgspec.Meta(gt=0, le=1)] | None = None
    max_leverage: Positive = 10.0  # margin = notional / max_leverage (for max_margin_use)

    def __post_init__(self) -> None:
        if not self.strategies:
            raise ValueError(f"strategies must list strategy names or '*' (account {self.name})")
        if self.max_notional_per_symbol > self.max_gross_exposure:
            raise ValueError(
                "max_notional_per_symbol must be <= max_gross_exposure "
                f"(got {self.max_notional_per_symbol} > {self.max_gross_exposure})"
            )

    @classmethod
    def of(cls, account: accts.Account) -> AccountConfig:
        lim = account.limits
        return cls(
            name=account.name,
            initial_equity=account.initial_equity,
            fraction=lim.fraction,
            max_notional_per_symbol=lim.max_notional_per_symbol,
            max_gross_exposure=lim.max_gross_exposure,
            strategies=account.strategies,
            allow_short=lim.allow_short,
            max_drawdown=lim.max_drawdown,
            max_daily_loss=lim.max_daily_loss,
            on_breach=lim.on_breach,
            max_order_notional=lim.max_order_notional,
            max_open_positions=lim.max_open_positions,
            stop_loss=lim.stop_loss,
            take_profit=lim.take_profit,
            cooldown_minutes=lim.cooldown_minutes,
            max_margin_use=lim.max_margin_use,
            max_leverage=lim.max_leverage,
        )

    def trades(self, strategy: str) -> bool:
        """Whether this account subscribes to `strategy`'s signals."""
        return "*" in self.strategies or strategy in self.strategies


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`accounts`: the sub-accounts risk sizes signals for, decided in this order: always the
    top-level `accounts:` section (from_raw), which execution reads too.

    Global limits, over the sum of every account's equity (None = off): max_drawdown below the
    sum's peak, max_daily_loss below the sum the UTC day opened with; a breach halts every
    account (one RiskHalted each), on_breach "flatten" also closes their positions.

    `reduce_while_halted`: while an operator's emergency stop halts an account, a signal's order
    that reduces a position still passes (cut to what reduces it, reduce-only), so a halted
    account can still be closed. Risk's own halts always let such orders pass. On by default;
    recordings made before the key existed refused them and replay that way (LEGACY_DEFAULTS,
    ticktape.config.recorded_as_run). Risk rebuilds its state from the whole log under its
    current configuration: where the log holds a reducing signal refused under an operator's stop
    by a run with it off, the rebuild approves a close that was never sent, and forgets it when
    execution answers a later order (RiskCore._answered; README "Risk that stops the bleeding")."""

    # Recordings whose risk section lacks a key ran with this value (see SignalConfig's).
    LEGACY_DEFAULTS: ClassVar[dict[str, Any]] = {"reduce_while_halted": False}

    accounts: tuple[AccountConfig, ...] = (AccountConfig(),)
    max_drawdown: LossFraction | None = None
    max_daily_loss: LossFraction | None = None
    on_breach: Literal["halt", "flatten"] = "halt"
    reduce_while_halted: bool = True

    def __post_init__(self) -> None:
        if not self.accounts:
            raise ValueError("accounts must not be empty")
        names = [a.name for a in self.accounts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"account names must be unique (duplicated: {', '.join(dupes)})")
