"""The risk shell: signals, positions, fills and control commands in; approvals/rejections out."""

from __future__ import annotations

from typing import Any

from services.risk.config import RiskConfig
from services.risk.core import FILTER_SUBJECTS, RiskCore
from ticktape import config as cfg
from ticktape import runtime


def load(raw: dict[str, Any]) -> RiskConfig:
    return cfg.load_section("risk", RiskConfig, raw)


async def serve(rt: runtime.Runtime, config: RiskConfig) -> None:
    await runtime.serve_core(rt, RiskCore(config), FILTER_SUBJECTS)


def main() -> None:
    runtime.run("risk", load, serve)
