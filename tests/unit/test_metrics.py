"""Metrics: the port each service gets under `ticktape up`, a port that cannot be bound, the new
gauges, and the Prometheus alert rules (deploy/prometheus/alerts.yml) checked against the names
the code exports."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from ticktape import config as cfg
from ticktape import registry, runtime
from ticktape.cli import up
from ticktape.metrics import ServiceMetrics, SupervisorMetrics, exported_names, service_ports

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
# PromQL words that are not metric names (aggregations and functions are followed by "(")
KEYWORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
CLAUSE = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
NAME = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression selects: strings, label matchers, ranges and
    grouping clauses removed, then every identifier that is not a function call or keyword."""
    text = re.sub(r'"[^"]*"', "", expr)
    text = re.sub(r"\{[^}]*\}", "", text)
    text = re.sub(r"\[[^\]]*\]", "", text)
    text = CLAUSE.sub("", text)
    return {n for n in NAME.findall(text) if n.lower() not in KEYWORDS}


def all_exported() -> set[str]:
    return exported_names(ServiceMetrics("any").registry) | exported_names(SupervisorMetrics().registry)


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port some other process listens on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


def test_service_ports_when_base_is_zero_then_metrics_are_off():
    assert service_ports(0, registry.names(), registry.names()) == {}


def test_service_ports_follow_the_registry_order_after_ticktape_ups_own_port():
    known = registry.names()
    ports = service_ports(20000, known, known)
    assert list(ports) == list(known)
    assert list(ports.values()) == [20001 + i for i in range(len(known))]
    assert len(set(ports.values())) == len(known)


def test_service_ports_of_a_subset_do_not_move():
    known = registry.names()
    picked = (known[-1], known[1])
    assert service_ports(30000, picked, known) == {known[-1]: 30000 + len(known), known[1]: 30002}


def test_service_ports_past_65535_are_refused_naming_the_key():
    known = registry.names()
    with pytest.raises(ValueError, match=r"telemetry\.metrics_port"):
        service_ports(65535 - len(known) + 1, known, known)
    assert max(service_ports(65535 - len(known), known, known).values()) == 65535


def test_up_when_a_service_port_is_taken_then_config_error(taken_port):
    known = registry.names()
    base = taken_port - 1 - known.index("risk")
    if base < 1024:
        pytest.skip("the taken port is too low to be a service's")
    with pytest.raises(cfg.ConfigError, match=r"telemetry\.metrics_port: port \d+ \(for risk"):
        up._serve_metrics(base, ("risk",), known)


def test_up_when_its_own_port_is_taken_then_config_error(taken_port):
    with pytest.raises(cfg.ConfigError, match=r"telemetry\.metrics_port"):
        up._serve_metrics(taken_port, (), registry.names())


def test_up_when_metrics_off_then_nothing_served():
    assert up._serve_metrics(0, registry.names(), registry.names()) is None


def test_service_when_its_port_is_taken_then_exits_78(taken_port):
    with pytest.raises(SystemExit) as exc:
        runtime.serve_metrics("signal", ServiceMetrics("signal"), taken_port)
    assert exc.value.code == cfg.EXIT_CONFIG


def test_account_peak_keeps_the_highest_equity():
    m = ServiceMetrics("execution")
    for equity in (10_000.0, 10_500.0, 9_000.0):
        m.account("main", equity, 1.0, -1.0)
    assert m.value("ticktape_account_equity", account="main") == 9_000.0
    assert m.value("ticktape_account_equity_peak", account="main") == 10_500.0
    assert m.value("ticktape_account_gross_exposure", account="main") == 1.0


def test_bar_age_counts_from_the_latest_close():
    import time

    m = ServiceMetrics("market_data")
    now = time.time_ns()
    m.bar_published("sim", now - 120 * 10**9)
    m.bar_published("sim", now - 200 * 10**9)  # an older bar (a backfill) does not make it younger
    age = m.value("ticktape_bar_age_seconds", venue="sim")
    assert 120 <= age < 150
    assert m.value("ticktape_last_bar_close_time_seconds", venue="sim") == pytest.approx((now - 120 * 10**9) / 1e9)


def test_supervisor_counts_restarts_per_service():
    m = SupervisorMetrics()
    m.started("risk")
    m.exited("risk")
    m.restarted("risk")
    m.started("risk")
    samples = {(s.name, s.labels.get("service")): s.value for metric in m.registry.collect() for s in metric.samples}
    assert samples[("ticktape_supervisor_restarts_total", "risk")] == 1
    assert samples[("ticktape_supervisor_service_running", "risk")] == 1


def test_metric_names_finds_names_and_not_functions_labels_or_ranges():
    expr = 'max by (venue) (a_metric{x="b_label"}) > 3 and on (service) rate(c_total[5m]) == 0'
    assert metric_names(expr) == {"a_metric", "c_total"}


def test_alert_rules_reference_only_exported_metrics():
    doc = yaml.safe_load(ALERTS.read_text())
    rules = [rule for group in doc["groups"] for rule in group["rules"]]
    names = {rule["alert"] for rule in rules}
    assert {
        "TicktapeMarketDataStalled",
        "TicktapeConsumerLag",
        "TicktapeDeadLetters",
        "TicktapeDrawdown",
        "TicktapeAccountHalted",
        "TicktapeCrashLoop",
    } <= names
    exported = all_exported()
    for rule in rules:
        used = metric_names(rule["expr"])
        assert used, f"{rule['alert']}: no metric in {rule['expr']!r}"
        assert used <= exported, f"{rule['alert']} uses metrics nobody exports: {sorted(used - exported)}"


def test_alert_rule_check_catches_an_unknown_metric():
    assert metric_names("rate(ticktape_no_such_thing_total[5m]) > 0") - all_exported() == {
        "ticktape_no_such_thing_total"
    }


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_alert_rules_pass_promtool():
    result = subprocess.run(["promtool", "check", "rules", str(ALERTS)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
