"""This service's core for replay: the core_spec its registry entry names (ticktape.registry)."""

from __future__ import annotations

from typing import Any

from services.signal import loading
from services.signal.config import SignalConfig
from ticktape import config as cfg
from ticktape import events as ev
from ticktape.corespec import CoreSpec


def core_spec(raw: dict[str, Any]) -> CoreSpec:
    core = loading.core(cfg.load_section("signal", SignalConfig, raw))
    return CoreSpec("signal", core, core.filter_subjects, (ev.SignalGenerated, ev.StrategyQuarantined))
