"""The live account the execution core's reconciliation unit tests run (Binance USDT-M testnet,
"live-a") and the venue snapshots of it they feed the core."""

from __future__ import annotations

from typing import Any

from services.execution.config import AccountConfig
from ticktape import accounts as accts
from ticktape.events import VenueOpenOrder, VenuePosition, VenueSnapshot

T0 = 1_700_000_000 * 1_000_000_000


def live_account(**policy: Any) -> AccountConfig:
    """The live account, reconciled by `policy` (accounts.ReconcilePolicy's fields)."""
    return AccountConfig(
        name="live-a", mode="live", venue="binance_usdm", network="testnet", initial_equity=1000.0,
        reconcile=accts.ReconcilePolicy(**policy),
    )  # fmt: skip


def venue_snapshot(
    tag: str,
    *,
    reason: str = "start",
    marker: str | None = None,
    orders: tuple[VenueOpenOrder, ...] = (),
    positions: tuple[VenuePosition, ...] = (),
    balance: float = 1000.0,
) -> VenueSnapshot:
    """The venue's account as the gateway snapshots it; `marker` the last venue report it had read."""
    return VenueSnapshot(
        event_id=f"snap-{tag}", ts_event=T0, ts_init=T0 + 1, account="live-a", venue="binance_usdm",
        reason=reason, open_orders=orders, positions=positions, wallet_balance=balance,  # type: ignore[arg-type]
        last_report_id=marker,
    )  # fmt: skip
