"""Risk routes a managed strategy's signals to the account its StrategyChanged names (that account
alone, whatever the accounts' `strategies` lists say), not at all once retired, unchanged by a
pause; a strategy whose change names no account, and every configured one, by the lists. The
routes are state: snapshotted, restored, and a session with changes through risk verifies."""

from __future__ import annotations

from typing import Any

import pytest

from services.risk.config import AccountConfig, RiskConfig
from services.risk.core import RiskCore
from tests.support.managed import strategy_change
from ticktape.events import Event, OrderApproved, SignalGenerated, StrategyChanged
from ticktape.events.codec import decode
from ticktape.events.signals import Side

_n = 0


def signal(strategy: str, side: Side = "long", symbol: str = "") -> SignalGenerated:
    """A signal on a symbol of its own (unless named), so no account holds it or has it on order."""
    global _n
    _n += 1
    symbol = symbol or f"SYM{_n}USDT"
    return SignalGenerated(
        event_id=f"sig-{_n}",
        ts_event=1_000 + _n,
        ts_init=2_000 + _n,
        strategy=strategy,
        venue="binance",
        symbol=symbol,
        timeframe="1m",
        side=side,
        previous_side="flat",
        price=100.0,
        bar_open_time=60 * _n,
        target={"long": 1.0, "short": -1.0, "flat": 0.0}[side],
    )


def make() -> RiskCore:
    return RiskCore(
        RiskConfig(
            accounts=(
                AccountConfig(name="main", strategies=("*",)),
                AccountConfig(name="paper-b", strategies=("ensemble9",)),
                AccountConfig(name="paper-c", strategies=("m",)),
            )
        )
    )


def accounts(outputs: list[Event]) -> list[str]:
    return [o.account for o in outputs if isinstance(o, OrderApproved)]


def test_a_configured_strategy_is_routed_by_the_accounts_lists() -> None:
    core = make()
    assert accounts(core.handle(signal("ensemble9"))) == ["main", "paper-b"]
    assert accounts(core.handle(signal("m"))) == ["main", "paper-c"]


def test_a_managed_strategy_is_traded_by_the_account_its_change_names_alone() -> None:
    core = make()
    assert core.handle(strategy_change("m", 1, account="paper-b")) == []
    # paper-b does not list m, main lists '*' and paper-c lists m: the change's account decides
    assert accounts(core.handle(signal("m"))) == ["paper-b"]
    assert accounts(core.handle(signal("ensemble9"))) == ["main", "paper-b"]  # others unchanged


def test_a_managed_strategy_naming_no_account_is_routed_by_the_lists() -> None:
    core = make()
    core.handle(strategy_change("m", 1))
    assert accounts(core.handle(signal("m"))) == ["main", "paper-c"]


def test_pause_changes_nothing_for_risk_and_resume_neither() -> None:
    core = make()
    core.handle(strategy_change("m", 1, account="paper-b"))
    core.handle(strategy_change("m", 2, "paused", account="paper-b"))
    # a signal the signal core made before the pause, read after it: still traded
    assert accounts(core.handle(signal("m"))) == ["paper-b"]
    core.handle(strategy_change("m", 3, "live", account="paper-b"))
    assert accounts(core.handle(signal("m"))) == ["paper-b"]


def test_retired_its_signals_are_no_longer_traded_by_any_account_for_good() -> None:
    core = make()
    core.handle(strategy_change("m", 1, account="paper-b"))
    assert accounts(core.handle(signal("m"))) == ["paper-b"]
    core.handle(strategy_change("m", 2, "retired", account="paper-b"))
    assert core.handle(signal("m", "short")) == []  # not even the lists' accounts (main '*', paper-c)
    core.handle(strategy_change("m", 3, "live", account="paper-b"))  # nothing revives a retired strategy
    assert core.handle(signal("m", "short")) == []


def test_a_revision_applied_already_or_older_is_ignored() -> None:
    core = make()
    core.handle(strategy_change("m", 2, account="paper-b"))
    stale = strategy_change("m", 1, account="paper-c")
    core.handle(StrategyChanged(**{**_fields(stale), "event_id": "retried"}))
    assert accounts(core.handle(signal("m"))) == ["paper-b"]


def test_an_account_risk_does_not_know_trades_nothing() -> None:
    core = make()
    core.handle(strategy_change("m", 1, account="gone"))
    assert core.handle(signal("m")) == []


def test_routes_survive_a_snapshot_and_restore() -> None:
    core = make()
    core.handle(strategy_change("m", 1, account="paper-b"))
    core.handle(strategy_change("r", 1, account="paper-b"))
    core.handle(strategy_change("r", 2, "retired", account="paper-b"))
    restored = make()
    assert restored.origin() == make().origin()
    restored.restore(core.snapshot())
    assert restored.snapshot() == core.snapshot()
    assert accounts(restored.handle(signal("m"))) == ["paper-b"]
    assert restored.handle(signal("r")) == []


def _fields(event: StrategyChanged) -> dict[str, Any]:
    return {f: getattr(event, f) for f in event.__struct_fields__}


def test_a_session_where_a_managed_strategy_trades_on_its_account_verifies() -> None:
    """Through signal, risk and execution: m (added for paper-b, which does not list it) is
    traded by paper-b only, and the recording verifies."""
    from tests.support.bars import wave_bars
    from ticktape.corespec import load_specs
    from ticktape.replay.simulate import simulate_session
    from ticktape.replay.verify import Verifier

    config = {
        "accounts": [
            {"name": "paper-main", "strategies": ["ensemble9"]},
            {"name": "paper-b", "strategies": ["ensemble9"]},
        ]
    }
    market = sorted(wave_bars("BTCUSDT", 200) + wave_bars("ETHUSDT", 200, period=30), key=lambda b: b.open_time)
    t = market[100].ts_init
    add = strategy_change("m", 1, account="paper-b", ts=t)
    retire = strategy_change("m", 2, "retired", account="paper-b", ts=market[300].ts_init)
    inputs: list[Any] = [*market[:100], add, *market[100:300], retire, *market[300:]]
    meta, records = simulate_session(inputs, config, "s1")
    events = [decode(r.data) for r in records]
    by_m = [e for e in events if isinstance(e, OrderApproved) and e.strategy == "m"]
    assert by_m and {e.account for e in by_m} == {"paper-b"}
    assert any(isinstance(e, SignalGenerated) and e.strategy == "m" for e in events)

    verifier = Verifier(load_specs(meta.config_doc(), names=meta.services or None), meta)
    for rec in records:
        verifier.feed(rec)
    result = verifier.finish()
    assert result.ok, result.divergences[:2]


def test_adding_checks_the_account_exists_not_that_it_lists_the_strategy() -> None:
    """`ticktape strategies add --account` (and the API): routing comes from the change now."""
    from ticktape import config as cfg
    from ticktape import strategies_table as table

    raw: dict[str, Any] = {"accounts": [{"name": "paper-main", "strategies": ["ensemble9"]}]}
    check = table.checker(raw, cfg.load_common(raw))
    new = {"kind": "ema_cross", "params": {"fast": 3, "slow": 8}, "venue": "*", "symbols": ["*"], "timeframes": []}
    check(table.change_event(None, "add", 1, new={**new, "id": "m", "account": "paper-main"}))  # accepted
    with pytest.raises(table.StrategyError, match=r"^account: no account 'nope' in the configuration"):
        check(table.change_event(None, "add", 1, new={**new, "id": "m", "account": "nope"}))
