"""This service's core for replay: the core_spec its registry entry names (ticktape.registry)."""

from __future__ import annotations

from typing import Any

from services.execution.core import FILTER_SUBJECTS, ExecutionCore
from services.execution.loading import recorded
from ticktape import events as ev
from ticktape.corespec import CoreSpec


def core_spec(raw: dict[str, Any]) -> CoreSpec:
    config = recorded(raw)  # a recording replays as it ran
    return CoreSpec(
        "execution",
        ExecutionCore(config),
        tuple(FILTER_SUBJECTS),
        (
            ev.OrderSubmitted,
            ev.OrderCanceled,
            ev.OrderFilled,
            ev.PositionUpdated,
            ev.AccountUpdated,
            ev.ReconciliationDifference,
            ev.AccountReconciled,
            ev.VenueCancelRequested,
        ),
    )
