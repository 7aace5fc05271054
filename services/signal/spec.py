"""This service's core for replay: the core_spec its registry entry names (ticktape.registry)."""

from __future__ import annotations

from typing import Any

from services.signal.config import SignalConfig
from services.signal.core import SignalCore, filter_subjects
from ticktape import config as cfg
from ticktape import events as ev
from ticktape.corespec import CoreSpec


def core_spec(raw: dict[str, Any]) -> CoreSpec:
    config = cfg.load_section("signal", SignalConfig, raw)
    return CoreSpec("signal", SignalCore(config), tuple(filter_subjects(config)), (ev.SignalGenerated,))
