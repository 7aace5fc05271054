"""deploy/ (collector, Tempo, Prometheus, Grafana and their compose file) must agree with itself
and with the code: Docker does not run here, so these checks are what keeps the files honest."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from ticktape import registry
from ticktape.metrics import ServiceMetrics, SupervisorMetrics, exported_names, service_ports

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.observability.yml"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))]


def _walk(node: Any) -> list[dict[str, Any]]:
    """Every dict inside a JSON document."""
    out = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out.extend(_walk(value))
    elif isinstance(node, list):
        for value in node:
            out.extend(_walk(value))
    return out


def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> host source for each volume of a compose service."""
    out = {}
    for entry in service.get("volumes", []):
        source, target, *_ = entry.split(":")
        out[target] = source
    return out


def _exported() -> set[str]:
    """Every metric name a ticktape process serves: the per-service registry, `ticktape up`'s own,
    and the audit service's extra counters (a registry built the way the service builds it)."""
    from services.audit.service import AuditMetrics

    names = ServiceMetrics("any").names() | exported_names(SupervisorMetrics().registry)
    return names | exported_names(AuditMetrics(ServiceMetrics("audit")).base.registry)


def test_every_file_parses_and_the_compose_mounts_exist():
    compose = _yaml(COMPOSE)
    assert set(compose["services"]) == {"otel-collector", "tempo", "prometheus", "grafana"}
    for name, service in compose["services"].items():
        assert service["network_mode"] == "host", f"{name}: the services' metrics and OTLP ports are on loopback"
        for target, source in _mounts(service).items():
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts {source} (for {target}), which does not exist"
    for path in DEPLOY.rglob("*.y*ml"):
        assert _yaml(path) is not None, path
    assert _dashboards(), "no dashboard"


