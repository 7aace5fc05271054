"""The top-level `accounts:` section: one list risk and execution both build from (ticktape.accounts)."""

from __future__ import annotations

import copy

import pytest

from services.execution import config as exec_config
from services.execution import loading as exec_loading
from services.risk import config as risk_config
from services.risk import loading as risk_loading
from ticktape import config as cfg
from ticktape.config import ConfigError
from ticktape.corespec import load_specs

NEW = {
    "accounts": [
        {
            "name": "big",
            "initial_equity": 100_000,
            "strategies": ["ensemble9", "ema_cross_9_21"],
            "limits": {"fraction": 0.2, "max_gross_exposure": 150_000, "max_leverage": 3},
        },
        {"name": "small", "initial_equity": 5_000, "limits": {"allow_short": False}},
    ]
}
OLD = {
    "risk": {
        "accounts": [
            {
                "name": "big",
                "initial_equity": 100_000,
                "strategies": ["ensemble9", "ema_cross_9_21"],
                "fraction": 0.2,
                "max_gross_exposure": 150_000,
            },
            {"name": "small", "initial_equity": 5_000, "allow_short": False},
        ]
    },
    "execution": {
        "mode": "paper",
        "accounts": [
            {"name": "big", "initial_equity": 100_000, "max_leverage": 3},
            {"name": "small", "initial_equity": 5_000},
        ],
    },
}


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        cfg.load_common(raw)
    return str(info.value)


def test_one_list_then_risk_and_execution_get_the_same_accounts_and_equity():
    risk = risk_loading.from_raw(NEW)
    execution = exec_loading.from_raw(NEW)
    assert [(a.name, a.initial_equity) for a in risk.accounts] == [("big", 100_000.0), ("small", 5_000.0)]
    assert [(a.name, a.initial_equity) for a in execution.accounts] == [("big", 100_000.0), ("small", 5_000.0)]
    assert risk.accounts[0].fraction == 0.2 and risk.accounts[0].max_gross_exposure == 150_000.0
    assert risk.accounts[1].allow_short is False and risk.accounts[0].strategies == ("ensemble9", "ema_cross_9_21")
    assert [a.max_leverage for a in execution.accounts] == [3.0, 10.0]


def test_no_accounts_then_todays_single_default_paper_account():
    assert risk_loading.from_raw({}).accounts == (risk_config.AccountConfig(),)
    assert exec_loading.from_raw({}).accounts == (exec_config.AccountConfig(),)
    assert risk_loading.from_raw({}) == risk_config.RiskConfig()
    assert exec_loading.from_raw({}) == exec_config.ExecutionConfig()


def test_old_keys_then_upcast_builds_the_same_cores_as_the_new_section():
    before = copy.deepcopy(OLD)
    assert risk_loading.from_raw(OLD) == risk_loading.from_raw(NEW)
    assert exec_loading.from_raw(OLD) == exec_loading.from_raw(NEW)
    assert cfg.load_common(OLD).accounts == cfg.load_common(NEW).accounts
    assert before == OLD, "the upcast must not modify the recorded document"
    old_cores = {s.name: s.core for s in load_specs(OLD, ["risk", "execution"])}
    new_cores = {s.name: s.core for s in load_specs(NEW, ["risk", "execution"])}
    assert old_cores["risk"].books.keys() == new_cores["risk"].books.keys() == {"big", "small"}
    equity = {n: a.initial_equity for n, a in new_cores["execution"].accounts.items()}
    assert equity == {n: a.initial_equity for n, a in old_cores["execution"].accounts.items()}
    assert equity == {"big": 100_000.0, "small": 5_000.0}
    assert old_cores["execution"]._leverage == new_cores["execution"]._leverage == {"big": 3.0, "small": 10.0}


def test_old_keys_on_one_side_then_the_other_side_is_the_old_default():
    raw = {"risk": {"accounts": [{"name": "paper-main", "fraction": 0.05}]}}
    assert risk_loading.from_raw(raw).accounts[0].fraction == 0.05
    assert exec_loading.from_raw(raw).accounts == (exec_config.AccountConfig(),)


