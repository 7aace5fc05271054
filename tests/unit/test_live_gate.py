"""The live-trading gate's pieces (ticktape.live, ticktape.accounts, ticktape.config.load_accounts):
where a live account trades, what it must declare, whether its credentials are there (named,
never shown), the switch that lets risk and execution load it, and who gets its credentials."""

from __future__ import annotations

import io
import secrets
import time

import pytest

from exchanges.trading.clients import binance_usdm, hyperliquid
from ticktape import config as cfg
from ticktape import live, registry
from ticktape.accounts import Account, AccountLimits
from ticktape.config import ConfigError

HL = {"name": "hl", "mode": "live", "venue": "hyperliquid", "wallet_key_env": "HL_KEY", "network": "testnet"}
BN = {"name": "bn", "mode": "live", "venue": "binance_usdm", "api_key_env": "BN_KEY", "api_secret_env": "BN_SECRET"}


def _common(*accounts: dict, **top: object) -> cfg.CommonSettings:
    return cfg.load_common({"accounts": list(accounts), **top})


def _error(raw: dict) -> str:
    with pytest.raises(ConfigError) as info:
        cfg.load_common(raw)
    return str(info.value)


def _planned(common: cfg.CommonSettings) -> list[live.LiveAccount]:
    return [live.LiveAccount(i, a, live.endpoint(a, common, i)) for i, a in enumerate(common.accounts)]


def test_endpoint_is_the_clients_url_for_the_network_the_account_or_its_venue_names():
    common = _common(HL, BN, venues={"binance_usdm": {"network": "mainnet"}, "hyperliquid": {"network": "mainnet"}})
    hl, bn = (live.endpoint(a, common, i) for i, a in enumerate(common.accounts))
    assert hl == live.Endpoint("hyperliquid", "testnet", hyperliquid.TESTNET_URL, False)  # the account's own wins
    assert bn == live.Endpoint("binance_usdm", "mainnet", binance_usdm.MAINNET_URL, False)  # its venue's
    assert bn.mainnet and not hl.mainnet
    assert live.venue_urls("binance_usdm") == {"mainnet": binance_usdm.MAINNET_URL, "testnet": binance_usdm.TESTNET_URL}


def test_endpoint_without_a_network_then_config_error_names_both_keys():
    common = _common(BN)
    with pytest.raises(ConfigError) as info:
        live.endpoint(common.accounts[0], common, 0)
    assert "accounts[0].network" in str(info.value) and "venues.binance_usdm.network" in str(info.value)


def test_endpoint_under_the_venue_simulator_keeps_the_configured_network():
    common = _common(HL, venue_sim="http://127.0.0.1:8900/")
    assert live.endpoint(common.accounts[0], common) == live.Endpoint(
        "hyperliquid", "testnet", "http://127.0.0.1:8900/hyperliquid", True
    )


def test_live_account_shape_is_checked_at_load_with_key_paths():
    assert "accounts[0].venue" in _error({"accounts": [{**HL, "venue": None}]})
    assert "accounts[0].venue" in _error({"accounts": [{**HL, "venue": "binance_spot"}]})
    message = _error({"accounts": [{k: v for k, v in BN.items() if k != "api_secret_env"}]})
    assert "accounts[0].api_secret_env is missing" in message
    assert "accounts[0].wallet_key_env is set" in _error({"accounts": [{**BN, "wallet_key_env": "X"}]})
    assert "accounts[0].vault_address is set" in _error({"accounts": [{**BN, "vault_address": "0x" + "ab" * 20}]})
    # a paper account keeps declaring what it likes (never read)
    assert cfg.load_common({"accounts": [{**BN, "mode": "paper", "wallet_key_env": "X"}]}).accounts[0].mode == "paper"


def test_credential_variable_read_as_configuration_then_refused():
    for name in ("TICKTAPE_RISK__SECRET", "TICKTAPE_LIVE", "TICKTAPE_PG_DSN"):
        assert "accounts[0].api_key_env names " + name in _error({"accounts": [{**BN, "api_key_env": name}]})


def test_live_account_loads_to_trade_only_with_the_switch_and_a_live_execution(monkeypatch):
    raw = {"accounts": [{"name": "p"}, HL]}
    with pytest.raises(ConfigError, match=r"accounts\[1\]\.mode.*ticktape up --live"):
        cfg.load_accounts(raw)
    monkeypatch.setattr(cfg, "live_execution_available", lambda: False)  # an execution without a live path
    with pytest.raises(ConfigError, match=r"accounts\[1\]\.mode.*not available in this build"):
        cfg.load_accounts({**raw, "live": True})
    monkeypatch.setattr(cfg, "live_execution_available", lambda: True)
    assert [a.mode for a in cfg.load_accounts({**raw, "live": True})] == ["paper", "live"]
    with pytest.raises(ConfigError, match=r"accounts\[1\]\.mode"):
        cfg.load_accounts({**raw, "live": False})
    assert cfg.load_accounts({"accounts": [{"name": "p"}]}) == (Account(name="p"),)  # paper: no switch needed


