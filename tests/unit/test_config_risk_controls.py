"""The keys of issue #8's risk controls: accounts[].limits (loss limits, protective exits, cooldown,
per-order notional, open positions), accounts[].on_shutdown, the global limits in `risk:`, and the
operator's control events that carry `flatten`."""

from __future__ import annotations

import argparse

import pytest

from services.risk import loading as risk_loading
from ticktape import config as cfg
from ticktape import shutdown
from ticktape.cli import control as cli_control
from ticktape.config import ConfigError
from ticktape.control import control_event
from ticktape.events import EmergencyStop, ResumeTrading
from ticktape.events.codec import encode

GUARDED = {
    "accounts": [
        {
            "name": "guarded",
            "on_shutdown": "close_positions",
            "limits": {
                "max_drawdown": 0.1,
                "max_daily_loss": 0.03,
                "on_breach": "flatten",
                "max_order_notional": 2_000,
                "max_open_positions": 3,
                "stop_loss": 0.05,
                "take_profit": 0.2,
                "cooldown_minutes": 30,
            },
        },
        {"name": "plain", "on_shutdown": "cancel_orders"},
        {"name": "quiet"},
    ],
    "risk": {"max_drawdown": 0.2, "max_daily_loss": 0.05, "on_breach": "flatten", "reduce_while_halted": True},
}


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        cfg.load_common(raw)
    return str(info.value)


def test_the_limits_reach_risk_from_the_one_accounts_section() -> None:
    risk = risk_loading.from_raw(GUARDED)
    guarded, plain, _ = risk.accounts
    assert (guarded.max_drawdown, guarded.max_daily_loss, guarded.on_breach) == (0.1, 0.03, "flatten")
    assert (guarded.max_order_notional, guarded.max_open_positions) == (2_000, 3)
    assert (guarded.stop_loss, guarded.take_profit, guarded.cooldown_minutes) == (0.05, 0.2, 30)
    assert (plain.max_drawdown, plain.stop_loss, plain.max_open_positions, plain.cooldown_minutes) == (
        None,
        None,
        None,
        0,
    )
    assert (risk.max_drawdown, risk.max_daily_loss, risk.on_breach, risk.reduce_while_halted) == (
        0.2,
        0.05,
        "flatten",
        True,
    )
    assert risk_loading.from_raw({}).reduce_while_halted is True  # on unless set (recordings without it: off)


def test_on_shutdown_defaults_to_leave_and_makes_one_request_per_other_account() -> None:
    accounts = cfg.load_accounts(GUARDED)
    assert [a.on_shutdown for a in accounts] == ["close_positions", "cancel_orders", "leave"]
    reqs = shutdown.requests(accounts, "s1", 7)
    assert [(r.account, r.action, r.session_id, r.ts_event) for r in reqs] == [
        ("guarded", "close_positions", "s1", 7),
        ("plain", "cancel_orders", "s1", 7),
    ]
    # one request per session and account: a retried publish has the same id, another session not
    assert [r.event_id for r in reqs] == [r.event_id for r in shutdown.requests(accounts, "s1", 9)]
    assert not {r.event_id for r in reqs} & {r.event_id for r in shutdown.requests(accounts, "s2", 7)}
    assert shutdown.requests(cfg.load_accounts({}), "s1", 7) == []


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"cooldown_minutes": 5}, "accounts[0].limits.cooldown_minutes: applies after a stop-loss exit"),
        ({"on_breach": "flatten"}, "accounts[0].limits.on_breach: flatten needs limits.max_drawdown"),
        ({"max_order_notional": 30_000}, "accounts[0].limits.max_order_notional: must be <= max_gross_exposure"),
        ({"max_drawdown": 1.5}, "accounts[0].limits.max_drawdown"),
        ({"stop_loss": 0}, "accounts[0].limits.stop_loss"),
        ({"on_breach": "panic"}, "accounts[0].limits.on_breach"),
        ({"max_margin_use": 1.5}, "accounts[0].limits.max_margin_use"),
    ],
)
def test_a_bad_limit_is_a_config_error_naming_the_key(limits: dict, message: str) -> None:
    assert message in _error({"accounts": [{"name": "a", "limits": limits}]})


def test_a_bad_shutdown_policy_is_a_config_error_naming_the_key() -> None:
    assert "accounts[0].on_shutdown" in _error({"accounts": [{"name": "a", "on_shutdown": "sell_everything"}]})


def test_a_bad_global_limit_names_the_risk_key() -> None:
    with pytest.raises(ConfigError, match=r"risk\.max_daily_loss"):
        risk_loading.from_raw({"risk": {"max_daily_loss": 2}})


def test_a_stop_without_flatten_is_the_event_it_always_was() -> None:
    event = control_event("stop", "drill", "*", 5)
    assert isinstance(event, EmergencyStop)
    assert encode(event) == (
        b'{"type":"control.emergency_stop","event_id":"' + event.event_id.encode() + b'","ts_event":5,"ts_init":5,'
        b'"causation_id":null,"correlation_id":null,"version":1,"reason":"drill","account":"*"}'
    )
    flat = control_event("stop", "drill", "*", 5, flatten=True)
    assert isinstance(flat, EmergencyStop) and flat.flatten is True and flat.event_id != event.event_id
    assert encode(flat).endswith(b'"account":"*","flatten":true}')
    assert isinstance(control_event("resume", "done", "a", 5), ResumeTrading)
    with pytest.raises(ValueError, match="stop only"):
        control_event("resume", "done", "a", 5, flatten=True)


def test_the_cli_offers_flatten_on_stop_only() -> None:
    parser = argparse.ArgumentParser()
    cli_control.add_parser(parser.add_subparsers())
    args = parser.parse_args(["stop", "--account", "a", "--flatten"])
    assert (args.control, args.account, args.flatten) == ("stop", "a", True)
    assert parser.parse_args(["stop"]).flatten is False
    with pytest.raises(SystemExit):
        parser.parse_args(["resume", "--flatten"])
