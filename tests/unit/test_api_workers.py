"""The API's view of the signal workers and the managed strategies, pure: how many workers the
current session runs (its WorkersChosen, else its recorded configuration, else the API's own),
and the managed strategies' status, account and revision in /api/v1/scheduler/status."""

from __future__ import annotations

import json

from services.api import answers
from services.api import views as v
from services.api.readmodel import ReadModel
from tests.support.managed import strategy_change
from ticktape.events import Event, SessionStarted, WorkersChosen


def session(session_id: str, config: dict[str, object]) -> SessionStarted:
    return SessionStarted(
        event_id=f"session-{session_id}",
        ts_event=1,
        ts_init=1,
        session_id=session_id,
        config_hash="h",
        config_json=json.dumps(config),
        code_version="test",
        services=("signal", "risk"),
    )


def chosen(session_id: str, workers: int) -> WorkersChosen:
    return WorkersChosen(
        event_id=f"workers-{session_id}",
        ts_event=2,
        ts_init=2,
        session_id=session_id,
        service="signal",
        workers=workers,
        requested="auto",
    )


def fold(*events: Event) -> ReadModel:
    model = ReadModel()
    for seq, event in enumerate(events, 1):
        model.apply(event, seq)
    return model


def test_the_worker_count_is_the_sessions_choice_then_its_config_then_the_apis_own() -> None:
    assert answers.worker_count(fold(), "signal", fallback=4) == 4  # no session: the API's configuration
    assert answers.worker_count(fold(session("a", {"signal": {"workers": 3}})), "signal", 4) == 3
    assert answers.worker_count(fold(session("a", {"signal": {"workers": 3}}), chosen("a", 5)), "signal") == 5
    assert answers.worker_count(fold(session("a", {})), "signal", fallback=4) == 1  # the session ran one
    # a later session without a choice: the earlier session's does not carry over
    assert answers.worker_count(fold(session("a", {}), chosen("a", 5), session("b", {})), "signal") == 1
    assert answers.worker_count(fold(session("a", {"signal": {"workers": "auto"}})), "signal") == 1


def test_the_scheduler_lists_managed_strategies_with_status_account_and_revision() -> None:
    model = fold(
        session("a", {"signal": {"strategies": [{"kind": "ensemble", "name": "ensemble9"}]}}),
        strategy_change("mom", 1, "live", account="paper-b"),
        strategy_change("mom", 2, "paused", account="paper-b"),
        strategy_change("rev", 1, "live"),
    )
    workers = tuple(
        v.Worker(
            service="signal",
            durable=f"signal-p{i}",
            present=True,
            pending=i,
            ack_pending=1,
            rate_per_s=None,
            alive=True,
            process=f"signal-p{i}",
            index=i,
            workers=2,
        )
        for i in range(2)
    )
    status = answers.scheduler_status(model, workers, answers.configured_strategies(model.session_config))
    by = {s.name: s for s in status.strategies}
    assert (by["ensemble9"].kind, by["ensemble9"].status, by["ensemble9"].account) == ("ensemble", None, None)
    assert (by["mom"].kind, by["mom"].status, by["mom"].account, by["mom"].revision) == (
        "ema_cross",
        "paused",
        "paper-b",
        2,
    )
    assert (by["rev"].status, by["rev"].account, by["rev"].revision) == ("live", "", 1)
    assert status.lag == (0 + 1) + (1 + 1) and [w.durable for w in status.workers] == ["signal-p0", "signal-p1"]
