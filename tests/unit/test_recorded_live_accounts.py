"""A live session's configuration as the session record stores it (ticktape.sessions: secret-named
keys such as api_key_env and api_secret_env dropped by ticktape.redact) loads again for replay
(SessionMeta.config_doc -> config.recorded_as_run): risk and execution rebuild their live accounts
from it without any credential variable, which a replay never reads."""

from __future__ import annotations

import json

import pytest

from services.execution.loading import recorded as execution_recorded
from services.risk.loading import recorded as risk_recorded
from ticktape import config as cfg
from ticktape.redact import redact
from ticktape.replay.records import SessionMeta

LIVE = {
    "live": True,
    "accounts": [
        {"name": "bn", "mode": "live", "venue": "binance_usdm", "network": "testnet",
         "api_key_env": "BN_KEY", "api_secret_env": "BN_SECRET", "strategies": ["*"]},
        {"name": "hl", "mode": "live", "venue": "hyperliquid", "network": "testnet", "wallet_key_env": "HL_KEY",
         "vault_address": "0x" + "ab" * 20, "strategies": ["*"]},
        {"name": "paper-main", "strategies": ["*"]},
    ],
}  # fmt: skip


def meta(doc: dict) -> SessionMeta:
    return SessionMeta(session_id="s", start_seq=1, stop_seq=2, started_ns=0, stopped_ns=1, reason="stopped",
                       config_hash="", config=json.dumps(doc), code_version="test", services=())  # fmt: skip


def test_the_record_drops_binance_credential_names() -> None:
    [bn, hl, _] = redact(LIVE)["accounts"]
    assert "api_key_env" not in bn and "api_secret_env" not in bn  # what made the replay refuse it
    with pytest.raises(cfg.ConfigError, match="api_key_env is missing"):
        cfg.load_accounts(redact(LIVE))


def test_a_recorded_live_configuration_loads_for_replay_with_every_account() -> None:
    doc = meta(redact(LIVE)).config_doc()
    execution = execution_recorded(doc)
    risk = risk_recorded(doc)
    assert [(a.name, a.mode) for a in execution.accounts] == [("bn", "live"), ("hl", "live"), ("paper-main", "paper")]
    assert [a.name for a in risk.accounts] == ["bn", "hl", "paper-main"]
    [bn, hl, paper] = execution.accounts
    assert bn.api_key_env == bn.api_secret_env == cfg.RECORDED_WITHOUT_NAME
    assert hl.wallet_key_env == "HL_KEY" and hl.vault_address == "0x" + "ab" * 20  # recorded: kept as they were
    assert paper.api_key_env is None


def test_names_a_recording_kept_are_not_replaced() -> None:
    doc = cfg.recorded_as_run(LIVE)
    assert doc["accounts"] == LIVE["accounts"]
    assert cfg.recorded_as_run({"signal": {}})["signal"]  # documents without accounts: as before
