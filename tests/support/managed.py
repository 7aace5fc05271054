"""StrategyChanged events as `ticktape strategies` makes them, for the tests of the managed
strategies: the action follows from the status and the revision, the id from (name, revision)."""

from __future__ import annotations

from typing import Any

from ticktape import ids
from ticktape.events import StrategyChanged


def strategy_change(
    name: str,
    revision: int,
    status: str = "live",
    *,
    account: str = "",
    kind: str = "ema_cross",
    params: dict[str, Any] | None = None,
    ts: int = 0,
) -> StrategyChanged:
    """Revision `revision` of managed strategy `name`, `status` after it (live: added at revision 1,
    else resumed), at `ts` (default: the revision, ns)."""
    action = {"live": "add" if revision == 1 else "resume", "paused": "pause", "retired": "retire"}[status]
    return StrategyChanged(
        event_id=ids.derive("strategy", name, revision),
        ts_event=ts or revision,
        ts_init=ts or revision,
        strategy=name,
        revision=revision,
        action=action,  # type: ignore[arg-type]
        status=status,  # type: ignore[arg-type]
        kind=kind,
        params={"fast": 3, "slow": 8} if params is None else params,
        account=account,
    )
