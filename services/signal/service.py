"""The signal shell: closed bars from the events stream through the strategies, signals out."""

from __future__ import annotations

from typing import Any

from services.signal.config import SignalConfig
from services.signal.core import SignalCore, filter_subjects
from ticktape import config as cfg
from ticktape import runtime


def load(raw: dict[str, Any]) -> SignalConfig:
    return cfg.load_section("signal", SignalConfig, raw)


async def serve(rt: runtime.Runtime, config: SignalConfig) -> None:
    core = SignalCore(config)
    known: set[str] = set()

    def report_quarantine(_seq: int) -> None:
        for name, error in core.quarantined.items():
            if name not in known:
                known.add(name)
                rt.metrics.error("strategy_quarantined")
                rt.log.error("strategy quarantined; the others keep running", strategy=name, error=error)

    await runtime.serve_core(rt, core, filter_subjects(config), on_processed=report_quarantine)


def main() -> None:
    runtime.run("signal", load, serve)
