"""A live session's fixed parts against the venue simulator (libs/venuesim) and a real nats-server
with ticktape's authorization: the simulator's accounts and their keys, the live accounts' config,
the simulator started with its bars moved onto the present minute, bars and approvals as the
services publish them, reading the stream back, and `replay --verify` over it. Shared by the
live-execution integration tests."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import aiohttp
import eth_account
import pytest
from nats.js import JetStreamContext

from services.execution.spec import core_spec
from ticktape import ids
from ticktape.bus.permissions import ADMIN
from ticktape.bus.provision import ensure_streams
from ticktape.bus.publisher import publish_batch
from ticktape.bus.reader import read_range
from ticktape.clock import NS_PER_MS
from ticktape.config import CommonSettings, NatsSettings
from ticktape.events import AccountReconciled, BarClosed, Event, OrderApproved
from ticktape.events.codec import decode
from ticktape.replay.records import Record, SessionMeta
from ticktape.replay.verify import Verifier
from ticktape.testing import eventually
from ticktape.testing.auth import AuthorizedNats
from venuesim.bars import BarSeries, align
from venuesim.server import VenueSim
from venuesim.trading_config import TradingConfig, parse

STREAM = NatsSettings().stream
NOW_BAR = 5  # the bar in progress at the simulator now
KEY, SECRET = "liveKeyAlpha0123456789abcdef", "liveSecretAlpha0123456789abcdef"
KEY_ENV, SECRET_ENV = "TT_LIVE_TEST_BINANCE_KEY", "TT_LIVE_TEST_BINANCE_SECRET"
USER = eth_account.Account.from_key("0x" + "61" * 32)
AGENT_KEY = "0x" + "62" * 32
AGENT = eth_account.Account.from_key(AGENT_KEY)
SUB = eth_account.Account.from_key("0x" + "63" * 32).address.lower()
AGENT_ENV = "TT_LIVE_TEST_HL_AGENT_KEY"


def sim_accounts(agent: str) -> TradingConfig:
    """The simulator's accounts: Binance's alpha (KEY, SECRET) and Hyperliquid's USER, its agent
    wallet `agent` (an address), and its sub-account SUB."""
    return parse({
        "binance_usdm": [{"name": "alpha", "api_key": KEY, "secret": SECRET, "balance": "10000"}],
        "hyperliquid": {"chain": "testnet", "accounts": [
            {"address": USER.address, "balance": "5000", "agents": [agent]},
            {"address": SUB, "balance": "3000", "master": USER.address},
        ]},
    })  # fmt: skip


SIM_ACCOUNTS = sim_accounts(AGENT.address)


def config(*accounts: dict[str, Any]) -> dict[str, Any]:
    """A config document as `ticktape up --live` hands it to execution (its `live` key set)."""
    return {"live": True, "accounts": list(accounts)}


BINANCE_LIVE = {
    "name": "alpha", "venue": "binance_usdm", "mode": "live", "network": "testnet", "initial_equity": 10_000.0,
    "api_key_env": KEY_ENV, "api_secret_env": SECRET_ENV, "strategies": ["*"],
}  # fmt: skip
HL_LIVE = {
    "name": "hl-sub", "venue": "hyperliquid", "mode": "live", "network": "testnet", "initial_equity": 3_000.0,
    "wallet_key_env": AGENT_ENV, "account_address": USER.address, "vault_address": SUB, "strategies": ["*"],
    "limits": {"max_notional_per_symbol": 2_000.0, "max_gross_exposure": 6_000.0},
}  # fmt: skip
PAPER = {"name": "paper-main", "strategies": ["*"]}


def now_aligned(series: dict[str, BarSeries]) -> tuple[dict[str, BarSeries], int]:
    """The bars moved so that bar NOW_BAR is the one in progress now; (series, now in ms)."""
    now_ms = time.time_ns() // 1_000_000
    minute = now_ms - now_ms % 60_000
    return align(series, earliest=minute - NOW_BAR * 60_000), now_ms


async def live_sim(series: dict[str, BarSeries], start_sim: Any) -> tuple[VenueSim, str, dict[str, BarSeries]]:
    moved, now_ms = now_aligned(series)
    sim, base = await start_sim(moved, start_ms=now_ms, speed=1.0, trading=SIM_ACCOUNTS, heartbeat=None)
    return sim, base, moved


def bar_event(series: BarSeries, i: int, venue: str, symbol: str) -> BarClosed:
    b = series[i]
    return BarClosed(
        event_id=ids.bar_id(venue, symbol, "1m", b.open_time * NS_PER_MS),
        ts_event=b.close_time * NS_PER_MS,
        ts_init=time.time_ns(),
        venue=venue,
        symbol=symbol,
        timeframe="1m",
        open_time=b.open_time * NS_PER_MS,
        close_time=b.close_time * NS_PER_MS,
        open=float(b.open),
        high=float(b.high),
        low=float(b.low),
        close=float(b.close),
        volume=float(b.volume),
        quote_volume=float(b.quote_volume),
    )


def approval(bar: BarClosed, account: str, side: str, qty: float, price: float, name: str) -> OrderApproved:
    return OrderApproved(
        event_id=f"approval-{name}",
        ts_event=bar.ts_event,
        ts_init=time.time_ns(),
        account=account,
        strategy="ensemble9",
        venue=bar.venue,
        symbol=bar.symbol,
        side=side,  # type: ignore[arg-type]
        quantity=qty,
        reference_price=price,
        notional=qty * price,
        target_quantity=qty if side == "buy" else -qty,
        signal_id=f"signal-{name}",
        bar_open_time=bar.open_time,
    )


@pytest.fixture
async def admin_js(nats_auth: AuthorizedNats) -> AsyncIterator[JetStreamContext]:
    nc = await nats_auth.connect(ADMIN)
    js = nc.jetstream()
    await ensure_streams(js, NatsSettings())
    yield js
    await nc.close()


@pytest.fixture
def credentials_in_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    monkeypatch.setenv(AGENT_ENV, AGENT_KEY)


async def publish(nats_auth: AuthorizedNats, role: str, events: Sequence[Event]) -> None:
    nc = await nats_auth.connect(role)
    try:
        await publish_batch(nc.jetstream(), [(e, {}) for e in events])
    finally:
        await nc.close()


async def records(js: JetStreamContext) -> list[Record]:
    out = []
    async for msg in read_range(js, STREAM, [">"]):
        stored = msg.metadata.timestamp
        out.append(
            Record(
                stream=STREAM,
                seq=msg.metadata.sequence.stream,
                subject=msg.subject,
                headers=dict(msg.headers or {}),
                time=int(stored.timestamp() * 1e9),
                data=msg.data,
                in_session=True,
            )  # fmt: skip
        )
    return out


async def events_of(js: JetStreamContext, kind: type, account: str | None = None) -> list[Any]:
    found = [decode(r.data) for r in await records(js)]
    return [e for e in found if isinstance(e, kind) and (account is None or getattr(e, "account", None) == account)]


async def reconciled(js: JetStreamContext, account: str, n: int = 1) -> list[AccountReconciled]:
    """The account's AccountReconciled events, once there are n (its gateway's start snapshot,
    reconciled by the core: before it the account does not trade)."""

    async def found() -> list[AccountReconciled] | None:
        done = await events_of(js, AccountReconciled, account)
        return done if len(done) >= n else None

    result: list[AccountReconciled] = await eventually(found, timeout=60, what=f"{account} reconciled")
    return result


def verify(raw: dict[str, Any], recs: list[Record], families: Sequence[str] = ("fills", "positions")) -> None:
    """What `ticktape replay --verify` proves, over the stream's records: execution re-run over its
    recorded inputs (bars, approvals, the venue's answers) publishes the recorded outputs exactly,
    and each of `families` was published (recorded and replayed alike, more than none)."""
    session = SessionMeta(
        session_id="live-test", start_seq=1, stop_seq=recs[-1].seq, started_ns=0, stopped_ns=1, reason="stopped",
        config_hash="", config=json.dumps(raw), code_version="test", services=("execution",),
    )  # fmt: skip
    verifier = Verifier([core_spec(session.config_doc())], session)
    for rec in recs:
        verifier.feed(rec)
    result = verifier.finish()
    assert result.ok, (result.problems, result.divergences[:2])
    counts = {f.family: (f.recorded_count, f.replayed_count) for f in result.families}
    for family in families:
        assert counts[family][0] == counts[family][1] > 0, (family, counts[family])


async def sim_requests(base: str) -> list[dict[str, Any]]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}/_sim/requests") as resp:
        entries: list[dict[str, Any]] = await resp.json()
        return entries


def execution_common(base: str, nats_auth: AuthorizedNats, tmp_path: Any) -> CommonSettings:
    """Execution's common settings: its home under tmp_path, the simulator as its venues, its own
    bus credential."""
    return CommonSettings(home=str(tmp_path / "home"), venue_sim=base, nats=nats_auth.settings("execution"))
