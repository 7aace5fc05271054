"""Configuration: typed, strict, overridable from the environment, errors name the key path."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.risk.config import RiskConfig
from services.signal.config import SignalConfig
from ticktape import config as cfg
from ticktape.config import ConfigError, load_common, load_raw, load_section


def test_empty_config_then_every_default_applies():
    common = load_common({})
    assert common.nats.url == "nats://127.0.0.1:4222" and common.home == ".ticktape"
    assert load_section("risk", RiskConfig, {}).accounts


def test_unknown_key_then_error_names_path_and_allowed_keys():
    with pytest.raises(ConfigError) as info:
        load_section("risk", RiskConfig, {"risk": {"acounts": []}})
    message = str(info.value)
    assert "risk.acounts: unknown key" in message and "accounts" in message


def test_nested_bad_value_then_error_names_the_full_path_and_value():
    raw = {"accounts": [{"name": "a", "limits": {"fraction": -1}}]}
    with pytest.raises(ConfigError) as info:
        load_common(raw)
    assert "accounts[0].limits.fraction" in str(info.value) and "-1" in str(info.value)


def test_unknown_section_then_error_lists_sections(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("riks: {}\n")
    with pytest.raises(ConfigError, match="riks: unknown section"):
        load_raw(path=path, env={})


def test_invalid_yaml_then_clear_error(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("risk: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_raw(path=path, env={})


def test_environment_overrides_file_values(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("nats: {url: nats://file:4222}\nsignal: {timeframe: 1m}\n")
    raw = load_raw(
        path=path,
        env={
            "TICKTAPE_NATS_URL": "nats://env:4222",
            "TICKTAPE_SIGNAL__TIMEFRAME": "5m",
            "TICKTAPE_PG_DSN": "postgresql://x/y",
            "TICKTAPE_TELEMETRY__METRICS_PORT": "9100",
        },
    )
    common = load_common(raw)
    assert common.nats.url == "nats://env:4222"
    assert common.postgres.dsn == "postgresql://x/y"
    assert common.telemetry.metrics_port == 9100
    assert load_section("signal", SignalConfig, raw).timeframe == "5m"


def test_cross_field_rule_then_error_says_what_is_allowed():
    raw = {"signal": {"timeframe": "7m"}}
    with pytest.raises(ConfigError, match="signal: timeframe must be one of"):
        load_section("signal", SignalConfig, raw)


def test_config_hash_changes_with_the_effective_config():
    a = cfg.config_hash(load_common({}))
    b = cfg.config_hash(load_common({"nats": {"url": "nats://other:4222"}}))
    assert a != b and a == cfg.config_hash(load_common({}))


def _run_service(module: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    import os

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", module, *args], env=full_env, capture_output=True, text=True, timeout=60
    )


def test_service_with_invalid_config_then_exits_78_before_connecting(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("accounts:\n  - name: a\n    limits:\n      max_gross_exposure: -5\n")
    # an unreachable NATS URL proves the config is rejected before any connection attempt
    result = _run_service("services.risk", {"TICKTAPE_CONFIG": str(path), "TICKTAPE_NATS_URL": "nats://127.0.0.1:9"})
    assert result.returncode == cfg.EXIT_CONFIG
    assert "accounts[0].limits.max_gross_exposure" in result.stderr


def test_execution_live_flag_then_refused_without_connecting():
    result = _run_service("services.execution", {"TICKTAPE_NATS_URL": "nats://127.0.0.1:9"}, "--live")
    assert result.returncode == 2
    assert "ticktape up --live" in result.stderr  # the way in, with its checks and countdown


def test_ticktape_up_live_flag_without_a_live_account_then_refused_as_a_config_error():
    result = _run_service("ticktape", {}, "up", "--live")
    assert result.returncode == cfg.EXIT_CONFIG


def test_execution_mode_live_in_config_then_rejected():
    from services.execution.config import ExecutionConfig

    with pytest.raises(ConfigError, match="execution.mode"):
        load_section("execution", ExecutionConfig, {"execution": {"mode": "live"}})
