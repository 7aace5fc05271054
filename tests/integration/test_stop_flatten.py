"""Stopping the bleeding on a real nats-server with ticktape's authorization, risk and execution
running with their own credentials: `ticktape stop --account A --flatten` (the CLI, as the
operator) and `POST /api/v1/control/stop {"flatten": true}` (the API process, with the operator's
credential) close every position of the account with reduce-only orders and halt it, while
another account keeps its position; risk halts an account by itself on a drawdown (risk's own
risk.halted.<account>, no operator credential) and flattens it; and the accounts' on_shutdown
policies, applied as `ticktape up`'s stop applies them, cancel orders or close positions without
halting anything."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import msgspec
import pytest
from nats.js import JetStreamContext

from services.execution.loading import from_raw as execution_config
from services.execution.service import serve as serve_execution
from services.risk.loading import from_raw as risk_config
from services.risk.service import serve as serve_risk
from tests.support.bars import wave_bars
from tests.support.live_venue import admin_js, publish
from ticktape import config as cfg
from ticktape import sessions, shutdown, subjects
from ticktape.bus.permissions import ADMIN, OPERATOR
from ticktape.config import CommonSettings, NatsSettings
from ticktape.events import (
    BarClosed,
    EmergencyStop,
    OrderApproved,
    OrderCanceled,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    RiskHalted,
    ShutdownRequested,
)
from ticktape.testing import eventually
from ticktape.testing.auth import AuthorizedNats
from ticktape.testing.bus import stream_events
from ticktape.testing.services import running_service

pytestmark = pytest.mark.timeout(180)

ROOT = Path(__file__).resolve().parents[2]
STREAM = NatsSettings().stream
TOKEN = "flatten-test-token-0123456789"
BARS = wave_bars(n=12)  # binance_usdm BTCUSDT, closes around 100
ETH = wave_bars("ETHUSDT", n=12, period=30)
TWO = {"accounts": [{"name": "a"}, {"name": "b"}]}

__all__ = ["admin_js"]  # fixtures used here


def approval(bar: BarClosed, account: str, side: str, qty: float, name: str) -> OrderApproved:
    """As risk publishes one (on the risk role's subject): an order sized at the bar's close."""
    return OrderApproved(
        event_id=f"approval-{name}",
        ts_event=bar.ts_event,
        ts_init=bar.ts_init,
        account=account,
        strategy="ensemble9",
        venue=bar.venue,
        symbol=bar.symbol,
        side=side,  # type: ignore[arg-type]
        quantity=qty,
        reference_price=bar.close,
        notional=qty * bar.close,
        target_quantity=qty if side == "buy" else -qty,
        signal_id=f"signal-{name}",
        bar_open_time=bar.open_time,
    )


@asynccontextmanager
async def trading(nats_auth: AuthorizedNats, raw: dict[str, Any]) -> AsyncIterator[None]:
    """Risk and execution, each with its own credential, both configured from `raw`."""
    async with (
        running_service(
            "execution",
            serve_execution,
            execution_config(raw),
            CommonSettings(nats=nats_auth.settings("execution")),
        ),
        running_service("risk", serve_risk, risk_config(raw), CommonSettings(nats=nats_auth.settings("risk"))),
    ):
        yield


async def events_of(js: JetStreamContext, kind: type, *filters: str) -> list[Any]:
    return [e for e in await stream_events(js, STREAM, list(filters) or [">"]) if isinstance(e, kind)]


async def positions(js: JetStreamContext) -> dict[tuple[str, str], float]:
    """The latest quantity per (account, symbol)."""
    out: dict[tuple[str, str], float] = {}
    for p in await events_of(js, PositionUpdated, subjects.ALL_POSITIONS):
        out[(p.account, p.symbol)] = p.quantity
    return out


async def open_positions(nats_auth: AuthorizedNats, js: JetStreamContext) -> None:
    """a: long 2 BTCUSDT and short 1 ETHUSDT; b: long 3 BTCUSDT; filled on the bar after."""
    await publish(nats_auth, "market_data", [BARS[0], ETH[0]])
    await publish(
        nats_auth,
        "risk",
        [
            approval(BARS[0], "a", "buy", 2.0, "a-btc"),
            approval(ETH[0], "a", "sell", 1.0, "a-eth"),
            approval(BARS[0], "b", "buy", 3.0, "b-btc"),
        ],
    )
    await publish(nats_auth, "market_data", [BARS[1], ETH[1]])

    async def held() -> dict[tuple[str, str], float] | None:
        now = await positions(js)
        want = {("a", "BTCUSDT"): 2.0, ("a", "ETHUSDT"): -1.0, ("b", "BTCUSDT"): 3.0}
        return now if all(now.get(k) == pytest.approx(v) for k, v in want.items()) else None

    await eventually(held, timeout=30, what="the three positions filled")


async def assert_flattened(js: JetStreamContext, account: str, reason: str = "flatten") -> list[OrderSubmitted]:
    """Every position of `account` closed by reduce-only orders of `reason`; returns the orders."""

    async def closed() -> dict[tuple[str, str], float] | None:
        now = await positions(js)
        mine = {k: v for k, v in now.items() if k[0] == account}
        return now if mine and all(v == 0.0 for v in mine.values()) else None

    now = await eventually(closed, timeout=30, what=f"every position of {account} closed")
    orders = [o for o in await events_of(js, OrderSubmitted, subjects.ALL_ORDERS) if o.reduce_only is True]
    mine = [o for o in orders if o.account == account]
    assert {(o.symbol, o.reason) for o in mine} == {(s, reason) for (a, s) in now if a == account}
    fills = {f.order_id: f for f in await events_of(js, OrderFilled, subjects.ALL_FILLS)}
    assert all(fills[o.order_id].quantity == o.quantity for o in mine)
    return mine


async def assert_halted(nats_auth: AuthorizedNats, js: JetStreamContext, account: str, name: str) -> None:
    """An ordinary approval for `account` is canceled "halted"."""
    await publish(nats_auth, "risk", [approval(BARS[2], account, "buy", 1.0, name)])

    async def canceled() -> list[OrderCanceled] | None:
        found = [c for c in await events_of(js, OrderCanceled, subjects.ALL_ORDERS) if c.reason == "halted"]
        return found or None

    (c,) = await eventually(canceled, timeout=20, what=f"the approval for halted {account} canceled")
    assert c.account == account


def ticktape(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env["TICKTAPE_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "ticktape", *args], capture_output=True, text=True, timeout=60, env=env, cwd=home
    )


async def test_ticktape_stop_flatten_closes_one_accounts_positions_and_halts_it(
    nats_auth: AuthorizedNats, admin_js: JetStreamContext, tmp_path: Path
) -> None:
    assert nats_auth.creds_dir == tmp_path / "creds"  # where the CLI finds operator.json by itself
    async with trading(nats_auth, TWO):
        await open_positions(nats_auth, admin_js)
        done = await asyncio.to_thread(
            ticktape, tmp_path, "stop", "--account", "a", "--flatten", "--reason", "drill", "--nats", nats_auth.url
        )
        assert done.returncode == 0, done.stderr
        assert "(flatten)" in done.stdout
        (stop,) = await events_of(admin_js, EmergencyStop, subjects.ALL_CONTROL)
        assert (stop.account, stop.reason, stop.flatten) == ("a", "drill", True)
        orders = await assert_flattened(admin_js, "a")
        assert sorted((o.symbol, o.side, o.quantity) for o in orders) == [
            ("BTCUSDT", "sell", 2.0),
            ("ETHUSDT", "buy", 1.0),
        ]
        assert (await positions(admin_js))[("b", "BTCUSDT")] == 3.0  # the other account keeps its position
        await assert_halted(nats_auth, admin_js, "a", "after-stop")
        resumed = await asyncio.to_thread(ticktape, tmp_path, "resume", "--account", "a", "--nats", nats_auth.url)
        assert resumed.returncode == 0, resumed.stderr
        await publish(nats_auth, "risk", [approval(BARS[2], "a", "buy", 1.0, "after-resume")])

        async def submitted() -> list[OrderSubmitted] | None:
            found = [o for o in await events_of(admin_js, OrderSubmitted) if o.approval_id == "approval-after-resume"]
            return found or None

        await eventually(submitted, timeout=20, what="an order for a after the resume")


def start_api(nats_auth: AuthorizedNats, home: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`python -m services.api` with its own credential and the operator's for control."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    env.update(
        TICKTAPE_NATS_URL=nats_auth.url,
        TICKTAPE_NATS__CREDS=nats_auth.creds("api"),
        TICKTAPE_API__OPERATOR_CREDS=nats_auth.creds(OPERATOR),
        TICKTAPE_HOME=str(home),
        TICKTAPE_API_TOKEN=TOKEN,
        TICKTAPE_API__PORT="0",
        TICKTAPE_API__POLL_S="0.2",
        PYTHONPATH=str(ROOT),
    )
    (home / "run").mkdir(parents=True, exist_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "services.api"], env=env, cwd=ROOT)
    return process, str(home / "run" / "api.url")


def post(url: str, path: str, body: object) -> tuple[int, Any]:
    request = urllib.request.Request(url + path, data=json.dumps(body).encode(), method="POST")
    request.add_header("Authorization", f"Bearer {TOKEN}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def get(url: str, path: str) -> Any:
    with urllib.request.urlopen(url + path, timeout=10) as response:
        return json.loads(response.read())


async def test_the_apis_stop_with_flatten_closes_the_accounts_positions(
    nats_auth: AuthorizedNats, admin_js: JetStreamContext, tmp_path: Path
) -> None:
    process, url_file = start_api(nats_auth, tmp_path / "home")
    try:

        def listening() -> str | None:
            if process.poll() is not None:
                raise AssertionError(f"the API exited with {process.returncode}")
            return Path(url_file).read_text() if Path(url_file).exists() else None

        api = await eventually(listening, timeout=30, what="the API listening")
        async with trading(nats_auth, TWO):
            await open_positions(nats_auth, admin_js)
            status, problem = await asyncio.to_thread(post, api, "/api/v1/control/resume", {"flatten": True})
            assert status == 400 and problem["errors"][0]["parameter"] == "flatten"  # stop only
            status, accepted = await asyncio.to_thread(
                post, api, "/api/v1/control/stop", {"account": "b", "flatten": True, "reason": "api drill"}
            )
            assert status == 202, accepted
            assert (accepted["account"], accepted["flatten"], accepted["subject"]) == (
                "b",
                True,
                "control.emergency_stop",
            )
            (stop,) = await events_of(admin_js, EmergencyStop, subjects.ALL_CONTROL)
            assert (stop.event_id, stop.flatten, stop.reason) == (accepted["event_id"], True, "api drill")
            orders = await assert_flattened(admin_js, "b")
            assert [(o.symbol, o.side, o.quantity) for o in orders] == [("BTCUSDT", "sell", 3.0)]
            now = await positions(admin_js)
            assert (now[("a", "BTCUSDT")], now[("a", "ETHUSDT")]) == (2.0, -1.0)

            def halted_in_the_read_model() -> dict[str, bool] | None:
                accounts = {a["account"]: a["halted"] for a in get(api, "/api/v1/accounts")["accounts"]}
                return accounts if accounts.get("b") is True and accounts.get("a") is False else None

            await eventually(
                lambda: asyncio.to_thread(halted_in_the_read_model), timeout=20, what="b halted in the API"
            )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def test_risk_halts_an_account_by_itself_on_a_drawdown_and_flattens_it(
    nats_auth: AuthorizedNats, admin_js: JetStreamContext
) -> None:
    """a, levered into BTCUSDT, loses 12 % of its peak on one bar: risk publishes RiskHalted on
    risk.halted.a with its own credential, and execution closes a's positions."""
    raw = {
        "accounts": [
            {
                "name": "a",
                "limits": {"max_drawdown": 0.1, "on_breach": "flatten", "max_gross_exposure": 50_000},
            },
            {"name": "b"},
        ]
    }
    crash = [
        msgspec.structs.replace(BARS[2], open=BARS[1].close, low=BARS[1].close * 0.7, close=BARS[1].close * 0.7),
        *BARS[3:5],
    ]
    async with trading(nats_auth, raw):
        await open_positions(nats_auth, admin_js)
        big = approval(BARS[1], "a", "buy", 40.0, "a-big")  # about 4,000 at 100: a 30 % fall costs 12 %
        await publish(nats_auth, "risk", [big])
        await publish(nats_auth, "market_data", [msgspec.structs.replace(crash[0], high=BARS[1].close)])

        async def halted() -> list[RiskHalted] | None:
            return await events_of(admin_js, RiskHalted, subjects.ALL_RISK_HALTS) or None

        (halt,) = await eventually(halted, timeout=30, what="risk's own halt of a")
        assert (halt.account, halt.reason, halt.flatten) == ("a", "max_drawdown", True)
        assert halt.equity <= 0.9 * halt.reference_equity
        await assert_flattened(admin_js, "a")
        assert (await positions(admin_js))[("b", "BTCUSDT")] == 3.0
        await assert_halted(nats_auth, admin_js, "a", "after-risk-halt")


async def test_on_shutdown_policies_applied_as_up_applies_them(
    nats_auth: AuthorizedNats, admin_js: JetStreamContext
) -> None:
    """shutdown.drain_and_apply with the session recorder's drain (as `ticktape up`'s stop runs it):
    a (close_positions) is flat, b (cancel_orders) keeps its position but not its pending order, c
    (leave) keeps both; nothing is halted."""
    raw = {
        "accounts": [
            {"name": "a", "on_shutdown": "close_positions"},
            {"name": "b", "on_shutdown": "cancel_orders"},
            {"name": "c"},
        ]
    }
    said: list[str] = []
    async with trading(nats_auth, raw):
        await open_positions(nats_auth, admin_js)
        pending = [approval(BARS[2], n, "buy", 1.0, f"{n}-pending") for n in ("b", "c")]
        await publish(nats_auth, "risk", pending)

        async def submitted() -> bool:
            orders = {o.approval_id for o in await events_of(admin_js, OrderSubmitted, subjects.ALL_ORDERS)}
            return {p.event_id for p in pending} <= orders

        await eventually(submitted, timeout=20, what="the pending orders of b and c")
        recorder = sessions.SessionRecorder(nats_auth.settings(ADMIN), raw, ("risk", "execution"))
        drained = await asyncio.to_thread(
            shutdown.drain_and_apply,
            lambda alive, timeout: recorder.drain(("risk", "execution"), alive, timeout),
            lambda: True,
            cfg.load_accounts(raw),
            recorder.session_id,
            nats_auth.url,
            nats_auth.creds(OPERATOR),
            20.0,
            said.append,
            flat=shutdown.flat_on(nats_auth.url, nats_auth.creds(ADMIN), subjects.EVENTS_STREAM),
        )
        assert drained, said
        requests = await events_of(admin_js, ShutdownRequested, subjects.ALL_CONTROL)
        assert [(r.account, r.action, r.session_id) for r in requests] == [
            ("a", "close_positions", recorder.session_id),
            ("b", "cancel_orders", recorder.session_id),
        ]
        await assert_flattened(admin_js, "a", reason="close_positions")
        now = await positions(admin_js)
        assert now[("b", "BTCUSDT")] == 3.0
        canceled = {c.account: c.reason for c in await events_of(admin_js, OrderCanceled, subjects.ALL_ORDERS)}
        assert canceled == {"b": "shutdown"}  # c's pending order is left alone
        assert not await events_of(admin_js, EmergencyStop, subjects.ALL_CONTROL)
        await publish(nats_auth, "risk", [approval(BARS[3], "a", "buy", 1.0, "a-next-session")])

        async def traded() -> bool:
            orders = {o.approval_id for o in await events_of(admin_js, OrderSubmitted, subjects.ALL_ORDERS)}
            return "approval-a-next-session" in orders

        await eventually(traded, timeout=20, what="a trading again: a shutdown halts nothing")
