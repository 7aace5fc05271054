"""The risk shell: signals, positions, fills, accounts and control commands in; approvals,
rejections and risk's own halts out."""

from __future__ import annotations

from typing import Any

from services.risk.config import RiskConfig
from services.risk.core import FILTER_SUBJECTS, RiskCore
from services.risk.loading import from_raw
from ticktape import runtime
from ticktape.events import EmergencyStop, Event, ResumeTrading, RiskHalted
from ticktape.metrics import ServiceMetrics
from ticktape.snapshots.gauged import GaugedCore


def load(raw: dict[str, Any]) -> RiskConfig:
    return from_raw(raw)


class HaltGauge(GaugedCore[RiskCore]):
    """The core, with each account's halt exported after every emergency stop, resume or halt of
    risk's own (ticktape_account_halted): read from the core's state, so the rebuild sets it too."""

    def __init__(self, core: RiskCore, metrics: ServiceMetrics) -> None:
        super().__init__(core)
        self.metrics = metrics
        self.export()

    def export(self) -> None:
        for name, book in self.core.books.items():
            self.metrics.halted(name, book.halted)

    def handle(self, event: Event) -> list[Event]:
        outputs = self.core.handle(event)
        if isinstance(event, EmergencyStop | ResumeTrading) or any(isinstance(o, RiskHalted) for o in outputs):
            self.export()
        return outputs


async def serve(rt: runtime.Runtime, config: RiskConfig) -> None:
    await runtime.serve_core(rt, HaltGauge(RiskCore(config), rt.metrics), FILTER_SUBJECTS)


def main() -> None:
    runtime.run("risk", load, serve)