def test_old_keys_that_disagree_on_equity_then_error_names_both_keys():
    raw = {"risk": {"accounts": [{"name": "paper-main", "initial_equity": 100_000}]}}
    message = _error(raw)
    assert "risk.accounts[0].initial_equity" in message and "execution.accounts[0].initial_equity" in message
    with pytest.raises(ConfigError):
        exec_loading.from_raw(raw)


def test_old_keys_that_list_different_accounts_then_error():
    raw = {"risk": {"accounts": [{"name": "a"}]}, "execution": {"accounts": [{"name": "b"}]}}
    assert "risk.accounts and execution.accounts" in _error(raw)


def test_old_and_new_keys_together_then_error_says_to_remove_the_old():
    raw = {**NEW, "execution": {"accounts": [{"name": "big"}]}}
    assert "execution.accounts" in _error(raw)


def test_duplicate_names_then_error_names_the_key_path():
    raw = {"accounts": [{"name": "a"}, {"name": "b"}, {"name": "a"}]}
    message = _error(raw)
    assert "accounts[2].name" in message and "accounts[0].name" in message
    with pytest.raises(ConfigError, match=r"accounts\[2\]\.name"):
        risk_loading.from_raw(raw)


def test_unknown_venue_then_error_names_the_key_path():
    assert "accounts[0].venue" in _error({"accounts": [{"name": "a", "venue": "kraken"}]})
    assert cfg.load_common({"accounts": [{"name": "a", "venue": "hyperliquid"}]}).accounts[0].venue == "hyperliquid"


def test_live_mode_without_the_live_switch_then_loading_it_to_trade_names_the_key_path():
    live = {"name": "b", "mode": "live", "venue": "binance_usdm", "api_key_env": "K", "api_secret_env": "S"}
    raw = {"accounts": [{"name": "a"}, live]}
    with pytest.raises(ConfigError, match=r"accounts\[1\]\.mode") as info:
        cfg.load_accounts(raw)
    assert "ticktape up --live" in str(info.value)
    with pytest.raises(ConfigError, match=r"accounts\[1\]\.mode"):
        exec_loading.from_raw(raw)
    # the operator's commands (status, stop --flatten) load the same configuration
    assert cfg.load_common(raw).accounts[1].mode == "live"


def test_leverage_below_risks_gross_exposure_then_error():
    raw = {"accounts": [{"name": "a", "initial_equity": 10_000, "limits": {"max_gross_exposure": 150_000}}]}
    assert "accounts[0].limits.max_leverage" in _error(raw)
    raw["accounts"][0]["limits"]["max_leverage"] = 15
    assert cfg.load_common(raw).accounts[0].limits.max_leverage == 15


def test_credentials_are_env_var_names_checked_for_shape_only():
    account = {
        "name": "hl",
        "venue": "hyperliquid",
        "wallet_key_env": "TICKTAPE_TEST_UNSET_WALLET_KEY",
        "account_address": "0x" + "ab" * 20,
        "vault_address": "0x" + "cd" * 20,
    }
    loaded = cfg.load_common({"accounts": [account]}).accounts[0]  # the variable is unset: never read
    assert loaded.wallet_key_env == "TICKTAPE_TEST_UNSET_WALLET_KEY"
    assert "accounts[0].api_key_env" in _error({"accounts": [{"name": "a", "api_key_env": "not a name"}]})
    assert "accounts[0].vault_address" in _error({"accounts": [{"name": "a", "vault_address": "0x12"}]})


def test_recorded_run_with_disagreeing_old_lists_then_replay_builds_its_cores_as_it_ran():
    """What the one list forbids for a new run is what an old recording did: its replay must
    rebuild risk on 100,000 and execution on its default 10,000, as the run had them."""
    raw = {"risk": {"accounts": [{"name": "paper-main", "initial_equity": 100_000}]}}
    with pytest.raises(ConfigError):
        cfg.load_common(raw)  # a new run with this config is refused
    cores = {s.name: s.core for s in load_specs(raw, ["risk", "execution"])}
    assert cores["risk"].config.accounts[0].initial_equity == 100_000
    assert {n: a.initial_equity for n, a in cores["execution"].accounts.items()} == {"paper-main": 10_000.0}
    # a recording made with the new section is built from it, as a new run is
    assert risk_loading.recorded(NEW) == risk_loading.from_raw(NEW)
    assert exec_loading.recorded(NEW) == exec_loading.from_raw(NEW)
