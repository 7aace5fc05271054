"""Authorization on a real nats-server (ticktape.bus.permissions): each role may publish only its
own subject families, anonymous clients are refused, and a forged approval never becomes an
order, whether the server refuses it or a service's defence in depth dead-letters it."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys

import pytest
import structlog

from services.execution.config import ExecutionConfig
from services.execution.service import serve as serve_execution
from tests.support import bars
from tests.support.bars import wave_bars
from ticktape import subjects
from ticktape.bus.deadletter import INLINE_BYTES, DeadLetters
from ticktape.bus.permissions import ADMIN, OBSERVER, OPERATOR
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import msg_headers, publish_batch
from ticktape.config import CommonSettings, NatsSettings
from ticktape.events import DeadLettered, EmergencyStop, OrderApproved, OrderFilled, OrderSubmitted
from ticktape.events.codec import encode
from ticktape.metrics import ServiceMetrics
from ticktape.testing import eventually
from ticktape.testing.auth import anonymous_reply
from ticktape.testing.bus import stream_events
from ticktape.testing.services import running_service

STREAM = NatsSettings().stream
BAR = wave_bars(n=2)


def approval(name: str) -> OrderApproved:
    return bars.approval(BAR[0], name)


async def refused(auth, role: str, subject: str, data: bytes = b"{}") -> bool:
    """Publish as `role`: True once the server's permissions violation for it arrives (it comes
    asynchronously; a publish the server accepts never gets one, see `answered`)."""
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    nc = await auth.connect(role, error_cb=on_error)
    try:
        await nc.publish(subject, data)
        await nc.flush(timeout=5)
        await eventually(
            lambda: any("permissions violation" in str(e).lower() for e in errors), timeout=5, what="the violation"
        )
    finally:
        await nc.close()
    return True


async def answered(auth, role: str, subject: str, data: bytes = b"{}") -> bool:
    """Publish as `role` as a request: True when JetStream answers (stores it, or serves the API)."""
    nc = await auth.connect(role)
    try:
        reply = await nc.request(subject, data, timeout=5)
    finally:
        await nc.close()
    return reply is not None


@pytest.fixture
async def admin_js(nats_auth):
    nc = await nats_auth.connect(ADMIN)
    js = nc.jetstream()
    await ensure_streams(js, NatsSettings())  # only the admin provisions
    yield js
    await nc.close()


def test_a_client_without_credentials_is_refused(nats_auth, nats_server):
    assert anonymous_reply(nats_auth.url) == "-ERR 'Authorization Violation'"
    assert anonymous_reply(nats_server.url) == "PONG"  # the same client, on a server without authorization


@pytest.mark.parametrize(
    ("role", "subject", "allowed"),
    [
        ("risk", "risk.approved.paper-main.BTCUSDT", True),
        ("signal", "risk.approved.paper-main.BTCUSDT", False),
        ("market_data", "risk.approved.paper-main.BTCUSDT", False),
        (OBSERVER, "risk.approved.paper-main.BTCUSDT", False),
        (OPERATOR, "risk.approved.paper-main.BTCUSDT", False),
        ("execution", "fills.paper-main.BTCUSDT", True),
        ("risk", "fills.paper-main.BTCUSDT", False),
        ("signal", "signals.ensemble.binance_usdm.BTCUSDT", True),
        ("market_data", "signals.ensemble.binance_usdm.BTCUSDT", False),
        (OPERATOR, "control.emergency_stop", True),
        ("risk", "control.emergency_stop", False),
        ("execution", "control.resume", False),
        (ADMIN, "control.emergency_stop", False),
        ("signal", "dlq.signal", True),
        ("signal", "dlq.risk", False),
        ("signal", f"$JS.API.STREAM.CREATE.{STREAM}", False),
        ("risk", f"$JS.API.STREAM.DELETE.{STREAM}", False),
        (ADMIN, f"$JS.API.STREAM.INFO.{STREAM}", True),
        (OBSERVER, f"$JS.API.STREAM.INFO.{STREAM}", False),
    ],
)
async def test_each_role_may_publish_only_its_own_subjects(nats_auth, admin_js, role, subject, allowed):
    if allowed:
        assert await answered(nats_auth, role, subject)
    else:
        assert await refused(nats_auth, role, subject)


async def test_observer_reads_everything_and_operator_and_risk_get_acks(nats_auth, admin_js):
    observer = await nats_auth.connect(OBSERVER)
    sub = await observer.subscribe(">")
    risk = await nats_auth.connect("risk")
    operator = await nats_auth.connect(OPERATOR)
    try:
        real = approval("real")
        ack = await risk.jetstream().publish(subjects.for_event(real), encode(real), headers=msg_headers(real))
        assert ack.stream == STREAM
        seen = await sub.next_msg(timeout=5)
        assert seen.subject == subjects.for_event(real)
        stop = EmergencyStop(event_id="stop-1", ts_event=1, ts_init=1, reason="test")
        ack = await operator.jetstream().publish(subjects.for_event(stop), encode(stop), headers=msg_headers(stop))
        assert ack.stream == STREAM
    finally:
        for nc in (observer, risk, operator):
            await nc.close()


async def test_a_forged_approval_gets_no_order_and_a_real_one_does(nats_auth, admin_js):
    """The server refuses a forged approval from any credential but risk's; one smuggled onto a
    subject its publisher may use (market data's bars) is dead-lettered by execution; the real
    approval that follows them fills, and is the only order."""
    common = CommonSettings(nats=nats_auth.settings("execution"))
    forged = approval("forged")
    async with running_service("execution", serve_execution, ExecutionConfig(), common):
        for role in ("signal", "market_data", OBSERVER, OPERATOR):
            assert await refused(nats_auth, role, subjects.for_event(forged), encode(forged)), role
        smuggled = subjects.for_event(BAR[0])
        market_data = await nats_auth.connect("market_data")
        risk = await nats_auth.connect("risk")
        try:
            await market_data.jetstream().publish(smuggled, encode(forged), headers={"Nats-Msg-Id": "smuggled"})
            real = approval("real")
            await publish_batch(risk.jetstream(), [(real, {})])
            await publish_batch(market_data.jetstream(), [(bar, {}) for bar in BAR])
        finally:
            await market_data.close()
            await risk.close()
        fills = await eventually(
            lambda: _of(admin_js, [subjects.ALL_FILLS], OrderFilled), timeout=20, what="the real approval's fill"
        )
    orders = await _of(admin_js, [subjects.ALL_ORDERS], OrderSubmitted)
    assert [o.approval_id for o in orders] == [real.event_id]
    assert [f.order_id for f in fills] == [orders[0].order_id]
    letters = await _of(admin_js, [subjects.dead_letter("execution")], DeadLettered, stream=NatsSettings().dlq_stream)
    assert [(d.source, base64.b64decode(d.payload_b64)) for d in letters] == [(smuggled, encode(forged))]


async def test_a_service_keeps_a_large_dead_lettered_input_with_its_own_credential(nats_auth, admin_js):
    """Dead letters need no more than a service's credential: the letter on dlq.<service>, and an
    input too large to inline kept whole in the dead-letter payloads' object store."""
    nc = await nats_auth.connect("signal")
    try:
        letters = DeadLetters(nc.jetstream(), "signal", ServiceMetrics("signal"), structlog.get_logger())
        payload = b"x" * (INLINE_BYTES + 1)
        assert await letters.send(source=subjects.for_event(BAR[0]), error="test", payload=payload, ts_ns=1)
    finally:
        await nc.close()
    (letter,) = await _of(admin_js, [subjects.dead_letter("signal")], DeadLettered, stream=NatsSettings().dlq_stream)
    assert letter.payload_ref == f"{NatsSettings().dlq_payloads_bucket}/{hashlib.sha256(payload).hexdigest()}"


async def _of(js, filters, kind, stream: str = STREAM):
    return [e for e in await stream_events(js, stream, filters) if isinstance(e, kind)]


def _ticktape(*args: str, home) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env["TICKTAPE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "ticktape", *args], capture_output=True, text=True, timeout=60, env=env, cwd=home
    )


async def test_ticktape_stop_and_resume_use_the_operator_credential(nats_auth, admin_js, tmp_path):
    """`ticktape stop` finds operator.json in <home>/creds by itself; another role's credential
    is refused by the server, and the command says so."""
    assert nats_auth.creds_dir == tmp_path / "creds"  # the home's default credentials directory
    done = _ticktape("stop", "--nats", nats_auth.url, "--reason", "maintenance", home=tmp_path)
    assert done.returncode == 0, done.stderr
    refused = _ticktape("resume", "--nats", nats_auth.url, "--creds", nats_auth.creds("signal"), home=tmp_path)
    assert refused.returncode == 2
    resumed = _ticktape("resume", "--nats", nats_auth.url, home=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    events = await stream_events(admin_js, STREAM, [subjects.ALL_CONTROL])
    assert [(type(e).__name__, e.reason) for e in events] == [
        ("EmergencyStop", "maintenance"),
        ("ResumeTrading", "operator"),
    ]
