"""Risk's own halts (RiskHalted) are halts wherever halts are shown: the API's read model and
`ticktape status` fold them with the operator's stops and resumes, as risk does."""

from __future__ import annotations

from services.api.readmodel import ReadModel
from ticktape.cli.status_view import halts
from ticktape.events import EmergencyStop, ResumeTrading, RiskHalted


def risk_halt(account: str) -> RiskHalted:
    return RiskHalted(
        event_id=f"halt-{account}",
        ts_event=1,
        ts_init=1,
        account=account,
        reason="max_drawdown",
        detail="d",
        equity=9_000.0,
        reference_equity=10_000.0,
        limit=0.1,
    )


def resume(account: str = "*") -> ResumeTrading:
    return ResumeTrading(event_id=f"resume-{account}", ts_event=2, ts_init=2, reason="r", account=account)


def test_the_read_model_shows_an_account_risk_halted_until_a_resume() -> None:
    model = ReadModel()
    model.apply(risk_halt("a"), 1, 0)
    assert (model.halted("a"), model.halted("b")) == (True, False)
    model.apply(resume("a"), 2, 0)
    assert model.halted("a") is False
    model.apply(risk_halt("b"), 3, 0)
    model.apply(resume(), 4, 0)
    assert (model.halted("a"), model.halted("b")) == (False, False)


def test_status_folds_risk_halts_with_the_operators_events() -> None:
    stop = EmergencyStop(event_id="s", ts_event=0, ts_init=0, reason="r", account="*")
    assert halts([risk_halt("a")]) == (False, {"a": True})
    assert halts([risk_halt("a"), resume("a")]) == (False, {"a": False})
    assert halts([risk_halt("a"), resume()]) == (False, {})
    assert halts([stop, risk_halt("a")]) == (True, {"a": True})
