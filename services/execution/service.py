"""The execution shell: approvals, bars and control in; paper orders, fills and positions out.

Dry-run (paper) is the only mode of this build: `--live` is refused with a clear message."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from services.execution.config import ExecutionConfig
from services.execution.core import FILTER_SUBJECTS, ExecutionCore
from ticktape import config as cfg
from ticktape import runtime

LIVE_REFUSAL = (
    "live trading is not available in this build: execution runs in dry-run (paper) mode only. "
    "Remove --live; no order will reach an exchange."
)


def load(raw: dict[str, Any]) -> ExecutionConfig:
    return cfg.load_section("execution", ExecutionConfig, raw)


async def serve(rt: runtime.Runtime, config: ExecutionConfig) -> None:
    rt.log.info("execution mode", mode=config.mode, dry_run=True)
    await runtime.serve_core(rt, ExecutionCore(config), FILTER_SUBJECTS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m services.execution")
    parser.add_argument("--live", action="store_true", help="refused: live trading is not available")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.live:
        print(f"execution: {LIVE_REFUSAL}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    runtime.run("execution", load, serve)
