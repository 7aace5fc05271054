"""This service's core for replay: the core_spec its registry entry names (ticktape.registry)."""

from __future__ import annotations

from typing import Any

from services.risk.core import FILTER_SUBJECTS, RiskCore
from services.risk.loading import recorded
from ticktape import events as ev
from ticktape.corespec import CoreSpec


def core_spec(raw: dict[str, Any]) -> CoreSpec:
    config = recorded(raw)  # a recording replays as it ran
    return CoreSpec(
        "risk", RiskCore(config), tuple(FILTER_SUBJECTS), (ev.OrderApproved, ev.OrderRejected, ev.RiskHalted)
    )
