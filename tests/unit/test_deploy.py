"""docker-compose.yml and the example config must match the code."""

from __future__ import annotations

from pathlib import Path

import yaml

from ticktape import config as cfg
from ticktape import registry

ROOT = Path(__file__).resolve().parents[2]
INFRA = {"nats", "timescaledb"}


def test_compose_runs_every_service_module_from_one_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) - INFRA == set(registry.names()), "docker-compose.yml must run exactly the registry"
    for info in registry.services():
        assert services[info.name]["command"] == ["python", "-m", info.module]
        assert ROOT.joinpath(*info.module.split("."), "__main__.py").exists()
        assert services[info.name]["image"] == "ticktape:latest"
    assert "-js" in services["nats"]["command"]
    assert "timescale" in services["timescaledb"]["image"]


def test_image_copies_every_service_package_and_installs_the_registry():
    dockerfile = (ROOT / "Dockerfile").read_text()
    for top in sorted({info.module.split(".")[0] for info in registry.services()}):
        assert f"COPY {top} ./{top}" in dockerfile
    # the registry is the package's entry-point metadata, so the image must install the project
    assert "COPY pyproject.toml" in dockerfile and "pip install" in dockerfile


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
    for info in registry.services():
        assert raw.get(info.name), f"example config lacks a {info.name} section"
        cfg.load_section(info.name, registry.config_type(info), raw)


def test_compose_runs_the_timescaledb_image_the_docker_tests_run():
    from ticktape.testing.timescaledb import TIMESCALEDB_IMAGE

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["timescaledb"]["image"] == TIMESCALEDB_IMAGE
