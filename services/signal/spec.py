"""This service's core for replay: the core_spec its registry entry names (ticktape.registry).

Recorded with n workers (signal.workers), the replay runs n cores, each over its partition's bars,
as the live workers did (ticktape.workers.PartitionedCore)."""

from __future__ import annotations

from typing import Any

from services.signal import loading
from services.signal.config import SignalConfig
from ticktape import config as cfg
from ticktape import events as ev
from ticktape.corespec import CoreSpec
from ticktape.workers import PartitionedCore

OUTPUTS = (ev.SignalGenerated, ev.StrategyQuarantined)


def core_spec(raw: dict[str, Any]) -> CoreSpec:
    config = cfg.load_section("signal", SignalConfig, raw)
    core = loading.core(config)
    n = worker_count(config)
    if n == 1:
        return CoreSpec("signal", core, core.filter_subjects, OUTPUTS)
    partitioned = PartitionedCore([core, *(loading.core(config) for _ in range(n - 1))])
    return CoreSpec("signal", partitioned, core.filter_subjects, OUTPUTS, lane=partitioned.lane)


def worker_count(config: SignalConfig) -> int:
    """The workers the service ran as: `auto` is resolved by `ticktape up` into the session's
    configuration, so one left unresolved ran as one process."""
    return config.workers if isinstance(config.workers, int) else 1
