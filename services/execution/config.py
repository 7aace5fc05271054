"""Typed settings of the execution service: paper fill model costs and the sub-accounts."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

from ticktape import accounts as accts
from ticktape.clock import TIMEFRAME_NS

# An account name becomes a subject token (orders.<account>.<symbol>); "*" is reserved.
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
Bps = Annotated[float, msgspec.Meta(ge=0, lt=10_000)]


class AccountConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Execution's view of one account and the cash it starts with (built from the top-level
    `accounts:` section by from_raw, the list risk reads too; not a YAML key of its own).

    `max_leverage` is execution's own limit, behind risk's: an approval that would raise the
    account's gross exposure (positions and pending orders at their last prices, this order at
    its reference price) above max_leverage x equity is canceled ("max_leverage"); an order
    that lowers gross exposure always passes. Risk sizes at fraction x equity within its own
    exposure limits, so only a forged or broken approval reaches it; the config check refuses a
    max_leverage x initial_equity below risk's max_gross_exposure (ticktape.accounts)."""

    name: Name = "paper-main"
    initial_equity: Annotated[float, msgspec.Meta(gt=0)] = 10_000.0
    max_leverage: Annotated[float, msgspec.Meta(gt=0, le=1000)] = 10.0

    @classmethod
    def of(cls, account: accts.Account) -> AccountConfig:
        return cls(name=account.name, initial_equity=account.initial_equity, max_leverage=account.limits.max_leverage)


class ExecutionConfig(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """`mode`: only "paper" here (live is refused elsewhere); orders fill at the open of the
    next `timeframe` bar, moved by `slippage_bps` against us, paying `taker_fee_bps`."""

    mode: Literal["paper"] = "paper"
    timeframe: str = "1m"
    slippage_bps: Bps = 2.0
    taker_fee_bps: Bps = 4.0
    accounts: tuple[AccountConfig, ...] = (AccountConfig(),)

    def __post_init__(self) -> None:
        if self.timeframe not in TIMEFRAME_NS:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAME_NS)} (got {self.timeframe!r})")
        if not self.accounts:
            raise ValueError("accounts must not be empty")
        names = [a.name for a in self.accounts]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"account names must be unique (duplicated: {', '.join(dupes)})")
