"""The signal shell: closed bars from the events stream through the strategies, signals out."""

from __future__ import annotations

from typing import Any

from services.signal import loading
from services.signal.config import SignalConfig
from ticktape import runtime


def load(raw: dict[str, Any]) -> SignalConfig:
    """The section with every strategy found and checked (a ConfigError exits 78)."""
    return loading.from_raw(raw)


async def serve(rt: runtime.Runtime, config: SignalConfig) -> None:
    core = loading.core(config)
    known: set[str] = set()

    def report_quarantine(_seq: int) -> None:
        for name, error in core.quarantined.items():
            if name not in known:
                known.add(name)
                rt.metrics.error("strategy_quarantined")
                rt.log.error("strategy quarantined; the others keep running", strategy=name, error=error)

    await runtime.serve_core(rt, core, core.filter_subjects, on_processed=report_quarantine)


def main() -> None:
    runtime.run("signal", load, serve)
