"""Re-run the decision cores over a recorded stream and compare with what they published live."""

from __future__ import annotations

from collections.abc import Sequence

from ticktape import events as ev
from ticktape.events.codec import encode
from ticktape.subjects import matches

from services.execution.config import ExecutionConfig
from services.execution.core import FILTER_SUBJECTS as EXECUTION_FILTERS
from services.execution.core import ExecutionCore
from services.risk.config import RiskConfig
from services.risk.core import FILTER_SUBJECTS as RISK_FILTERS
from services.risk.core import RiskCore
from services.signal.config import SignalConfig
from services.signal.core import SignalCore, filter_subjects

OUTPUTS = {
    "signal": (ev.SignalGenerated,),
    "risk": (ev.OrderApproved, ev.OrderRejected),
    "execution": (ev.OrderSubmitted, ev.OrderCanceled, ev.OrderFilled, ev.PositionUpdated, ev.AccountUpdated),
}


def default_cores() -> dict[str, tuple[object, Sequence[str]]]:
    return {
        "signal": (SignalCore(SignalConfig()), filter_subjects(SignalConfig())),
        "risk": (RiskCore(RiskConfig()), RISK_FILTERS),
        "execution": (ExecutionCore(ExecutionConfig()), EXECUTION_FILTERS),
    }


def replay_mismatches(recorded: Sequence[tuple[str, ev.Event]]) -> dict[str, str]:
    """For each core: '' when replaying its inputs in stream order reproduces its recorded
    outputs byte for byte, else a description of the first divergence."""
    result = {}
    for name, (core, filters) in default_cores().items():
        replayed = [out for subject, event in recorded if any(matches(f, subject) for f in filters)
                    for out in core.handle(event)]  # type: ignore[attr-defined]
        live = [event for _, event in recorded if isinstance(event, OUTPUTS[name])]
        result[name] = _first_difference(live, replayed)
    return result


def _first_difference(live: Sequence[ev.Event], replayed: Sequence[ev.Event]) -> str:
    for i, (a, b) in enumerate(zip(live, replayed)):
        if encode(a) != encode(b):
            return f"event {i} differs:\n live:   {encode(a)!r}\n replay: {encode(b)!r}"
    if len(live) != len(replayed):
        return f"live published {len(live)} events, replay produced {len(replayed)}"
    return ""
