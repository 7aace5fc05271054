"""A live session as a user runs it: `ticktape up --live --yes --venue-sim URL` (every service its own
process, on an authorized NATS server and the test PostgreSQL) trading two live accounts, each in
its own venue sub-account, on `ticktape venue-sim --accounts FILE` serving real recorded 1m bars
(OctoBot's Binance BTC/USDT, served by Hyperliquid as coin BTC) at the wall clock's pace:

- bn-live: a Binance USDT-M account (API key and secret, HMAC-SHA256);
- hl-live: a Hyperliquid sub-account (vault_address) of a user, traded by the user's API (agent) wallet.

A fast ema_cross trades both: each account reconciles with its venue (AccountReconciled), then
orders are placed and filled over the user streams. Then, from outside:
- every Binance HMAC recomputed and every Hyperliquid signer recovered with the official SDK
  (hyperliquid.utils.signing) from the simulator's GET /_sim/requests;
- the positions on the log equal the simulator's account state (read with the venues' own REST/info);
- the stack stops cleanly and `ticktape replay SESSION --verify` (the CLI) exits 0;
- the key material (Binance key and secret, the agent's private key with and without 0x) is in
  none of: up's stdout/stderr and every other file under the home (the services' logs included),
  every message on every stream, the exported session file (decompressed), the audit_log rows in
  PostgreSQL, and the argv (/proc/<pid>/cmdline) of every process on the host while the stack runs.
  A positive control plants the key where the searches look and shows they find it."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import hmac
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import aiohttp
import eth_account
import pytest
from hyperliquid.utils.signing import recover_agent_or_user_from_l1_action

from exchanges.trading.binance_sign import BinanceCredentials
from exchanges.trading.clients.binance_usdm import BinanceUsdmClient
from exchanges.trading.clients.hyperliquid import HyperliquidClient
from exchanges.trading.hyperliquid_sign import HyperliquidSigner
from tests.support.recorded import OCTOBOT_BTC, convert_octobot
from ticktape import subjects
from ticktape.bus.permissions import ADMIN
from ticktape.bus.reader import read_range
from ticktape.events import AccountReconciled, Event, OrderFilled, OrderSubmitted, PositionUpdated, VenueFill
from ticktape.testing.auth import AuthorizedNats
from ticktape.testing.bus import stream_events
from ticktape.testing.stack import Stack, wait_for
from venuesim.bars import load_dir

T = TypeVar("T")
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

HL_VAR, BN_KEY_VAR, BN_SECRET_VAR = "TT_E2E_LIVE_HL_AGENT_KEY", "TT_E2E_LIVE_BN_KEY", "TT_E2E_LIVE_BN_SECRET"
WARM_BARS = 300  # recorded minutes before the simulator's clock starts: history that warms the strategy
LEAD_S = 45  # the simulator starts this long before its first live bar closes (the stack starts meanwhile)


class Keys:
    """One run's credentials: a Binance key and secret, a Hyperliquid user (whose key the test
    never holds), its API wallet (the agent, whose key ticktape holds) and a sub-account."""

    def __init__(self) -> None:
        self.bn_key = secrets.token_hex(24)
        self.bn_secret = secrets.token_hex(32)
        self.agent_key = "0x" + secrets.token_hex(32)
        self.agent = eth_account.Account.from_key(self.agent_key).address
        self.user = eth_account.Account.create().address
        self.sub = eth_account.Account.create().address.lower()

    def env(self) -> dict[str, str]:
        return {HL_VAR: self.agent_key, BN_KEY_VAR: self.bn_key, BN_SECRET_VAR: self.bn_secret}

    def material(self) -> dict[str, bytes]:
        """What must never leak: each value, the Hyperliquid key with and without 0x (either case)."""
        bare = self.agent_key[2:]
        return {
            "binance api key": self.bn_key.encode(),
            "binance secret": self.bn_secret.encode(),
            "hyperliquid key": self.agent_key.encode(),
            "hyperliquid key without 0x": bare.encode(),
            "hyperliquid key without 0x, upper case": bare.upper().encode(),
        }


def config(keys: Keys) -> str:
    return f"""
