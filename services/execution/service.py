"""The execution shell: approvals, bars, control and the venues' answers in; orders, fills and
positions out. The core (services.execution.core) runs behind the service's durable consumer;
beside it, for accounts whose mode is live, the venue gateway (services.execution.gateway) sends
their orders and publishes the venues' answers, which the core consumes like any input.

Live accounts load only when the configuration allows (services.execution.loading); the `--live`
flag of this module is refused: `ticktape up --live` is the way in."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from typing import Any

from services.execution import gateway
from services.execution.config import ExecutionConfig
from services.execution.core import FILTER_SUBJECTS, ExecutionCore
from services.execution.loading import from_raw
from ticktape import config as cfg
from ticktape import runtime
from ticktape.events import AccountUpdated, Event
from ticktape.metrics import ServiceMetrics
from ticktape.snapshots.gauged import GaugedCore

LIVE_REFUSAL = (
    "--live is not a flag of the execution service: live accounts trade only under `ticktape up --live`, "
    "which checks them first. Remove --live; no order will reach an exchange."
)


def load(raw: dict[str, Any]) -> ExecutionConfig:
    """The service's settings; with live accounts, also where each trades and that its
    credentials are in the environment (a ConfigError, exit 78, naming the variable)."""
    config = from_raw(raw)
    if config.live_accounts():
        gateway.preflight(config, cfg.load_common(raw))
    return config


class AccountGauges(GaugedCore[ExecutionCore]):
    """The core, with each AccountUpdated it emits exported as the account's equity, peak equity
    and exposure gauges (the rebuild replays them too, so they survive a restart)."""

    def __init__(self, core: ExecutionCore, metrics: ServiceMetrics, config: ExecutionConfig) -> None:
        super().__init__(core)
        self.metrics = metrics
        for account in config.accounts:  # flat at its initial equity until its first update
            metrics.account(account.name, account.initial_equity, 0.0, 0.0)

    def export(self) -> None:
        for name, account in self.core.accounts.items():  # what the last AccountUpdated said
            totals = account.totals()
            self.metrics.account(name, totals.equity, totals.gross_exposure, totals.net_exposure)

    def handle(self, event: Event) -> list[Event]:
        outputs = self.core.handle(event)
        for out in outputs:
            if isinstance(out, AccountUpdated):
                self.metrics.account(out.account, out.equity, out.gross_exposure, out.net_exposure)
        return outputs


async def serve(
    rt: runtime.Runtime, config: ExecutionConfig, *, venue_clock_ms: Callable[[], int] | None = None
) -> None:
    """The core until rt.stop; with live accounts, their venue gateway beside it (a gateway that
    fails stops the service, so the supervisor restarts both). venue_clock_ms: the venues' clock
    for the gateway's signatures (default the wall clock; tests pass a simulator's)."""
    live = [a.name for a in config.live_accounts()]
    rt.log.info("execution mode", mode=config.mode, dry_run=not live, live_accounts=live)
    core = runtime.serve_core(rt, AccountGauges(ExecutionCore(config), rt.metrics, config), FILTER_SUBJECTS)
    if not live:
        await core
        return
    tasks = [
        asyncio.create_task(core),
        asyncio.create_task(gateway.run(rt, config, venue_clock_ms=venue_clock_ms)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            task.result()  # a failure (or the gateway's config error) ends the service
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.execution")
    parser.add_argument("--live", action="store_true", help="refused: live trading is not available")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.live:
        print(f"execution: {LIVE_REFUSAL}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    runtime.run("execution", load, serve)
