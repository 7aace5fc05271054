"""`ticktape up --otlp URL` on the venue simulator's recorded bars, with an in-test OTLP/HTTP
receiver standing in for the collector: one trace holds a bar's publication by market_data, the
signal it led to, risk's decision, execution's order and fill, and the audit log's archiving of
that fill (five processes), each span a child of the one before, with the event ids the audit log
recorded for that causal chain; and every process `up` runs, `up` included, pushes its metrics."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from tests.support.otlp import OtlpReceiver, Span
from tests.support.recorded import convert_octobot
from ticktape import registry, subjects
from ticktape.testing.stack import Stack, VenueSim, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "symbol_registry: {top_n: 3}\n"
# the fill's archiving back to the bar's publication: (service, span name, which event's id it carries)
CHAIN = [
    ("audit", "audit archive exec.order.filled", "fill"),
    ("execution", "execution emit exec.order.filled", "fill"),
    ("execution", "execution emit exec.order.submitted", "order"),
    ("execution", "execution handle risk.order.approved", "approval"),
    ("risk", "risk emit risk.order.approved", "approval"),
    ("risk", "risk handle signal.generated", "signal"),
    ("signal", "signal emit signal.generated", "signal"),
    ("signal", "signal handle md.bar.closed", "bar"),
    ("market_data", "market_data publish md.bar.closed", "bar"),
]


def chain_of(spans: list[Span]) -> list[Span] | None:
    """The parent chain of an archived fill up to its root, the first one that reaches a span of
    market_data's (None while none does: spans arrive in batches)."""
    by_id = {s.span_id: s for s in spans}
    for leaf in spans:
        if leaf.service != "ticktape-audit" or leaf.name != CHAIN[0][1]:
            continue
        chain = [leaf]
        while chain[-1].parent_id and chain[-1].parent_id in by_id:
            chain.append(by_id[chain[-1].parent_id])
        if chain[-1].service == "ticktape-market_data" and not chain[-1].parent_id:
            return chain
    return None


def causes(dsn: str, event_id: str) -> list[tuple[str, str]]:
    """(type, event id) from an event back along causation_id, as the audit log stored them."""
    out = []
    with psycopg.connect(dsn) as conn:
        while event_id:
            row = conn.execute(
                "SELECT type, causation_id FROM audit_log WHERE stream = %s AND event_id = %s",
                (subjects.EVENTS_STREAM, event_id),
            ).fetchone()
            assert row is not None, f"{event_id} is not in the audit log"
            out.append((row[0], event_id))
            event_id = row[1]
    return out


def pushed_metrics(rec: OtlpReceiver, services: tuple[str, ...]) -> set[str] | None:
    """The processes (service.name) that have pushed their metrics, once every one has."""
    points = rec.points()
    seen = {p.service for p in points if p.metric == "ticktape_received" and p.kind == "sum"}
    running = {
        p.attributes.get("service")
        for p in points
        if p.service == "ticktape-up" and p.metric == "ticktape_supervisor_service_running" and p.value == 1
    }
    if seen >= {f"ticktape-{s}" for s in services} and running >= set(services):
        return seen
    return None


def test_up_otlp_exports_one_trace_through_five_processes_and_every_process_metrics(tmp_path, e2e_dsn):
    services = registry.names()
    with OtlpReceiver() as rec:
        sim = VenueSim(convert_octobot(tmp_path / "bars"), tmp_path, speed=1500)
        stack = Stack(
            tmp_path / "home",
            nats_url="nats://127.0.0.1:0",
            pg_dsn=e2e_dsn,
            venue_sim=sim.url,
            config_yaml=CONFIG,
            # spans every 0.5 s and metrics every second, instead of every 5 s and 60 s
            extra_env={"OTEL_BSP_SCHEDULE_DELAY": "500", "OTEL_METRIC_EXPORT_INTERVAL": "1000"},
            args=["--otlp", rec.url],
        )
        try:
            chain = wait_for(lambda: chain_of(rec.spans()), timeout=150, what="an archived fill's trace to its bar")
            pushed = wait_for(lambda: pushed_metrics(rec, services), timeout=60, what="every process's metrics")
        finally:
            code = stack.stop()
            sim.stop()
    assert code == 0, stack.logs()

    assert [(s.service.removeprefix("ticktape-"), s.name) for s in chain] == [(svc, name) for svc, name, _ in CHAIN]
    assert len({s.trace_id for s in chain}) == 1, "one trace"
    assert {s.service for s in chain} == {
        f"ticktape-{s}" for s in ("market_data", "signal", "risk", "execution", "audit")
    }
    trace = [s for s in rec.spans() if s.trace_id == chain[0].trace_id]
    assert [s for s in trace if not s.parent_id] == [chain[-1]], "the bar's publication is the trace's only root"

    # the spans carry the ids of the events the audit log recorded for this fill's causal chain
    recorded = causes(e2e_dsn, chain[0].attributes["ticktape.event_id"])
    assert [t for t, _ in recorded] == [
        "exec.order.filled",
        "exec.order.submitted",
        "risk.order.approved",
        "signal.generated",
        "md.bar.closed",
    ]
    ids = dict(zip(("fill", "order", "approval", "signal", "bar"), (i for _, i in recorded), strict=True))
    assert [s.attributes["ticktape.event_id"] for s in chain] == [ids[which] for _, _, which in CHAIN]
    assert chain[-1].attributes["ticktape.symbol"] in ("ADAUSDT", "BTCUSDT", "ETHUSDT")

    # metrics: every service and `ticktape up` itself, pushed to the same endpoint
    assert pushed >= {f"ticktape-{s}" for s in services}
    points = rec.points()
    restarts = [p for p in points if p.service == "ticktape-up" and p.metric == "ticktape_supervisor_restarts"]
    assert {p.attributes["service"] for p in restarts} == set(services)
    assert all(p.kind == "sum" and p.monotonic and p.value == 0 for p in restarts), "nobody was restarted"
    for service in services:
        mine = [p for p in points if p.service == f"ticktape-{service}"]
        assert {p.attributes.get("service") for p in mine} == {service}, service
    handled = [p for p in points if p.service == "ticktape-signal" and p.metric == "ticktape_core_handle_seconds"]
    assert handled and handled[-1].kind == "histogram" and handled[-1].count > 0
    assert sum(handled[-1].buckets) == handled[-1].count
    lag = {p.attributes.get("durable") for p in points if p.metric == "ticktape_consumer_lag"}
    assert {"signal", "risk", "execution"} <= lag


def test_up_refuses_an_otlp_value_that_is_not_an_http_url(tmp_path):
    """Checked before anything starts (exit 2): no server, no session."""
    home = tmp_path / "home"
    done = subprocess.run(
        [sys.executable, "-m", "ticktape", "up", "--otlp", "127.0.0.1:4318", "--home", str(home)],
        cwd=ROOT,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert not (home / "run").exists()
