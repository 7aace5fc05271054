"""docker-compose.yml and the example config must match the code."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

from ticktape import config as cfg

ROOT = Path(__file__).resolve().parents[2]
SECTION_TYPES = {
    "market_data": ("services.market_data.config", "MarketDataConfig"),
    "symbol_registry": ("services.symbol_registry.config", "SymbolRegistryConfig"),
    "signal": ("services.signal.config", "SignalConfig"),
    "risk": ("services.risk.config", "RiskConfig"),
    "execution": ("services.execution.config", "ExecutionConfig"),
    "audit": ("services.audit.config", "AuditConfig"),
    "archive": ("services.archive.config", "ArchiveConfig"),
}


def _type(section: str) -> type:
    module, name = SECTION_TYPES[section]
    return getattr(importlib.import_module(module), name)


def test_compose_runs_every_service_module_from_one_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    for name in cfg.SERVICE_SECTIONS:
        assert services[name]["command"] == ["python", "-m", f"services.{name}"]
        assert (ROOT / "services" / name / "__main__.py").exists()
        assert services[name]["image"] == "ticktape:latest"
    assert "-js" in services["nats"]["command"]
    assert "timescale" in services["timescaledb"]["image"]


def test_compose_environment_uses_only_settings_the_code_reads():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    env = compose["services"]["signal"]["environment"]
    known = set(cfg.ENV_ALIASES) | {"TICKTAPE_CONFIG", "OTEL_EXPORTER_OTLP_ENDPOINT"}
    assert set(env) <= known, set(env) - known
    raw = cfg.load_raw(path=ROOT / "ticktape.example.yaml", env={k: v for k, v in env.items() if k in cfg.ENV_ALIASES})
    common = cfg.load_common(raw)
    assert common.nats.url == "nats://nats:4222"
    assert common.postgres.dsn and common.postgres.dsn.startswith("postgresql://")


def test_example_config_is_valid_for_every_service():
    raw = cfg.load_raw(path=ROOT / "ticktape.example.yaml", env={})
    cfg.load_common(raw)
    for section in cfg.SERVICE_SECTIONS:
        assert raw.get(section), f"example config lacks a {section} section"
        cfg.load_section(section, _type(section), raw)
