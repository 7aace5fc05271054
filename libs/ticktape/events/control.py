"""Operator commands (stream subjects control.>)."""

from __future__ import annotations

from typing import Literal

from msgspec import UNSET, UnsetType

from ticktape.events.envelope import Envelope

ShutdownAction = Literal["cancel_orders", "close_positions"]


class EmergencyStop(Envelope, frozen=True, kw_only=True, tag="control.emergency_stop"):
    """Halt trading: risk rejects every new signal, execution cancels what is still pending.
    account '*' halts every sub-account.

    `flatten` true (`ticktape stop --flatten`): execution also closes every position of the
    account(s) with reduce-only orders, filled at once at the position's mark (paper). Left
    unset it is not encoded at all, so a stop without it has exactly the bytes (and id) it had
    before the field existed."""

    reason: str
    account: str = "*"
    flatten: bool | UnsetType = UNSET


class ResumeTrading(Envelope, frozen=True, kw_only=True, tag="control.resume"):
    """Lift an emergency stop, and risk's own halt (RiskHalted), of one account or '*'."""

    reason: str
    account: str = "*"


class ShutdownRequested(Envelope, frozen=True, kw_only=True, tag="control.shutdown"):
    """`ticktape up`'s stop sequence applying an account's `on_shutdown` policy (ticktape.shutdown):
    `cancel_orders` cancels its pending orders, `close_positions` also closes every position
    with reduce-only orders (paper: filled at the mark). Not a halt: the next session trades."""

    account: str
    action: ShutdownAction
    session_id: str = ""
    reason: str = "shutdown"
