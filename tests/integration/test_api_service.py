"""The API service as a process (`python -m services.api`, as `ticktape up` runs it) on a real
nats-server whose event log holds what the decision cores make of 240 bars on two symbols (bars,
signals, approvals, orders, fills, positions, accounts), a universe, shard reports, a session, a
dead letter. Every endpoint is compared with what an independent reader of the stream finds; bad
requests get problem+json; control needs the bearer token and publishes the operator's event;
a second API started afterwards answers the same (the projection is rebuilt from the log); and
schemathesis fuzzes the API against its own OpenAPI document."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.bars import wave_bars
from tests.support.pipeline import run_cores
from ticktape import subjects
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.config import NatsSettings
from ticktape.events import (
    AccountUpdated,
    DeadLettered,
    EmergencyStop,
    Event,
    MarketDataStatus,
    OrderFilled,
    OrderSubmitted,
    PositionUpdated,
    SessionStarted,
    ShardStatus,
    SignalGenerated,
    UniverseMember,
    UniverseUpdated,
)
from ticktape.events.codec import encode
from ticktape.infra.nats_server import NatsServer, start_nats_server
from ticktape.testing import eventually
from ticktape.testing.bus import stream_events

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "api-test-token-0123456789"
VENUE = "binance_usdm"
T_UNIVERSE = 1_699_990_000_000_000_000


def universe(event_id: str, as_of: int, symbols: tuple[str, ...]) -> UniverseUpdated:
    return UniverseUpdated(
        event_id=event_id,
        ts_event=as_of,
        ts_init=as_of,
        venue=VENUE,
        quote_asset="USDT",
        top_n=len(symbols),
        as_of=as_of,
        symbols=symbols,
        members=tuple(
            UniverseMember(symbol=s, rank=i + 1, quote_volume=1e9 / (i + 1), tick_size=0.1, lot_size=0.001)
            for i, s in enumerate(symbols)
        ),
    )


def inputs() -> list[Event]:
    session = SessionStarted(
        event_id="session-api-test",
        ts_event=T_UNIVERSE - 1,
        ts_init=T_UNIVERSE - 1,
        session_id="s-api-test",
        config_hash="abc",
        config_json=json.dumps({"signal": {"strategies": [{"kind": "ensemble", "name": "ensemble9"}]}}),
        code_version="test",
        services=("signal", "risk", "execution"),
    )
    old = universe("universe-old", T_UNIVERSE, ("BTCUSDT", "XRPUSDT"))
    new = universe("universe-new", T_UNIVERSE + 3_600_000_000_000, ("BTCUSDT", "ETHUSDT"))
    shards = MarketDataStatus(
        event_id="status-1",
        ts_event=T_UNIVERSE,
        ts_init=T_UNIVERSE,
        venue=VENUE,
        shards=(
            ShardStatus(shard=0, connected=True, symbols=1, last_frame_age_ms=5, reconnects=0, frames_per_s=2.0),
            ShardStatus(shard=1, connected=False, symbols=1, last_frame_age_ms=None, reconnects=3, frames_per_s=0.0),
        ),
    )
    bars: list[Event] = []
    btc, eth = wave_bars("BTCUSDT", n=240, period=40), wave_bars("ETHUSDT", n=240, period=56)
    for a, b in zip(btc, eth, strict=True):
        bars += [a, b]
    return [session, old, new, shards, *bars]


@dataclass
class Api:
    url: str
    process: subprocess.Popen[bytes]


def start_api(nats_url: str, home: Path) -> Api:
    env = dict(
        os.environ,
        TICKTAPE_NATS_URL=nats_url,
        TICKTAPE_HOME=str(home),
        TICKTAPE_API_TOKEN=TOKEN,
        TICKTAPE_API__PORT="0",
        TICKTAPE_API__POLL_S="0.2",
        PYTHONPATH=str(ROOT),
    )
    (home / "run").mkdir(parents=True, exist_ok=True)
    url_file = home / "run" / "api.url"
    url_file.unlink(missing_ok=True)
    process = subprocess.Popen([sys.executable, "-m", "services.api"], env=env, cwd=ROOT)

    def listening() -> str | None:
        if process.poll() is not None:
            raise AssertionError(f"the API exited with {process.returncode}")
        return url_file.read_text() if url_file.exists() else None

    url = asyncio.run(eventually(listening, timeout=30, what="the API listening"))
    return Api(url, process)


def stop_api(api: Api) -> None:
    api.process.send_signal(signal.SIGTERM)
    try:
        api.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        api.process.kill()
        api.process.wait()


def call(
    api: Api, path: str, method: str = "GET", body: object | None = None, token: str | None = None
) -> tuple[int, str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(api.url + path, data=data, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    if data is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers.get("Content-Type", ""), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Content-Type", ""), json.loads(exc.read() or b"null")


@dataclass
class Stack:
    nats: NatsServer
    home: Path
    api: Api
    log: list[Event]  # what an independent reader of the event log finds


async def _publish_and_read(url: str, events: list[Event]) -> list[Event]:
    import nats

    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await ensure_streams(js, NatsSettings())
        await publish_batch(js, [(e, {}) for e in events])
        letter = DeadLettered(
            event_id="dl-1",
            ts_event=time.time_ns(),
            ts_init=time.time_ns(),
            service="signal",
            source="md.bar.x.y.1m",
            error="undecodable",
            payload_b64="e30=",
        )
        await js.publish(subjects.dead_letter("signal"), encode(letter), headers={"Nats-Msg-Id": letter.event_id})
        return await stream_events(js, "TICKTAPE")
    finally:
        await nc.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    base = tmp_path_factory.mktemp("api")
    server = start_nats_server(base / "nats")
    try:
        log = asyncio.run(_publish_and_read(server.url, run_cores(inputs())))
        api = start_api(server.url, base / "home")
        try:
            stack = Stack(server, base / "home", api, log)
            asyncio.run(
                eventually(
                    lambda: (
                        call(api, "/api/v1/metrics")[2]["behind"] == 0
                        and call(api, "/api/v1/metrics")[2]["applied_seq"] >= len(log)
                    ),
                    timeout=30,
                    what="the read model caught up",
                )
            )
            yield stack
        finally:
            stop_api(api)
    finally:
        server.stop()


def of(log: list[Event], kind: type) -> list[Any]:
    return [e for e in log if isinstance(e, kind)]


def test_fills_and_orders_match_the_event_log(stack: Stack) -> None:
    fills = of(stack.log, OrderFilled)
    orders = of(stack.log, OrderSubmitted)
    assert len(fills) >= 8 and {f.symbol for f in fills} == {"BTCUSDT", "ETHUSDT"}
    status, ctype, page = call(stack.api, "/api/v1/fills?limit=1000")
    assert status == 200 and ctype.startswith("application/json")
    assert page["total"] == len(fills)
    assert [f["fill_id"] for f in page["items"]] == [f.event_id for f in reversed(fills)]
    by_id = {f.event_id: f for f in fills}
    for item in page["items"]:
        fill = by_id[item["fill_id"]]
        assert (item["price"], item["quantity"], item["fee"], item["side"]) == (
            fill.price,
            fill.quantity,
            fill.fee,
            fill.side,
        )
        assert item["strategy"] == "ensemble9"
    _, _, eth = call(stack.api, "/api/v1/fills?symbol=ETHUSDT&limit=2")
    assert eth["total"] == sum(1 for f in fills if f.symbol == "ETHUSDT")
    assert len(eth["items"]) == 2 and eth["next_offset"] == 2
    _, _, second = call(stack.api, "/api/v1/fills?symbol=ETHUSDT&limit=2&offset=2")
    assert {i["fill_id"] for i in second["items"]}.isdisjoint({i["fill_id"] for i in eth["items"]})

    _, _, order_page = call(stack.api, "/api/v1/orders?limit=1000")
    assert order_page["total"] == len(orders)
    assert {o["order_id"] for o in order_page["items"]} == {o.order_id for o in orders}
    filled = {f.order_id for f in fills}
    for item in order_page["items"]:
        assert item["status"] == ("filled" if item["order_id"] in filled else "submitted")
    _, _, sells = call(stack.api, "/api/v1/orders?side=sell&status=filled")
    assert sells["total"] == sum(1 for o in orders if o.side == "sell" and o.order_id in filled)


def test_positions_and_accounts_are_the_latest_events(stack: Stack) -> None:
    latest_positions: dict[tuple[str, str, str], PositionUpdated] = {}
    for p in of(stack.log, PositionUpdated):
        latest_positions[(p.account, p.venue, p.symbol)] = p
    _, _, body = call(stack.api, "/api/v1/positions")
    got = {(p["account"], p["venue"], p["symbol"]): p for p in body["positions"]}
    assert got.keys() == latest_positions.keys()
    for key, p in latest_positions.items():
        assert (got[key]["quantity"], got[key]["avg_price"], got[key]["unrealized_pnl"]) == (
            p.quantity,
            p.avg_price,
            p.unrealized_pnl,
        )
    account = of(stack.log, AccountUpdated)[-1]
    _, _, accounts = call(stack.api, "/api/v1/accounts")
    (only,) = accounts["accounts"]
    assert (only["account"], only["equity"], only["fees_paid"], only["halted"]) == (
        account.account,
        account.equity,
        account.fees_paid,
        False,
    )
    assert only["open_positions"] == sum(1 for p in latest_positions.values() if p.quantity != 0)


def test_signals_symbols_sessions_and_feeds(stack: Stack) -> None:
    latest: dict[str, SignalGenerated] = {}
    for s in of(stack.log, SignalGenerated):
        if s.symbol == "BTCUSDT":
            latest[s.strategy] = s
    _, _, signals = call(stack.api, "/api/v1/signals/BTCUSDT")
    got = {sig["strategy"]: sig for sig in signals["signals"]}
    assert got.keys() == latest.keys()
    for name, want in latest.items():
        sig = got[name]
        assert sig["event_id"] == want.event_id and sig["side"] == want.side
        assert sig["diagnostics"] == want.diagnostics and sig["target"] == want.target
        assert [v["fast_ema"] for v in sig["votes"]] == [v["fast_ema"] for v in want.diagnostics["votes"]]
    _, _, one = call(stack.api, "/api/v1/signals/BTCUSDT?strategy=ensemble9")
    assert [sig["strategy"] for sig in one["signals"]] == ["ensemble9"]
    status, ctype, missing = call(stack.api, "/api/v1/signals/NOPEUSDT")
    assert status == 404 and ctype.startswith("application/problem+json") and missing["status"] == 404

    _, _, now = call(stack.api, "/api/v1/symbols")
    (u,) = now["universes"]
    assert [m["symbol"] for m in u["members"]] == ["BTCUSDT", "ETHUSDT"] and u["event_id"] == "universe-new"
    _, _, then = call(stack.api, f"/api/v1/symbols?as_of={T_UNIVERSE + 1}")
    assert then["universes"][0]["event_id"] == "universe-old"
    _, _, iso = call(stack.api, "/api/v1/symbols?as_of=2023-11-14T19:26:41Z")
    assert iso["universes"][0]["event_id"] == "universe-old"
    _, _, before = call(stack.api, "/api/v1/symbols?as_of=1")
    assert before["universes"] == []

    _, _, sessions = call(stack.api, "/api/v1/sessions")
    assert [s["session_id"] for s in sessions["sessions"]] == ["s-api-test"]
    _, _, ws = call(stack.api, "/api/v1/websocket/status")
    (venue,) = ws["venues"]
    assert venue["shards_connected"] == 1 and len(venue["shards"]) == 2
    assert venue["bars"] == 480 and venue["last_bar_close_ns"] == max(
        b.close_time for b in stack.log if hasattr(b, "close_time")
    )
    _, _, sched = call(stack.api, "/api/v1/scheduler/status")
    strategies = {s["name"]: s for s in sched["strategies"]}
    assert strategies["ensemble9"]["kind"] == "ensemble"  # from the session's config
    for name, info in strategies.items():
        assert info["signals"] == sum(1 for s in of(stack.log, SignalGenerated) if s.strategy == name)
    _, _, metrics = call(stack.api, "/api/v1/metrics")
    assert metrics["fills"] == len(of(stack.log, OrderFilled))
    assert metrics["dead_letters"] == {"signal": 1}


def test_performance_adds_up(stack: Stack) -> None:
    _, _, perf = call(stack.api, "/api/v1/performance")
    (acct,) = perf["accounts"]
    account = of(stack.log, AccountUpdated)[-1]
    assert acct["equity"] == account.equity
    assert acct["session"]["pnl"] == pytest.approx(account.equity - account.initial_equity)
    assert acct["session"]["fees"] == pytest.approx(account.fees_paid)
    assert acct["session"]["trades"] > 0 and 0 <= acct["session"]["win_rate"] <= 1
    assert acct["session"]["max_drawdown"] >= 0 and acct["session"]["sharpe"] is not None
    (strategy,) = perf["strategies"]
    assert strategy["strategy"] == "ensemble9"
    # one strategy trades the whole account: its P&L is the account's
    assert strategy["realized_pnl"] == pytest.approx(account.realized_pnl)
    assert strategy["session"]["pnl"] == pytest.approx(acct["session"]["pnl"])
    _, _, short = call(stack.api, "/api/v1/performance?window_s=600")
    assert short["accounts"][0]["window"]["marks"] < acct["session"]["marks"]


def test_health_scores_every_component(stack: Stack) -> None:
    status, _, health = call(stack.api, "/health")
    names = [c["name"] for c in health["components"]]
    assert names == ["services", "consumers", "bars", "shards", "halted", "dead_letters", "reconciliation"]
    assert health["score"] == pytest.approx(sum(c["score"] for c in health["components"]))
    by = {c["name"]: c for c in health["components"]}
    assert by["shards"]["status"] == "degraded"  # one of two shards down
    assert by["dead_letters"]["status"] == "degraded"  # one just now
    assert status == (200 if health["healthy"] else 503)


def test_bad_requests_are_problem_json(stack: Stack) -> None:
    for path, parameter in (
        ("/api/v1/orders?limit=0", "limit"),
        ("/api/v1/orders?limit=abc", "limit"),
        ("/api/v1/fills?side=up", "side"),
        ("/api/v1/fills?colour=red", "colour"),
        ("/api/v1/symbols?as_of=yesterday", "as_of"),
        ("/api/v1/symbols?as_of=2026-01-01T00:00:00", "as_of"),
        ("/api/v1/orders?limit=1&limit=2", "limit"),
    ):
        status, ctype, problem = call(stack.api, path)
        assert status == 400, path
        assert ctype.startswith("application/problem+json")
        assert problem["status"] == 400 and problem["type"].startswith("https://") and problem["title"]
        assert problem["errors"][0]["parameter"] == parameter, path
    status, ctype, problem = call(stack.api, "/api/v1/nothing")
    assert (status, problem["status"]) == (404, 404) and ctype.startswith("application/problem+json")
    status, _, problem = call(stack.api, "/api/v1/orders", method="DELETE")
    assert (status, problem["status"]) == (405, 405)


def test_control_needs_the_token_and_publishes_the_operators_event(stack: Stack) -> None:
    status, _, problem = call(stack.api, "/api/v1/control/stop", "POST", {"reason": "drill"})
    assert status == 401 and problem["type"].endswith("/unauthorized")
    status, _, _ = call(stack.api, "/api/v1/control/stop", "POST", {"reason": "drill"}, token="wrong-token")
    assert status == 401
    status, _, problem = call(stack.api, "/api/v1/control/stop", "POST", {"account": "a.b"}, token=TOKEN)
    assert status == 400 and problem["errors"][0]["parameter"] == "account"
    status, _, accepted = call(stack.api, "/api/v1/control/stop", "POST", {"reason": "drill"}, token=TOKEN)
    assert status == 202 and accepted["subject"] == subjects.CONTROL_EMERGENCY_STOP

    async def stops() -> list[EmergencyStop]:
        import nats

        nc = await nats.connect(stack.nats.url)
        try:
            return of(await stream_events(nc.jetstream(), "TICKTAPE", [subjects.ALL_CONTROL]), EmergencyStop)
        finally:
            await nc.close()

    (stop,) = asyncio.run(stops())
    assert (stop.event_id, stop.reason, stop.account) == (accepted["event_id"], "drill", "*")

    def halted() -> bool:
        return all(a["halted"] for a in call(stack.api, "/api/v1/accounts")[2]["accounts"])

    asyncio.run(eventually(halted, timeout=10, what="the account halted in the read model"))
    status, _, _ = call(stack.api, "/api/v1/control/resume", "POST", None, token=TOKEN)
    assert status == 202
    asyncio.run(eventually(lambda: not halted(), timeout=10, what="trading resumed in the read model"))


def test_a_second_api_rebuilds_the_same_answers_from_the_log(stack: Stack, tmp_path: Path) -> None:
    paths = ["/api/v1/fills?limit=1000", "/api/v1/orders?limit=1000", "/api/v1/positions", "/api/v1/performance"]
    first = [call(stack.api, p)[2] for p in paths]
    second_api = start_api(stack.nats.url, tmp_path / "home2")
    try:

        def caught_up() -> bool:
            m = call(second_api, "/api/v1/metrics")[2]
            return m["behind"] == 0 and m["applied_seq"] > 0

        asyncio.run(eventually(caught_up, timeout=30, what="the second API caught up"))
        assert [call(second_api, p)[2] for p in paths] == first
    finally:
        stop_api(second_api)


def test_openapi_is_served_and_is_the_committed_one(stack: Stack) -> None:
    _, _, served = call(stack.api, "/openapi.json")
    committed = json.loads((ROOT / "proto" / "openapi.json").read_text())
    assert served == committed


def test_the_api_holds_to_its_openapi_document(stack: Stack, tmp_path: Path) -> None:
    """schemathesis (its CLI, as an operator would run it) against the served document: every
    operation with examples, boundary (coverage) and fuzzed inputs, valid and invalid, and every
    check it has: no server error, status codes, content types and bodies as documented
    (problem+json on errors), invalid data rejected, valid data accepted, auth not ignored."""
    report = tmp_path / "report.json"
    config = tmp_path / "schemathesis.toml"
    # /health answers 503 by design when the score is below the threshold (here: no service runs)
    config.write_text(
        '[[operations]]\ninclude-path = "/health"\n'
        'checks.not_a_server_error.expected-statuses = ["2XX", "4XX", "503"]\n'
    )
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "schemathesis"),
            "--config-file",
            str(config),
            "run",
            f"{stack.api.url}/openapi.json",
            "--checks",
            "all",
            "--max-examples",
            "30",
            "--seed",
            "20261201",
            "--workers",
            "1",
            "--phases",
            "examples,coverage,fuzzing",
            "--header",
            f"Authorization: Bearer {TOKEN}",
            "--report",
            "json",
            "--report-json-path",
            str(report),
            "--output-sanitize",
            "true",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=dict(os.environ, NO_COLOR="1", SCHEMATHESIS_HOOKS=""),
        cwd=tmp_path,  # its own files (.schemathesis/) stay out of the checkout
    )
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-4000:]
    assert report.exists()
