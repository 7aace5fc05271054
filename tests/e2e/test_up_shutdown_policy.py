"""`ticktape up`'s stop applies each account's on_shutdown policy before the cores stop: with risk
and execution running under `up` (each with its own credential, on an authorized server it does
not run), a SIGTERM publishes one control.shutdown per account whose policy is not `leave`, with
the operator's credential; execution closes the close_positions account's positions and cancels
the cancel_orders account's pending order; the session is still recorded `stopped` (drained) and
every core output replays byte for byte."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.integration.test_stop_flatten import BARS, approval
from ticktape import subjects
from ticktape.bus.permissions import ADMIN
from ticktape.bus.publisher import publish_batch
from ticktape.corespec import load_specs
from ticktape.events import (
    Event,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    SessionStopped,
    ShutdownRequested,
)
from ticktape.events.codec import decode
from ticktape.replay.fileformat import SessionFile
from ticktape.replay.verify import Verifier
from ticktape.testing.auth import AuthorizedNats
from ticktape.testing.stack import Stack, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

NO_VENUE = "http://127.0.0.1:9"  # risk and execution only: nothing talks to a venue
CONFIG = """
supervisor: {service_grace_s: 10, shutdown_timeout_s: 20}
accounts:
  - {name: a, on_shutdown: close_positions}
  - {name: b, on_shutdown: cancel_orders}
  - {name: c}
"""


def ticktape(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    return subprocess.run(
        [sys.executable, "-m", "ticktape", *args], capture_output=True, text=True, timeout=120, env=env
    )


def log(auth: AuthorizedNats) -> list[tuple[int, Event]]:
    """(stream sequence, event) of everything on the event log."""

    async def read() -> list[tuple[int, Event]]:
        from ticktape.bus.reader import read_range

        nc = await auth.connect(ADMIN)
        try:
            js = nc.jetstream()
            return [
                (m.metadata.sequence.stream, decode(m.data))
                async for m in read_range(js, subjects.EVENTS_STREAM, [">"])
            ]
        finally:
            await nc.close()

    return asyncio.run(read())


def publish(auth: AuthorizedNats, role: str, events: Sequence[Event]) -> None:
    async def send() -> None:
        nc = await auth.connect(role)
        try:
            await publish_batch(nc.jetstream(), [(e, {}) for e in events])
        finally:
            await nc.close()

    asyncio.run(send())


def test_up_applies_the_accounts_shutdown_policies_before_the_cores_stop(
    tmp_path: Path, nats_auth: AuthorizedNats, e2e_dsn: str
) -> None:
    stack = Stack(
        tmp_path / "home",
        nats_url=nats_auth.url,
        pg_dsn=e2e_dsn,
        venue_sim=NO_VENUE,
        config_yaml=CONFIG,
        extra_env={"TICKTAPE_NATS__CREDS_DIR": str(nats_auth.creds_dir)},
        services=("risk", "execution"),
    )
    try:
        wait_for(lambda: stack.state() == "running", timeout=60, what="risk and execution running under up")
        publish(nats_auth, "market_data", [BARS[0]])
        publish(nats_auth, "risk", [approval(BARS[0], n, "buy", 2.0, f"{n}-open") for n in ("a", "b", "c")])
        publish(nats_auth, "market_data", [BARS[1]])
        publish(nats_auth, "risk", [approval(BARS[1], n, "buy", 1.0, f"{n}-pending") for n in ("b", "c")])

        def ready() -> bool:
            events = [e for _, e in log(nats_auth)]
            filled = {f.account for f in events if isinstance(f, OrderFilled)}
            pending = {o.approval_id for o in events if isinstance(o, OrderSubmitted)}
            return filled == {"a", "b", "c"} and {"approval-b-pending", "approval-c-pending"} <= pending

        wait_for(ready, timeout=60, what="three positions and two pending orders")
        assert stack.stop(timeout=90) == 0, stack.logs()
    finally:
        stack.stop()

    entries = log(nats_auth)
    events = [e for _, e in entries]
    (stopped,) = [(seq, e) for seq, e in entries if isinstance(e, SessionStopped)]
    assert stopped[1].reason == "stopped", stack.logs()  # the cores drained, policies included
    requests = [(seq, e) for seq, e in entries if isinstance(e, ShutdownRequested)]
    assert [(e.account, e.action, e.session_id) for _, e in requests] == [
        ("a", "close_positions", stopped[1].session_id),
        ("b", "cancel_orders", stopped[1].session_id),
    ]
    assert all(seq < stopped[0] for seq, _ in requests)
    last: dict[tuple[str, str], float] = {}
    for e in events:
        if isinstance(e, PositionUpdated):
            last[(e.account, e.symbol)] = e.quantity
    assert last == {("a", "BTCUSDT"): 0.0, ("b", "BTCUSDT"): 2.0, ("c", "BTCUSDT"): 2.0}
    closes = [o for o in events if isinstance(o, OrderSubmitted) and o.reason == "close_positions"]
    assert [(o.account, o.side, o.quantity, o.reduce_only) for o in closes] == [("a", "sell", 2.0, True)]
    assert [(c.account, c.reason) for c in events if isinstance(c, OrderCanceled)] == [("b", "shutdown")]

    # replay: every output of execution (the shutdown's close and cancel included) and every
    # RiskHalted/approval of risk's reproduces; the approvals this test published as risk are named
    # foreign (no core made them), and nothing else differs
    path = tmp_path / "session.ttsession.gz"
    done = ticktape(
        "export", stopped[1].session_id, str(path), "--nats", nats_auth.url, "--creds", nats_auth.creds(ADMIN)
    )
    assert done.returncode == 0, done.stderr
    with SessionFile(path) as f:
        meta, records = f.session, list(f.records())
    verifier = Verifier(load_specs(meta.config_doc(), names=meta.services or None), meta)
    for rec in records:
        verifier.feed(rec)
    result = verifier.finish()
    injected = {f"approval-{n}-open" for n in "abc"} | {f"approval-{n}-pending" for n in "bc"}
    assert {(d.kind, d.event_id) for d in result.divergences} == {("foreign", i) for i in injected}
    assert all(f.ok for f in result.families if f.family != "risk"), result.families
    assert {f.family: f.recorded_count for f in result.families}["orders"] >= 7
