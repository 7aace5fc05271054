"""telemetry.metrics_host (where every metrics endpoint binds) and telemetry.otlp_metrics (metrics
pushed over OTLP beside the traces): defaults, environment overrides, refused values."""

from __future__ import annotations

import pytest

from ticktape.config import ConfigError, load_common, load_raw
from ticktape.metrics import metrics_url


def test_metrics_bind_loopback_and_go_over_otlp_by_default():
    telemetry = load_common({}).telemetry
    assert telemetry.metrics_host == "127.0.0.1"
    assert telemetry.otlp_metrics is True
    assert telemetry.otlp_endpoint is None


def test_the_environment_sets_the_host_the_endpoint_and_turns_otlp_metrics_off(tmp_path):
    path = tmp_path / "t.yaml"
    path.write_text("telemetry: {metrics_port: 9100}\n")
    raw = load_raw(
        path=path,
        env={
            # what docker-compose.yml sets for the ticktape container, and `ticktape up --otlp URL`
            "TICKTAPE_TELEMETRY__METRICS_HOST": "0.0.0.0",
            "TICKTAPE_TELEMETRY__OTLP_ENDPOINT": "http://127.0.0.1:4318",
            "TICKTAPE_TELEMETRY__OTLP_METRICS": "false",
        },
    )
    telemetry = load_common(raw).telemetry
    assert telemetry.metrics_host == "0.0.0.0"
    assert telemetry.metrics_port == 9100
    assert telemetry.otlp_endpoint == "http://127.0.0.1:4318"
    assert telemetry.otlp_metrics is False


@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0", "::", "::1", "localhost", "metrics.internal"])
def test_an_address_or_a_host_name_is_a_metrics_host(host):
    assert load_common({"telemetry": {"metrics_host": host}}).telemetry.metrics_host == host


@pytest.mark.parametrize("host", ["", "0.0.0.0:9100", "http://0.0.0.0", "two words", "-leading"])
def test_anything_else_is_a_config_error_naming_the_key(host):
    with pytest.raises(ConfigError, match="telemetry: metrics_host must be an IP address or a host name"):
        load_common({"telemetry": {"metrics_host": host}})


def test_printed_metrics_urls_put_an_ipv6_host_in_brackets():
    assert metrics_url("127.0.0.1", 9100) == "http://127.0.0.1:9100/metrics"
    assert metrics_url("0.0.0.0", 9101) == "http://0.0.0.0:9101/metrics"
    assert metrics_url("::", 9102) == "http://[::]:9102/metrics"
