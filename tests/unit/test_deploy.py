"""docker-compose.yml and the example config must match the code."""

from __future__ import annotations

from pathlib import Path

import yaml

from ticktape import config as cfg
from ticktape import registry

ROOT = Path(__file__).resolve().parents[2]
INFRA = {"nats", "timescaledb", "bus-init", "provision"}
STACK = "ticktape"  # every service under `ticktape up`, the default
PER_SERVICE = ["per-service"]  # the profile of the one-container-per-service layout


def test_compose_runs_every_service_module_from_one_image():
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = compose["services"]
    assert set(services) - INFRA - {STACK} == set(registry.names()), "docker-compose.yml must run exactly the registry"
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
    known = set(cfg.ENV_ALIASES) | {"TICKTAPE_CONFIG", "OTEL_EXPORTER_OTLP_ENDPOINT", "TICKTAPE_NATS__CREDS"}
    assert set(env) <= known, set(env) - known
    raw = cfg.load_raw(path=ROOT / "ticktape.example.yaml", env={k: v for k, v in env.items() if k in cfg.ENV_ALIASES})
    common = cfg.load_common(raw)
    assert common.nats.url == "nats://nats:4222"
    assert common.postgres.dsn and common.postgres.dsn.startswith("postgresql://")


def test_example_config_is_valid_for_every_service():
    raw = cfg.load_raw(path=ROOT / "ticktape.example.yaml", env={})
    cfg.load_common(raw)
    for info in registry.services():
        assert info.name in raw, f"example config lacks a {info.name} section"
        cfg.load_section(info.name, registry.config_type(info), raw)


def test_compose_runs_the_timescaledb_image_the_docker_tests_run():
    from ticktape.testing.timescaledb import TIMESCALEDB_IMAGE

    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert compose["services"]["timescaledb"]["image"] == TIMESCALEDB_IMAGE


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def _mounts(service: dict) -> dict[str, str]:
    """target -> 'source' or 'source:ro' for each volume of a compose service."""
    out = {}
    for entry in service.get("volumes", []):
        source, target, *mode = entry.split(":")
        out[target] = source + (":ro" if mode == ["ro"] else "")
    return out


def _common(env: dict[str, str]) -> cfg.CommonSettings:
    return cfg.load_common(cfg.load_raw(path=ROOT / "ticktape.example.yaml", env=env))


def test_compose_nats_runs_with_the_generated_authorization_and_no_anonymous_access():
    services = _compose()["services"]
    nats, init = services["nats"], services["bus-init"]
    command = nats["command"]
    assert "-c" in command, "compose's NATS must start with the config that bus-init writes"
    conf = command[command.index("-c") + 1]
    # nothing on the command line lets a client in without credentials
    anonymous = {"--no_auth_user", "--user", "--pass", "--auth", "-DV"}
    assert not anonymous & set(command)
    assert nats["depends_on"]["bus-init"]["condition"] == "service_completed_successfully"
    assert init["command"][-3:] == ["creds", "--nats-conf", conf]
    conf_dir = str(Path(conf).parent)
    volume = _mounts(nats)[conf_dir].removesuffix(":ro")
    assert _mounts(init)[conf_dir] == volume, "bus-init must write the config into the volume NATS reads"