symbol_registry:
  venues:
    - {{venue: binance_usdm, top_n: 1}}
    - {{venue: hyperliquid, top_n: 1}}
market_data:
  venues:
    - {{venue: binance_usdm}}
    - {{venue: hyperliquid}}
signal:
  timeframe: 1m
  strategies:
    - {{kind: ema_cross, name: fast, params: {{fast: 2, slow: 3}}}}
accounts:
  - name: bn-live
    mode: live
    venue: binance_usdm
    network: testnet
    api_key_env: {BN_KEY_VAR}
    api_secret_env: {BN_SECRET_VAR}
    initial_equity: 10000
    strategies: [fast]
    limits: {{fraction: 0.05, max_notional_per_symbol: 2000, max_gross_exposure: 4000}}
  - name: hl-live
    mode: live
    venue: hyperliquid
    network: testnet
    wallet_key_env: {HL_VAR}
    account_address: "{keys.user}"
    vault_address: "{keys.sub}"
    initial_equity: 10000
    strategies: [fast]
    limits: {{fraction: 0.05, max_notional_per_symbol: 2000, max_gross_exposure: 4000}}
"""


@contextmanager
def venue_sim(tmp_path: Path, keys: Keys) -> Iterator[str]:
    """`ticktape venue-sim` holding both accounts, its clock started at boot WARM_BARS minutes into
    the recorded bars, LEAD_S before a bar closes, running at the wall clock's pace (--speed 1: the
    venues' timestamps and nonces are checked against its clock, which the gateway measures)."""
    accounts = tmp_path / "sim-accounts.json"
    accounts.touch(mode=0o600)
    accounts.write_text(json.dumps({
        "binance_usdm": [{"name": "bn", "api_key": keys.bn_key, "secret": keys.bn_secret, "balance": "10000"}],
        "hyperliquid": {"chain": "testnet", "accounts": [
            {"address": keys.user, "balance": "10000", "agents": [keys.agent]},
            {"address": keys.sub, "balance": "10000", "master": keys.user},
        ]},
    }))  # fmt: skip
    bars = convert_octobot(tmp_path / "bars", OCTOBOT_BTC)
    series = load_dir(bars)["BTCUSDT"]
    start_ms = series[WARM_BARS].close_time + 1 - LEAD_S * 1000
    with (tmp_path / "venue-sim.err").open("wb") as errors:
        sim = subprocess.Popen(
            [sys.executable, "-m", "ticktape", "venue-sim", "--data", str(bars), "--port", "0", "--speed", "1",
             "--start", str(start_ms), "--accounts", str(accounts)],
            stdout=subprocess.PIPE, stderr=errors,
        )  # fmt: skip
        try:
            assert sim.stdout is not None
            line = sim.stdout.readline().decode()
            assert "listening on" in line, (tmp_path / "venue-sim.err").read_text()
            yield line.strip().rsplit(" ", 1)[-1]
        finally:
            sim.terminate()
            sim.wait(10)
            if sim.stdout is not None:
                sim.stdout.close()
    accounts.unlink()  # the simulator's own copy of the keys: not part of what ticktape wrote


# -- reading the bus, the simulator, PostgreSQL ---------------------------------------------------


def every_message(auth: AuthorizedNats) -> list[tuple[str, str, bytes, bytes]]:
    """(stream, subject, headers, data) of every message on every stream of the server."""

    async def read() -> list[tuple[str, str, bytes, bytes]]:
        nc = await auth.connect(ADMIN)
        try:
            js = nc.jetstream()
            out = []
            for info in await js.streams_info():
                name = info.config.name or ""
                async for msg in read_range(js, name, [">"]):
                    headers = json.dumps(msg.headers or {}).encode()
                    out.append((name, msg.subject, headers, msg.data))
            return out
        finally:
            await nc.close()

    return asyncio.run(read())


