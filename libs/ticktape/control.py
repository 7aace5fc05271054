"""The operator's control events (EmergencyStop, ResumeTrading) as `ticktape stop|resume` and the
API's control endpoints make them: one definition, so both publish the same event for the same
command."""

from __future__ import annotations

from ticktape import ids
from ticktape.events import EmergencyStop, ResumeTrading

COMMANDS: dict[str, tuple[type[EmergencyStop] | type[ResumeTrading], str]] = {
    "stop": (EmergencyStop, "emergency stop: risk rejects every new signal, execution cancels pending orders"),
    "resume": (ResumeTrading, "lift an emergency stop (the operator's or risk's own)"),
}


def control_event(
    command: str, reason: str, account: str, ts_ns: int, *, flatten: bool = False
) -> EmergencyStop | ResumeTrading:
    """The event of a stop or resume; its id derives from what and when, so a retry of the same
    command is dropped as a duplicate. `flatten` (stop only): also close every position; without
    it the event, id included, is exactly what it was before the flag existed."""
    if command == "resume":
        if flatten:
            raise ValueError("flatten applies to stop only")
        return ResumeTrading(
            event_id=ids.derive("control", command, account, reason, ts_ns),
            ts_event=ts_ns,
            ts_init=ts_ns,
            reason=reason,
            account=account,
        )
    if command != "stop":
        raise ValueError(f"unknown control command {command!r}; known: {', '.join(COMMANDS)}")
    if not flatten:
        return EmergencyStop(
            event_id=ids.derive("control", command, account, reason, ts_ns),
            ts_event=ts_ns,
            ts_init=ts_ns,
            reason=reason,
            account=account,
        )
    return EmergencyStop(
        event_id=ids.derive("control", command, account, reason, ts_ns, "flatten"),
        ts_event=ts_ns,
        ts_init=ts_ns,
        reason=reason,
        account=account,
        flatten=True,
    )
