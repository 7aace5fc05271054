"""Changes to the managed strategies (stream subjects strategies.>): what `ticktape strategies`
stores in PostgreSQL's `strategies` table, also written to the log, so that a replay sees exactly
the set of strategies that was live at every moment."""

from __future__ import annotations

from typing import Any, Literal

from ticktape.events.envelope import Envelope

StrategyStatus = Literal["live", "paused", "retired"]
StrategyAction = Literal["add", "pause", "resume", "retire"]
STATUSES: tuple[str, ...] = ("live", "paused", "retired")


class StrategyChanged(Envelope, frozen=True, kw_only=True, tag="strategy.changed"):
    """One change of a managed strategy, carrying its whole entry as it is after the change.

    `strategy`: its id, which is also its name (a subject token); `revision`: the entry's version
    in the table (1 when added, +1 per change), so the id of the event derives from (strategy,
    revision) and a retried publish is deduplicated; the signal core applies a revision once, in
    order. `kind`, `params`: as a config entry's; `venue`, `symbols`, `timeframes`: its one
    subscription (timeframes empty: signal.timeframe); `account`: the account that trades its signals,
    alone (empty: the accounts whose `strategies` list it or '*'; services/risk/routing.py);
    `status` after the change."""

    strategy: str
    revision: int
    action: StrategyAction
    status: StrategyStatus
    kind: str
    params: dict[str, Any] = {}
    venue: str = "*"
    symbols: tuple[str, ...] = ("*",)
    timeframes: tuple[str, ...] = ()
    account: str = ""
