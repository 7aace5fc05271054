"""Typed settings of the risk service: the sub-accounts, their sizing and their limits."""

from __future__ import annotations

from typing import Annotated

import msgspec

from ticktape import accounts as accts

# An account name becomes a subject token (risk.approved.<account>.<symbol>), so no dots;
# "*" is reserved for "every account" in EmergencyStop/ResumeTrading.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Positive = Annotated[float, msgspec.Meta(gt=0)]


class AccountConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Risk's view of one account (built from the top-level `accounts:` section by from_raw; not
    a YAML key of its own): target notional = fraction x equity per signal, within the limits.

    `strategies` lists the strategy names whose signals this account trades ("*" = all; then
    the latest signal for a symbol sets its target, whichever strategy sent it)."""

    name: Name = "paper-main"
    initial_equity: Positive = 10_000.0
    fraction: Annotated[float, msgspec.Meta(gt=0, le=1)] = 0.1
    max_notional_per_symbol: Positive = 5_000.0
    max_gross_exposure: Positive = 20_000.0
    strategies: tuple[str, ...] = ("ensemble9",)
    allow_short: bool = True

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
        )

    def trades(self, strategy: str) -> bool:
        """Whether this account subscribes to `strategy`'s signals."""
        return "*" in self.strategies or strategy in self.strategies


class RiskConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`accounts`: the sub-accounts risk sizes signals for, decided in this order: always the
    top-level `accounts:` section (from_raw), which execution reads too."""

    accounts: tuple[AccountConfig, ...] = (AccountConfig(),)

    def __post_init__(self) -> None:
        if not self.accounts:
            raise ValueError("accounts must not be empty")
        names = [a.name for a in self.accounts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"account names must be unique (duplicated: {', '.join(dupes)})")