def test_live_execution_is_what_executions_config_type_declares(monkeypatch):
    class Declares:
        LIVE_EXECUTION = True

    class Silent:
        pass

    monkeypatch.setattr(registry, "config_type", lambda info: Declares)
    assert cfg.live_execution_available() is True
    monkeypatch.setattr(registry, "config_type", lambda info: Silent)
    assert cfg.live_execution_available() is False


def test_switch_is_the_live_key_and_its_environment_alias():
    assert cfg.load_raw(env={live.ENV: "true"})[live.KEY] is True
    assert cfg.load_common(cfg.load_raw(env={live.ENV: "true"})).live is True
    assert cfg.load_common({}).live is False


def test_missing_credentials_are_named_never_shown():
    common = _common(HL, {**BN, "network": "testnet"})
    planned = _planned(common)
    secret = secrets.token_hex(16)
    problems = live.credential_problems(planned, {"BN_KEY": secret})
    assert len(problems) == 2
    assert "HL_KEY" in problems[0] and "accounts[0].wallet_key_env" in problems[0]
    assert "BN_SECRET" in problems[1] and "accounts[1].api_secret_env" in problems[1]
    assert not [p for p in problems if secret in p]


def test_unusable_credentials_are_named_never_shown():
    planned = _planned(_common(HL))
    bad = "0x" + secrets.token_hex(16)  # 16 bytes: not a private key
    problems = live.credential_problems(planned, {"HL_KEY": bad})
    assert len(problems) == 1 and "HL_KEY" in problems[0] and bad not in problems[0]
    assert live.credential_problems(planned, {"HL_KEY": "0x" + secrets.token_hex(32)}) == []


def test_plan_refusals():
    hl_raw = {"accounts": [{"name": "p"}, HL]}
    common = cfg.load_common(hl_raw)
    env = {"HL_KEY": "0x" + secrets.token_hex(32)}
    services = ("risk", "execution")
    with pytest.raises(live.Refused, match=r"accounts\[1\] \(hl\).*--live") as info:
        live.plan(False, hl_raw, common, env, services)
    assert info.value.code == cfg.EXIT_CONFIG
    with pytest.raises(live.Refused, match="no account has mode: live") as info:
        live.plan(True, {}, cfg.load_common({}), env, services)
    assert info.value.code == cfg.EXIT_CONFIG
    with pytest.raises(live.Refused, match="set only by `ticktape up --live`"):
        live.plan(True, {**hl_raw, "live": True}, common, env, services)
    with pytest.raises(live.Refused, match="execution is not among") as info:
        live.plan(True, hl_raw, common, env, ("signal",))
    assert info.value.code == 2
    with pytest.raises(live.Refused, match="HL_KEY is not set"):
        live.plan(True, hl_raw, common, {}, services)
    (planned,) = live.plan(True, hl_raw, common, env, services)
    assert planned.position == 1 and planned.endpoint.url == hyperliquid.TESTNET_URL
    assert live.plan(False, {}, cfg.load_common({}), env, services) == ()


def test_only_execution_gets_credentials_and_only_the_live_accounts():
    common = _common({"name": "p", "api_key_env": "PAPER_KEY"}, HL)
    planned = [live.LiveAccount(1, common.accounts[1], live.endpoint(common.accounts[1], common, 1))]
    env = {"PATH": "/bin", "PAPER_KEY": "k1", "HL_KEY": "k2"}
    base, execution = live.split_credentials(env, common.accounts, planned)
    assert base == {"PATH": "/bin"} and execution == {"HL_KEY": "k2"}


def test_announcement_shows_every_limit_and_names_variables_not_values():
    limits = AccountLimits(max_drawdown=0.1, stop_loss=0.05)
    account = Account(name="hl", mode="live", venue="hyperliquid", wallet_key_env="HL_KEY", limits=limits)
    text = live.limits_text(account)
    assert "max_drawdown 0.1" in text and "stop_loss 0.05" in text and "max_daily_loss off" in text
    assert "max_leverage 10" in text and "on_shutdown leave" in text
    endpoint = live.Endpoint("hyperliquid", "mainnet", hyperliquid.MAINNET_URL, False)
    lines = live.announce([live.LiveAccount(0, account, endpoint)], {"risk": {"max_drawdown": 0.2}})
    assert any("HL_KEY" in line for line in lines) and any("max_drawdown 0.2" in line for line in lines)
    assert "MAINNET" in endpoint.describe()


def test_countdown_stops_as_soon_as_asked():
    out = io.StringIO()
    asked = time.monotonic()
    assert live.countdown(5, lambda: time.monotonic() - asked > 0.1, out) is False
    assert time.monotonic() - asked < 1.0
    assert out.getvalue() == "ticktape up: live trading in 5...\n"
    out = io.StringIO()
    assert live.countdown(5, lambda: True, out) is False and out.getvalue() == ""


def test_live_trading_stays_off_until_accounts_reconcile_on_start(monkeypatch):
    """Execution's live path exists and reconciles every live account on start before it trades
    (issue #8 item 8: services.execution.reconcile, tests/integration/test_execution_reconcile_venuesim.py),
    so up's gate lets live trading start; a build without either stops after its checks."""
    assert cfg.live_execution_available() is True
    assert live.RECONCILES_ON_START is True
    assert live.can_trade_live() is True
    monkeypatch.setattr(live, "RECONCILES_ON_START", False)
    assert live.can_trade_live() is False