def test_compose_bus_init_writes_a_config_that_admits_only_the_roles(tmp_path, monkeypatch, capsys):
    from ticktape.bus import permissions
    from ticktape.cli.main import main

    init = _compose()["services"]["bus-init"]
    for key, value in init["environment"].items():
        if key in cfg.ENV_ALIASES:
            monkeypatch.setenv(key, value)
    monkeypatch.setenv("TICKTAPE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("TICKTAPE_CONFIG", str(ROOT / "ticktape.example.yaml"))
    conf = tmp_path / "nats-server.conf"
    assert main(["creds", "--nats-conf", str(conf)]) == 0
    text = conf.read_text()
    assert conf.stat().st_mode & 0o077 == 0
    assert "no_auth_user" not in text
    users = [line for line in text.splitlines() if '"user":' in line]
    assert len(users) == len(permissions.roles())
    assert all('"password":' in line for line in users)


def test_compose_services_connect_with_their_own_credentials_read_only():
    from ticktape.bus import creds

    services = _compose()["services"]
    for info in registry.services():
        service = services[info.name]
        env = {k: v for k, v in service["environment"].items() if k in cfg.ENV_ALIASES}
        common = _common(env)
        directory = creds.creds_dir(common)
        assert service["environment"]["TICKTAPE_NATS__CREDS"] == str(creds.path_for(directory, info.name))
        assert _mounts(service)[str(directory)].endswith(":ro")
        assert service["depends_on"]["provision"]["condition"] == "service_completed_successfully"
    provision = services["provision"]
    assert provision["command"][3] == "provision"
    env = {k: v for k, v in provision["environment"].items() if k in cfg.ENV_ALIASES}
    assert provision["environment"]["TICKTAPE_NATS__CREDS"] == str(
        creds.path_for(creds.creds_dir(_common(env)), "admin")
    )


def test_compose_mounts_only_files_a_fresh_clone_has():
    """A bind mount of a missing file makes Docker create a directory there (and the config
    loader then fails): every host path docker-compose.yml mounts must be in the repository
    (tracked by git, when this is a checkout: a local ticktape.yaml is not in a fresh clone)."""
    import subprocess

    services = _compose()["services"]
    for name, service in services.items():
        for entry in service.get("volumes", []):
            source = entry.split(":")[0]
            if not source.startswith((".", "/")):
                continue  # a named volume
            assert (ROOT / source).exists(), f"{name} mounts {source}, which a fresh clone does not have"
            if (ROOT / ".git").exists():
                tracked = subprocess.run(["git", "ls-files", "--error-unmatch", source], cwd=ROOT, capture_output=True)
                assert tracked.returncode == 0, f"{name} mounts {source}, which is not in the repository"
    signal = services["signal"]
    mounted = {target: source for source, target, *_ in (e.split(":") for e in signal["volumes"])}
    assert mounted[signal["environment"]["TICKTAPE_CONFIG"]] == "./ticktape.example.yaml"


def test_compose_runs_the_services_under_ticktape_up_by_default_so_sessions_are_recorded():
    """`docker compose up` starts the infrastructure and one `ticktape up` (which records each run
    as a session); the per-service containers only with their profile, never both by default."""
    from ticktape.bus import creds
    from ticktape.infra.ports import is_loopback

    services = _compose()["services"]
    for name in (*INFRA, STACK):
        assert "profiles" not in services[name], f"{name} must start by default"
    for info in registry.services():
        assert services[info.name]["profiles"] == PER_SERVICE, f"{info.name} would run twice with {STACK}"
    stack = services[STACK]
    assert stack["command"] == ["python", "-m", "ticktape", "up"]
    assert stack["image"] == "ticktape:latest"
    assert stack["depends_on"]["provision"]["condition"] == "service_completed_successfully"
    assert stack["depends_on"]["timescaledb"]["condition"] == "service_healthy"
    common = _common({k: v for k, v in stack["environment"].items() if k in cfg.ENV_ALIASES})
    # up then uses compose's servers: an existing NATS (never embedded off loopback), an external DSN
    assert common.nats.url == "nats://nats:4222" and not is_loopback("nats")
    pg = services["timescaledb"]["environment"]
    assert common.postgres.dsn == (
        f"postgresql://{pg['POSTGRES_USER']}:{pg['POSTGRES_PASSWORD']}@timescaledb:5432/{pg['POSTGRES_DB']}"
    )
    assert "TICKTAPE_NATS__CREDS" not in stack["environment"], "up hands each service its own file"
    mounts = _mounts(stack)
    directory = str(creds.creds_dir(common))
    assert mounts[directory] == _mounts(services["bus-init"])[directory] + ":ro", "bus-init's credentials, read-only"
    assert mounts[stack["environment"]["TICKTAPE_HOME"]] in _compose()["volumes"], "the home (sessions) is kept"
    archive = _mounts(services["archive"])
    for target in ("/var/lib/ticktape/nats/jetstream", "/var/lib/ticktape/postgres"):
        assert mounts[target] == archive[target], "the storage watch reads the stores where archive alone does"
    grace = float(str(stack["stop_grace_period"]).removesuffix("s"))
    assert grace > common.supervisor.stop_timeout_s, "Docker must not SIGKILL up before its own stop ends"
