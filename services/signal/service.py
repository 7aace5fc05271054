"""The signal shell: closed bars from the events stream through the strategies, signals out.

Run as one of signal.workers processes (`ticktape up` sets its index, ticktape.workers.ENV), it
reads its own durable and runs its strategies on its partition's symbols only."""

from __future__ import annotations

import os
import sys
from typing import Any

from services.signal import loading
from services.signal.config import SignalConfig
from services.signal.spec import worker_count
from ticktape import config as cfg
from ticktape import runtime, workers


def load(raw: dict[str, Any]) -> SignalConfig:
    """The section with every strategy found and checked (a ConfigError exits 78)."""
    return loading.from_raw(raw)


async def serve(rt: runtime.Runtime, config: SignalConfig) -> None:
    core = loading.core(config)
    count = worker_count(config)
    try:
        index = workers.index_from_env(count, os.environ)
    except workers.WorkersError as exc:  # the supervisor does not restart a config error
        print(f"ticktape signal: config error: signal.workers: {exc}", file=sys.stderr, flush=True)
        raise SystemExit(cfg.EXIT_CONFIG) from None
    known: set[str] = set()

    def report_quarantine(_seq: int) -> None:
        for name, error in core.quarantined.items():
            if name not in known:
                known.add(name)
                rt.metrics.error("strategy_quarantined")
                rt.log.error("strategy quarantined; the others keep running", strategy=name, error=error)

    if count > 1:
        rt.log.info("signal worker", worker=index, workers=count)
    await runtime.serve_core(
        rt,
        core,
        core.filter_subjects,
        on_processed=report_quarantine,
        durable=workers.durable(rt.name, index, count),
        accept=workers.accepts(index, count),
    )


def main() -> None:
    runtime.run("signal", load, serve)
