"""deploy/ (collector, Tempo, Prometheus, Grafana and their compose file) must agree with itself
and with the code: Docker does not run here, so these checks are what keeps the files honest."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from tests.unit.test_metrics import metric_names
from ticktape import registry
from ticktape.metrics import ORDER_EVENTS, ServiceMetrics, SupervisorMetrics, exported_names, service_ports

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE = DEPLOY / "docker-compose.observability.yml"


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _dashboards() -> list[dict[str, Any]]:
    return [json.loads(p.read_text()) for p in sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))]


def _dashboard(uid: str) -> dict[str, Any]:
    (found,) = [d for d in _dashboards() if d["uid"] == uid]
    return found


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
_LABEL_VALUES = re.compile(r"label_values\((?P<metric>[a-z_:][a-z0-9_:]*), *(?P<label>[a-z_][a-z0-9_]*)\)")
_VARIABLE = re.compile(r"\$\{?(\w+)")
DASHBOARDS = ("ticktape-pipeline", "ticktape-market-data", "ticktape-trading", "ticktape-trace")
PANEL_TYPES = {"row", "text", "timeseries", "stat", "table", "heatmap", "traces", "bargauge", "gauge"}
# the latency histograms whose observations carry exemplars (their buckets are what panels query)
_HISTOGRAMS = {
    "ticktape_tick_to_output_seconds_bucket",
    "ticktape_core_handle_seconds_bucket",
    "ticktape_publish_ack_seconds_bucket",
}


def _queried(dashboard: dict[str, Any]) -> set[str]:
    """Every metric name a dashboard's Prometheus queries select: the panels' expressions and
    the query variables' label_values(metric, label)."""
    queried: set[str] = set()
    for node in _walk(dashboard):
        if isinstance(node.get("expr"), str):
            queried |= metric_names(node["expr"]) | set(_METRIC.findall(node["expr"]))
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable["type"] == "query":
            for query in (variable["definition"], variable["query"]["query"]):
                match = _LABEL_VALUES.fullmatch(query)
                assert match, (
                    f"{dashboard['uid']}: variable {variable['name']}: {query!r} is not label_values(metric, label)"
                )
                queried.add(match["metric"])
    return queried


def test_every_metric_a_dashboard_queries_is_exported_by_the_code() -> None:
    exported = _exported()
    for dashboard in _dashboards():
        queried = _queried(dashboard)
        assert queried, f"{dashboard['uid']}: no Prometheus query found"
        assert queried <= exported, f"{dashboard['uid']} queries series nobody exports: {sorted(queried - exported)}"


def test_each_dashboard_shows_what_it_is_for() -> None:
    by_uid = {d["uid"]: _queried(d) for d in _dashboards()}
    assert set(by_uid) == set(DASHBOARDS)
    # the pipeline's counters
    assert {"ticktape_published_total", "ticktape_dead_lettered_total", "ticktape_supervisor_restarts_total"} <= by_uid[
        "ticktape-pipeline"
    ]
    assert {
        "ticktape_bars_published_total",
        "ticktape_bar_age_seconds",
        "ticktape_ws_reconnects_total",
        "ticktape_rejected_total",
        "ticktape_consumer_lag",
    } <= by_uid["ticktape-market-data"]
    assert {
        "ticktape_account_equity",
        "ticktape_account_equity_peak",
        "ticktape_account_gross_exposure",
        "ticktape_account_net_exposure",
        "ticktape_account_halted",
        "ticktape_order_events_total",
    } <= by_uid["ticktape-trading"]
    trading = json.dumps(_dashboard("ticktape-trading"))
    for kind in ("exec.order.submitted", "exec.order.filled", "risk.order.rejected"):
        assert kind in trading and kind in ORDER_EVENTS
    assert "sum by (account, reason)" in trading, "risk rejections by reason"
    assert {"ticktape_tick_to_output_seconds_bucket"} <= by_uid["ticktape-trace"]
    trace = _dashboard("ticktape-trace")
    assert {p["type"] for p in trace["panels"]} >= {"traces", "table", "heatmap", "timeseries"}


