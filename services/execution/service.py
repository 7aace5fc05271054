"""The execution shell: approvals, bars and control in; paper orders, fills and positions out.

Dry-run (paper) is the only mode of this build: `--live` is refused with a clear message."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from services.execution.config import ExecutionConfig
from services.execution.core import FILTER_SUBJECTS, ExecutionCore
from services.execution.loading import from_raw
from ticktape import runtime
from ticktape.events import AccountUpdated, Event
from ticktape.metrics import ServiceMetrics

LIVE_REFUSAL = (
    "live trading is not available in this build: execution runs in dry-run (paper) mode only. "
    "Remove --live; no order will reach an exchange."
)


def load(raw: dict[str, Any]) -> ExecutionConfig:
    return from_raw(raw)


class AccountGauges:
    """The core, with each AccountUpdated it emits exported as the account's equity, peak equity
    and exposure gauges (the rebuild replays them too, so they survive a restart)."""

    def __init__(self, core: ExecutionCore, metrics: ServiceMetrics, config: ExecutionConfig) -> None:
        self.core = core
        self.metrics = metrics
        for account in config.accounts:  # flat at its initial equity until its first update
            metrics.account(account.name, account.initial_equity, 0.0, 0.0)

    def handle(self, event: Event) -> list[Event]:
        outputs = self.core.handle(event)
        for out in outputs:
            if isinstance(out, AccountUpdated):
                self.metrics.account(out.account, out.equity, out.gross_exposure, out.net_exposure)
        return outputs


async def serve(rt: runtime.Runtime, config: ExecutionConfig) -> None:
    rt.log.info("execution mode", mode=config.mode, dry_run=True)
    await runtime.serve_core(rt, AccountGauges(ExecutionCore(config), rt.metrics, config), FILTER_SUBJECTS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.execution")
    parser.add_argument("--live", action="store_true", help="refused: live trading is not available")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.live:
        print(f"execution: {LIVE_REFUSAL}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    runtime.run("execution", load, serve)