def test_collector_pipeline_uses_defined_components_and_exports_to_tempo():
    config = _yaml(DEPLOY / "otel-collector" / "config.yaml")
    pipelines = config["service"]["pipelines"]
    assert "traces" in pipelines
    for pipeline in pipelines.values():
        for kind in ("receivers", "processors", "exporters"):
            assert set(pipeline.get(kind, [])) <= set(config.get(kind) or {}), f"undefined {kind} in a pipeline"
    http = config["receivers"]["otlp"]["protocols"]["http"]["endpoint"]
    assert http.endswith(":4318"), "the services' default OTLP/HTTP port (ticktape.example.yaml)"
    tempo = _yaml(DEPLOY / "tempo" / "tempo.yaml")
    tempo_otlp = tempo["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert [config["exporters"][e]["endpoint"] for e in pipelines["traces"]["exporters"]] == [tempo_otlp]
    assert tempo["storage"]["trace"]["backend"] == "local"
    # the collector and Tempo share the host network: their OTLP ports must differ
    assert tempo_otlp.rsplit(":", 1)[1] not in {"4317", "4318"}


def test_collector_and_tempo_run_with_the_mounted_configs():
    services = _yaml(COMPOSE)["services"]
    collector = services["otel-collector"]
    path = collector["command"][0].removeprefix("--config=")
    assert _mounts(collector)[path] == "./otel-collector/config.yaml"
    tempo = services["tempo"]
    path = tempo["command"][0].removeprefix("-config.file=")
    assert _mounts(tempo)[path] == "./tempo/tempo.yaml"


def test_prometheus_scrapes_up_and_every_service_on_the_ports_up_gives_them():
    config = _yaml(DEPLOY / "prometheus" / "prometheus.yml")
    assert config["rule_files"] == ["alerts.yml"]
    assert (DEPLOY / "prometheus" / "alerts.yml").exists()
    by_process = {}
    for job in config["scrape_configs"]:
        for static in job["static_configs"]:
            for target in static["targets"]:
                host, port = target.rsplit(":", 1)
                assert host == "127.0.0.1", "services serve metrics on loopback only"
                by_process[static["labels"]["process"]] = int(port)
    base = by_process.pop("up")
    names = registry.names()
    assert by_process == service_ports(base, names, names)
    services = _yaml(COMPOSE)["services"]
    prometheus = services["prometheus"]
    assert _mounts(prometheus)["/etc/prometheus"] == "./prometheus"
    assert "--config.file=/etc/prometheus/prometheus.yml" in prometheus["command"]
    assert f"telemetry.metrics_port: {base}" in (DEPLOY / "README.md").read_text()


def test_the_compose_stack_publishes_the_ports_prometheus_scrapes_on_the_hosts_loopback():
    """docker-compose.yml's `ticktape` container (`ticktape up`): up and every service bind their
    metrics on 0.0.0.0 (a container's loopback cannot be reached from outside it), and the container
    publishes exactly those ports on the host's 127.0.0.1, which are prometheus.yml's targets."""
    from ticktape import config as cfg

    stack = _yaml(ROOT / "docker-compose.yml")["services"]["ticktape"]
    env = {k: str(v) for k, v in stack["environment"].items() if k.startswith("TICKTAPE_TELEMETRY__")}
    telemetry = cfg.load_common(cfg.load_raw(path=ROOT / "ticktape.example.yaml", env=env)).telemetry
    assert telemetry.metrics_host == "0.0.0.0"
    assert not telemetry.otlp_metrics, "scraped: not pushed as well to the collector, which takes traces only"
    published: set[int] = set()
    for entry in stack["ports"]:
        host_ip, on_host, in_container = entry.split(":")
        assert host_ip == "127.0.0.1", "metrics stay on the host's loopback"
        assert on_host == in_container
        first, _, last = on_host.partition("-")
        published |= set(range(int(first), int(last or first) + 1))
    names = registry.names()
    base = telemetry.metrics_port
    api_port = int(stack["environment"]["TICKTAPE_API__PORT"])  # the HTTP API, published beside them
    assert published == {base, *service_ports(base, names, names).values(), api_port}
    config = _yaml(DEPLOY / "prometheus" / "prometheus.yml")
    scraped = {
        int(target.rsplit(":", 1)[1])
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert scraped == published - {api_port}


def test_grafana_datasources_and_dashboards_are_provisioned_where_grafana_reads_them():
    grafana = _yaml(COMPOSE)["services"]["grafana"]
    mounts = _mounts(grafana)
    assert mounts["/etc/grafana/provisioning"] == "./grafana/provisioning"
    providers = _yaml(DEPLOY / "grafana" / "provisioning" / "dashboards" / "dashboards.yml")["providers"]
    for provider in providers:
        assert mounts[provider["options"]["path"]] == "./grafana/dashboards"
    sources = _yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    kinds = {s["type"]: s for s in sources}
    prometheus = _yaml(COMPOSE)["services"]["prometheus"]["command"]
    listen = next(a for a in prometheus if a.startswith("--web.listen-address=")).split("=", 1)[1]
    assert kinds["prometheus"]["url"] == f"http://{listen}"
    tempo = _yaml(DEPLOY / "tempo" / "tempo.yaml")["server"]
    assert kinds["tempo"]["url"] == f"http://{tempo['http_listen_address']}:{tempo['http_listen_port']}"


def test_dashboards_refer_only_to_provisioned_datasources():
    sources = _yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    uids = {s["uid"]: s["type"] for s in sources}
    used = set()
    for dashboard in _dashboards():
        for node in _walk(dashboard):
            ds = node.get("datasource")
            if isinstance(ds, dict):
                assert uids.get(ds["uid"]) == ds["type"], f"{dashboard['title']}: unknown data source {ds}"
                used.add(ds["type"])
    assert used == {"prometheus", "tempo"}, "the pipeline dashboard shows metrics and traces"


_METRIC = re.compile(r"\bticktape_[a-z0-9_]+")


def test_every_metric_a_dashboard_queries_is_exported_by_the_code():
    exported = _exported()
    queried = set()
    for dashboard in _dashboards():
        for node in _walk(dashboard):
            if isinstance(node.get("expr"), str):
                queried |= set(_METRIC.findall(node["expr"]))
    assert queried, "no Prometheus query found"
    assert queried <= exported, sorted(queried - exported)
    # the pipeline's counters are on the dashboard
    for name in ("ticktape_published_total", "ticktape_dead_lettered_total", "ticktape_supervisor_restarts_total"):
        assert name in queried


def test_trace_panels_search_the_service_names_telemetry_sets():
    services = {f"ticktape-{name}" for name in registry.names()}
    for dashboard in _dashboards():
        variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
        if "service" in variables:
            assert set(variables["service"]["query"].split(",")) <= services