def events(auth: AuthorizedNats) -> list[Event]:
    async def read() -> list[Event]:
        nc = await auth.connect(ADMIN)
        try:
            return await stream_events(nc.jetstream(), subjects.EVENTS_STREAM)
        finally:
            await nc.close()

    return asyncio.run(read())


def of(found: list[Event], kind: type, account: str | None = None) -> list[Any]:
    return [e for e in found if isinstance(e, kind) and (account is None or getattr(e, "account", None) == account)]


def sim_requests(url: str) -> list[dict[str, Any]]:
    async def get() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as http, http.get(f"{url}/_sim/requests") as resp:
            entries: list[dict[str, Any]] = await resp.json()
            return entries

    return asyncio.run(get())


def venue_positions(url: str, keys: Keys) -> dict[str, dict[str, tuple[float, float]]]:
    """Each account's positions at the simulator, {symbol: (quantity, entry price)}, read with the
    venues' own endpoints (Binance /fapi/v2/positionRisk signed on the simulator's clock,
    Hyperliquid /info clearinghouseState of the sub-account)."""

    async def read() -> dict[str, dict[str, tuple[float, float]]]:
        async with aiohttp.ClientSession() as http:
            before = time.time_ns() // 1_000_000
            async with http.get(f"{url}/binance_usdm/fapi/v1/time") as resp:
                offset = int((await resp.json())["serverTime"]) - before
            bn = BinanceUsdmClient(http, BinanceCredentials(keys.bn_key, keys.bn_secret),
                                   base_url=f"{url}/binance_usdm",
                                   clock_ms=lambda: time.time_ns() // 1_000_000 + offset)  # fmt: skip
            signer = HyperliquidSigner.from_key(keys.agent_key, account_address=keys.user, vault_address=keys.sub)
            hl = HyperliquidClient(http, signer, base_url=f"{url}/hyperliquid")
            state = await hl.account()
            return {
                "bn-live": {p.symbol: (float(p.quantity), float(p.entry_price)) for p in await bn.positions()},
                "hl-live": {p.symbol: (float(p.quantity), float(p.entry_price)) for p in state.positions},
            }

    return asyncio.run(read())


def audit_rows(dsn: str) -> list[tuple[Any, ...]]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        return list(conn.execute("SELECT * FROM audit_log").fetchall())


def ticktape(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TICKTAPE_")}
    return subprocess.run([sys.executable, "-m", "ticktape", *args], capture_output=True, text=True, timeout=180,
                          env=env)  # fmt: skip


# -- the searches for key material -------------------------------------------------------------


def leaks(places: Iterable[tuple[str, bytes]], material: dict[str, bytes]) -> list[str]:
    return [f"{name} in {where}" for where, blob in places for name, value in material.items() if value in blob]


def files_under(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            yield str(path), path.read_bytes()


def argvs() -> Iterator[tuple[str, bytes]]:
    """The argument list of every process on the host (those that end while read: skipped)."""
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                yield f"/proc/{proc.name}/cmdline", (proc / "cmdline").read_bytes()
            except OSError:
                continue


def session_file(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def row_blobs(rows: list[tuple[Any, ...]]) -> Iterator[tuple[str, bytes]]:
    for row in rows:
        yield (
            f"audit_log row {row[:2]}",
            b"\0".join(bytes(v) if isinstance(v, bytes | memoryview) else str(v).encode() for v in row),
        )


# -- signatures --------------------------------------------------------------------------------


def check_binance_signatures(requests: list[dict[str, Any]], keys: Keys) -> int:
    """Every signed Binance request (a `timestamp` in its parameters) carries the HMAC-SHA256 of its
    query string and body under the secret, and the API key header; returns how many orders."""
    signed = orders = 0
    for entry in requests:
        if not entry["path"].startswith("/binance_usdm/"):
            continue
        query = urlsplit(entry["path"]).query
        body = entry.get("body") or ""
        total = query + body if query and body else query or body
        if "timestamp=" not in total:
            continue
        payload, sep, signature = total.rpartition("&signature=")
        assert sep, entry["path"]
        assert signature == hmac.new(keys.bn_secret.encode(), payload.encode(), hashlib.sha256).hexdigest(), entry
        headers = {k.lower(): v for k, v in entry["headers"]}
        assert headers["x-mbx-apikey"] == keys.bn_key
        signed += 1
        orders += entry["method"] == "POST" and urlsplit(entry["path"]).path.endswith("/fapi/v1/order")
    assert signed > orders > 0, (signed, orders)
    return orders


def check_hyperliquid_signers(requests: list[dict[str, Any]], keys: Keys) -> int:
    """Every /exchange request's L1 signature recovers (with the official SDK, testnet) to the
    agent wallet, acting on the sub-account; returns how many."""
    recovered = []
    for entry in requests:
        if entry["path"] != "/hyperliquid/exchange":
            continue
        sent = json.loads(entry["body"])
        assert sent["vaultAddress"] == keys.sub
        recovered.append(recover_agent_or_user_from_l1_action(
            sent["action"], sent["signature"], sent["vaultAddress"], sent["nonce"], sent.get("expiresAfter"), False
        ).lower())  # fmt: skip
    assert recovered and set(recovered) == {keys.agent.lower()}, recovered
    return len(recovered)


# -- the session --------------------------------------------------------------------------------


def test_live_session_on_both_venues_signed_reconciled_replayed_and_without_a_credential_anywhere(
    tmp_path: Path, nats_auth: AuthorizedNats, e2e_dsn: str
) -> None:
    keys = Keys()
    material = keys.material()
    home = tmp_path / "home"
    argv_leaks: list[str] = []

    def watched(predicate: Callable[[], T]) -> Callable[[], T]:
        """The predicate, and meanwhile every process's argv searched (each poll while running)."""

        def poll() -> T:
            argv_leaks.extend(leaks(argvs(), material))
            return predicate()

        return poll

    with venue_sim(tmp_path, keys) as url:
        env = {**keys.env(), "TICKTAPE_NATS__CREDS_DIR": str(nats_auth.creds_dir)}
        stack = Stack(home, nats_url=nats_auth.url, pg_dsn=e2e_dsn, venue_sim=url, config_yaml=config(keys),
                      extra_env=env, args=("--live", "--yes"))  # fmt: skip
        try:
            wait_for(watched(lambda: stack.state() == "running"), timeout=90, what="the live stack running")
            for account in ("bn-live", "hl-live"):

                def reconciled(a: str = account) -> list[AccountReconciled]:
                    return of(events(nats_auth), AccountReconciled, a)

                wait_for(watched(reconciled), timeout=90, what=f"{account} reconciled", interval=1)

            def filled_on_both() -> bool:
                found = events(nats_auth)
                return all(
                    [f for f in of(found, OrderFilled, a) if f.mode == "live"] and of(found, VenueFill, a)
                    for a in ("bn-live", "hl-live")
                )

            wait_for(watched(filled_on_both), timeout=240, what="live orders filled on both venues", interval=1)
            assert not argv_leaks, argv_leaks
            assert stack.stop(timeout=120) == 0, stack.logs()
        finally:
            stack.stop()

        found = events(nats_auth)
        requests = sim_requests(url)
        at_venue = venue_positions(url, keys)

    # each account reconciled with its venue before its first order
    for account in ("bn-live", "hl-live"):
        first_reconciled = next(i for i, e in enumerate(found) if isinstance(e, AccountReconciled)
                                and e.account == account)  # fmt: skip
        first_order = next(i for i, e in enumerate(found) if isinstance(e, OrderSubmitted) and e.account == account)
        assert first_reconciled < first_order, account

    # signed right: every HMAC recomputed, every signer recovered, one request per order event
    submitted = [o for o in of(found, OrderSubmitted) if o.mode == "live"]
    assert check_binance_signatures(requests, keys) == len([o for o in submitted if o.account == "bn-live"])
    assert check_hyperliquid_signers(requests, keys) >= len([o for o in submitted if o.account == "hl-live"]) > 0

    # positions on the log (each account's last update per symbol) are the simulator's
    for account in ("bn-live", "hl-live"):
        logged: dict[str, tuple[float, float]] = {}
        for p in of(found, PositionUpdated, account):
            logged[p.symbol] = (p.quantity, p.avg_price)
        held = {s: q for s, q in logged.items() if abs(q[0]) > 1e-12}
        assert held, (account, logged)  # a position to compare: the account traded
        assert held.keys() == at_venue[account].keys(), (account, logged, at_venue)
        for symbol, (qty, price) in held.items():
            assert at_venue[account][symbol][0] == pytest.approx(qty, abs=1e-9), (account, symbol)
            assert at_venue[account][symbol][1] == pytest.approx(price, rel=1e-9), (account, symbol)

    # the recorded session replays byte for byte, as a user runs it
    creds = ("--nats", nats_auth.url, "--creds", nats_auth.creds(ADMIN))
    listed = ticktape("sessions", "--json", *creds)
    assert listed.returncode == 0, listed.stderr
    [session] = [json.loads(line) for line in listed.stdout.splitlines()]
    assert session["status"] == "stopped", session
    replayed = ticktape("replay", session["session_id"], "--verify", *creds)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    exported = tmp_path / "export" / "live.ttsession.gz"
    exported.parent.mkdir()
    done = ticktape("export", session["session_id"], str(exported), *creds)
    assert done.returncode == 0, done.stderr
    assert session["session_id"].encode() in session_file(exported)  # the search below reads the session

    # no key material anywhere
    rows = audit_rows(e2e_dsn)
    assert len(rows) >= len(found) > 0
    messages = every_message(nats_auth)
    places = [
        *files_under(home),  # up.out, up.err, the services' logs and run files, the NATS store
        *((f"{stream} {subject}", headers + b"\0" + data) for stream, subject, headers, data in messages),
        (str(exported), session_file(exported)),
        *row_blobs(rows),
        ("replay's output", (replayed.stdout + replayed.stderr).encode()),
    ]
    assert not leaks(places, material), leaks(places, material)
    assert (home / "up.err").stat().st_size > 0 and len(messages) > len(found) / 2

    # positive control: the same searches find a key planted where they look
    (home / "logs-planted.txt").write_bytes(b"x " + material["binance secret"] + b" y")
    assert leaks(files_under(home), material) == [f"binance secret in {home / 'logs-planted.txt'}"]
    planted_row = [("r", 1, memoryview(b"a" + keys.agent_key[2:].encode() + b"b"))]
    assert "hyperliquid key without 0x in audit_log row ('r', 1)" in leaks(row_blobs(planted_row), material)
    planted_gz = tmp_path / "planted.gz"
    planted_gz.write_bytes(gzip.compress(b"{" + keys.bn_key.encode() + b"}"))
    assert leaks([("gz", session_file(planted_gz))], material) == ["binance api key in gz"]
    waits = "import sys; print(flush=True); sys.stdin.read()"
    witness = subprocess.Popen([sys.executable, "-c", waits, keys.agent_key],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE)  # fmt: skip
    try:
        assert witness.stdout is not None
        witness.stdout.readline()  # it runs: its argv is the one given, no longer the forking parent's
        assert f"hyperliquid key in /proc/{witness.pid}/cmdline" in leaks(argvs(), material)
    finally:
        witness.kill()
        witness.communicate()  # reaped, its stdin closed
