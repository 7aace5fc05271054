"""`ticktape up` with metrics on (telemetry.metrics_port as a base port): every service serves its
own port, none exits with "address in use" and none is restarted, and each printed URL answers
Prometheus text with its service's label and the lag, bar-age, latency, account and supervisor
metrics, on the venue simulator's recorded bars."""

from __future__ import annotations

import json
import random
import socket
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.recorded import convert_octobot
from ticktape import registry
from ticktape.testing.stack import Stack, VenueSim, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

SERVICES = registry.names()
CONFIG = "symbol_registry: {top_n: 3}\n"
PREFIX = "ticktape up: metrics "


def free_range(count: int) -> int:
    """A base port with `count` consecutive free ports from it (probed: no fixed port)."""
    rng = random.Random()
    for _ in range(200):
        base = rng.randrange(20000, 60000 - count)
        socks = []
        try:
            for port in range(base, base + count):
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                socks.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in socks:
                sock.close()
    raise RuntimeError(f"no {count} consecutive free ports found")


def printed_urls(home: Path) -> list[str] | None:
    try:
        lines = (home / "up.out").read_text().splitlines()
    except OSError:
        return None
    urls = [line.removeprefix(PREFIX) for line in lines if line.startswith(PREFIX)]
    return urls if len(urls) == len(SERVICES) + 1 else None


def scrape(url: str) -> dict[str, list[tuple[dict[str, str], float]]] | None:
    """{sample name: [(labels, value)]} of one endpoint, None while it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples.setdefault(s.name, []).append((s.labels, s.value))
    return samples


def has(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> bool:
    return any(all(lab.get(k) == v for k, v in labels.items()) for lab, _ in samples.get(name, []))


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    return sum(v for lab, v in samples.get(name, []) if all(lab.get(k) == v for k, v in labels.items()))


# what each service's endpoint must show once bars flow (beyond its service label)
def ready(service: str, s: dict[str, list[tuple[dict[str, str], float]]]) -> bool:
    if not has(s, "ticktape_received_total", service=service):
        return False
    if service == "market_data":
        return (
            has(s, "ticktape_bar_age_seconds", service=service)
            and has(s, "ticktape_ws_reconnects_total", service=service, shard="0")
            and total(s, "ticktape_ws_shard_connected", service=service, shard="0") == 1.0
            and total(s, "ticktape_publish_ack_seconds_count", service=service) > 0
        )
    if service in ("audit", "archive"):  # the sinks' durables
        return has(s, "ticktape_consumer_lag", service=service)
    if service in ("signal", "risk", "execution"):
        done = (
            has(s, "ticktape_consumer_lag", service=service, durable=service)
            and total(s, "ticktape_core_handle_seconds_count", service=service) > 0
        )
        if service == "signal":  # signals out: per-hop latency and publish acks measured
            done = (
                done
                and total(s, "ticktape_tick_to_output_seconds_count", service=service) > 0
                and total(s, "ticktape_publish_ack_seconds_count", service=service) > 0
            )
        if service == "risk":
            done = done and has(s, "ticktape_account_halted", service=service)
        if service == "execution":
            done = (
                done
                and has(s, "ticktape_account_equity", service=service)
                and has(s, "ticktape_account_gross_exposure", service=service)
            )
        return done
    return True


def test_up_serves_each_services_metrics_on_its_own_port_without_restarts(tmp_path, e2e_dsn):
    base = free_range(len(SERVICES) + 1)
    sim = VenueSim(convert_octobot(tmp_path / "bars"), tmp_path, speed=1500)
    home = tmp_path / "home"
    stack = Stack(
        home,
        nats_url="nats://127.0.0.1:0",
        pg_dsn=e2e_dsn,
        venue_sim=sim.url,
        config_yaml=CONFIG,
        # the setting: one port for the whole stack, now the base of a range
        extra_env={"TICKTAPE_TELEMETRY__METRICS_PORT": str(base)},
    )
    try:
        urls = wait_for(lambda: printed_urls(home), timeout=60, what="the metrics URLs printed")
        assert urls == [f"http://127.0.0.1:{base + i}/metrics" for i in range(len(SERVICES) + 1)]
        wait_for(lambda: stack.state() == "running", timeout=60, what="every service started")
        pids = {s: stack.pid(s) for s in SERVICES}
        assert all(pids.values()), pids

        for service, url in zip(SERVICES, urls[1:], strict=True):
            samples = wait_for(
                lambda service=service, url=url: (lambda s: s if s is not None and ready(service, s) else None)(
                    scrape(url)
                ),
                timeout=120,
                what=f"{service}'s metrics on {url}",
            )
            services = {lab.get("service") for values in samples.values() for lab, _ in values} - {None}
            assert services == {service}, (url, services)

        supervisor = scrape(urls[0])
        assert supervisor is not None
        for service in SERVICES:
            assert has(supervisor, "ticktape_supervisor_restarts_total", service=service), service
            assert total(supervisor, "ticktape_supervisor_restarts_total", service=service) == 0, service
            assert total(supervisor, "ticktape_supervisor_service_running", service=service) == 1, service
        # nobody was restarted: the same processes, all alive
        assert {s: stack.pid(s) for s in SERVICES} == pids
        assert all(stack.alive(pid) for pid in pids.values() if pid is not None)
        assert stack.process.poll() is None, stack.logs()
        servers = json.loads((stack.run_dir / "servers.json").read_text())  # the embedded NATS and PostgreSQL
        assert servers and all(info["restarts"] == 0 for info in servers.values()), servers
    finally:
        code = stack.stop()
        sim.stop()
    assert code == 0, stack.logs()
