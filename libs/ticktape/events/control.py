"""Operator commands (stream subjects control.>)."""

from __future__ import annotations

from ticktape.events.envelope import Envelope


class EmergencyStop(Envelope, frozen=True, kw_only=True, tag="control.emergency_stop"):
    """Halt trading: risk rejects every new signal, execution cancels what is still pending.
    account '*' halts every sub-account."""

    reason: str
    account: str = "*"


class ResumeTrading(Envelope, frozen=True, kw_only=True, tag="control.resume"):
    reason: str
    account: str = "*"