def test_dashboards_are_well_formed_grafana_documents() -> None:
    """What Grafana needs to load a provisioned dashboard and run its panels: a unique uid (at
    most 40 of [A-Za-z0-9_-]) and title, panels with unique ids on the 24-column grid, a provisioned
    data source on every query with a query in the language of its type, and only variables the
    dashboard defines (or Grafana's own $__ ones)."""
    sources = _yaml(DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml")["datasources"]
    uids = {s["uid"]: s["type"] for s in sources}
    seen_uids, seen_titles = set(), set()
    for dashboard in _dashboards():
        uid = dashboard["uid"]
        assert re.fullmatch(r"[A-Za-z0-9_-]{1,40}", uid), uid
        assert uid not in seen_uids and dashboard["title"] not in seen_titles
        seen_uids.add(uid)
        seen_titles.add(dashboard["title"])
        assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
        variables = {v["name"] for v in dashboard.get("templating", {}).get("list", [])}
        panels = dashboard["panels"]
        assert panels, uid
        ids = [p["id"] for p in panels]
        assert len(ids) == len(set(ids)), f"{uid}: panel ids repeat"
        for panel in panels:
            where = f"{uid} panel {panel['id']} ({panel.get('title')})"
            assert panel["type"] in PANEL_TYPES, where
            grid = panel["gridPos"]
            assert grid["x"] >= 0 and grid["w"] > 0 and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, where
            if panel["type"] in ("row", "text"):
                assert "targets" not in panel, where
                continue
            ds = panel["datasource"]
            assert uids.get(ds["uid"]) == ds["type"], where
            refs = [t["refId"] for t in panel["targets"]]
            assert refs and len(refs) == len(set(refs)), where
            for target in panel["targets"]:
                tds = target.get("datasource", ds)
                assert uids.get(tds["uid"]) == tds["type"], where
                if tds["type"] == "prometheus":
                    assert target["expr"].strip(), where
                else:
                    assert target["queryType"] in ("traceql", "traceqlSearch") and target["query"].strip(), where
        for node in _walk(dashboard):
            for key in ("expr", "query", "title", "url", "definition"):
                if isinstance(node.get(key), str):
                    for name in _VARIABLE.findall(node[key]):
                        assert name in variables or name.startswith("__"), f"{uid}: ${name} in {node[key]!r}"


def test_exemplars_link_to_the_provisioned_tempo_and_the_trace_dashboard() -> None:
    """The services' exemplar label (ticktape.metrics.trace_exemplar) is what Grafana's Prometheus
    data source turns into a link to the Tempo data source, and into the trace dashboard."""
    from opentelemetry.sdk.trace import TracerProvider

    from ticktape.metrics import trace_exemplar

    with TracerProvider().get_tracer("test").start_as_current_span("span"):
        label = trace_exemplar()
    assert label is not None and set(label) == {"trace_id"}
    text = (DEPLOY / "grafana" / "provisioning" / "datasources" / "datasources.yml").read_text()
    sources = yaml.safe_load(text)["datasources"]
    by_type = {s["type"]: s for s in sources}
    destinations = by_type["prometheus"]["jsonData"]["exemplarTraceIdDestinations"]
    assert all(d["name"] == "trace_id" for d in destinations)
    assert {"name": "trace_id", "datasourceUid": by_type["tempo"]["uid"]} in destinations
    # Grafana expands $NAME and ${NAME} in provisioning files (environment variables); $$ is a
    # literal $, so each $ of a link's ${__value.raw} must be doubled
    (url,) = [d["url"] for d in destinations if "url" in d]
    assert re.search(r"(?<!\$)\$(?!\$)", url) is None, f"{url}: a single $ would be expanded from the environment"
    url = url.replace("$$", "$")
    match = re.fullmatch(r"/d/(?P<uid>[\w-]+)\?var-(?P<var>\w+)=\$\{__value\.raw\}", url)
    assert match, url
    target = _dashboard(match["uid"])
    assert match["var"] in {v["name"] for v in target["templating"]["list"]}
    traces = [p for p in target["panels"] if p["type"] == "traces"]
    assert traces and traces[0]["targets"][0]["query"] == "${" + match["var"] + "}"


def test_prometheus_keeps_the_exemplars_the_services_expose() -> None:
    command = _yaml(COMPOSE)["services"]["prometheus"]["command"]
    assert "--enable-feature=exemplar-storage" in command
    for job in _yaml(DEPLOY / "prometheus" / "prometheus.yml")["scrape_configs"]:
        assert job["scrape_protocols"][0] == "OpenMetricsText1.0.0", "exemplars travel only in OpenMetrics"
    # and the latency panels ask Grafana to show them
    for uid in ("ticktape-trace", "ticktape-market-data"):
        exemplar_exprs = [
            t["expr"] for p in _dashboard(uid)["panels"] for t in p.get("targets", []) if t.get("exemplar") is True
        ]
        assert exemplar_exprs, uid
        for expr in exemplar_exprs:
            assert metric_names(expr) & _HISTOGRAMS, expr
    trace = _dashboard("ticktape-trace")
    with_exemplars = {
        name
        for p in trace["panels"]
        for t in p.get("targets", [])
        if t.get("exemplar")
        for name in metric_names(t["expr"])
    }
    assert with_exemplars == _HISTOGRAMS


def test_readme_lists_every_dashboard() -> None:
    readme = (DEPLOY / "README.md").read_text()
    for dashboard in _dashboards():
        assert f"*{dashboard['title']}*" in readme, dashboard["title"]
    assert "exemplar" in readme.lower()


def test_trace_panels_search_the_service_names_telemetry_sets():
    services = {f"ticktape-{name}" for name in registry.names()}
    for dashboard in _dashboards():
        variables = {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}
        if "service" in variables:
            assert set(variables["service"]["query"].split(",")) <= services
