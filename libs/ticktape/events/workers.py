"""How many worker processes `ticktape up` runs a service as (stream subjects ops.workers.>)."""

from __future__ import annotations

from ticktape.events.envelope import Envelope


class WorkersChosen(Envelope, frozen=True, kw_only=True, tag="ops.workers.chosen"):
    """The worker count of a service for a session, and why: `requested` is the configured value
    (a number, or auto); with auto, `workers` = ceil(symbols x evaluation_ns / budget_ns), at
    least 1 and at most min(cpus, the maximum), where evaluation_ns is the measured time of one bar
    through every configured strategy. A record about the run (the session's configuration holds
    the chosen count, which replay uses), published by `ticktape up` after SessionStarted; its id
    derives from the session's."""

    session_id: str
    service: str
    workers: int
    requested: str
    strategies: int = 0
    symbols: int = 0
    evaluation_ns: int = 0
    budget_ns: int = 0
    cpus: int = 0
