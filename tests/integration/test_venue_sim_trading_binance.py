"""Binance USDT-M trading on the venue simulator, on loopback, over real converted 1m bars
(OctoBot): requests signed here with stdlib hmac exactly as Binance specifies (HMAC-SHA256 of the
query string), refused ones checked against Binance's codes, fills read back over the user data
stream, and every signature recomputed from outside over GET /_sim/requests."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import sys
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlencode

import aiohttp
import pytest

from tests.integration.test_venue_sim import FakeWall, http, series, start_sim
from ticktape.testing import eventually
from ticktape.testing.data import shared_data
from venuesim.bars import MINUTE_MS
from venuesim.cli import main
from venuesim.convert import convert_path
from venuesim.trading_config import parse

__all__ = ["http", "series", "start_sim"]  # fixtures used here

KEY, SECRET = "simKeyAlpha0123456789", "simSecretAlpha0123456789"
POOR_KEY, POOR_SECRET = "simKeyPoor0123456789", "simSecretPoor0123456789"
ACCOUNTS = parse({
    "binance_usdm": [
        {"name": "alpha", "api_key": KEY, "secret": SECRET, "balance": "10000"},
        {"name": "poor", "api_key": POOR_KEY, "secret": POOR_SECRET, "balance": "20"},
    ]
})  # fmt: skip
ORDER_KEYS = [
    "clientOrderId", "cumQty", "cumQuote", "executedQty", "orderId", "avgPrice", "origQty", "price", "reduceOnly",
    "side", "positionSide", "status", "stopPrice", "closePosition", "symbol", "timeInForce", "type", "origType",
    "updateTime", "workingType", "priceProtect", "priceMatch", "selfTradePreventionMode", "goodTillDate",
]  # fmt: skip
OTU_KEYS = [
    "s", "c", "S", "o", "f", "q", "p", "ap", "sp", "x", "X", "i", "l", "z", "L", "T", "t", "b", "a", "m", "R", "wt",
    "ot", "ps", "cp", "rp", "pP", "si", "ss", "V", "pm", "gtd", "er",
]  # fmt: skip


class Client:
    """Signed USDT-M requests as a Binance client builds them: params in the query string, then
    `signature` = hex HMAC-SHA256(secret, query string)."""

    def __init__(self, http: aiohttp.ClientSession, base: str, clock: Any, key: str = KEY, secret: str = SECRET):
        self.http, self.base, self.clock, self.key, self.secret = http, base, clock, key, secret

    def query(self, params: dict[str, Any], timestamp: int | None = None) -> str:
        params = {**params, "timestamp": self.clock.now_ms() if timestamp is None else timestamp}
        query = urlencode(params)
        return f"{query}&signature={hmac.new(self.secret.encode(), query.encode(), hashlib.sha256).hexdigest()}"

    async def send(self, method: str, path: str, query: str, headers: dict[str, str] | None = None) -> tuple[int, Any]:
        headers = {"X-MBX-APIKEY": self.key} if headers is None else headers
        async with self.http.request(method, f"{self.base}{path}?{query}", headers=headers) as resp:
            return resp.status, await resp.json()

    async def signed(self, method: str, path: str, **params: Any) -> tuple[int, Any]:
        return await self.send(method, path, self.query(params))


async def test_orders_when_placed_queried_canceled_then_binance_answers(series, start_sim, http):
    bars = series["BTCUSDT"]
    sim, base = await start_sim(series, start_ms=bars.open_times[5], wall=FakeWall(), trading=ACCOUNTS)
    alpha = Client(http, base, sim.clock)
    price = Decimal(bars.fields(5)[1])

    status, bought = await alpha.signed(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01",
        newClientOrderId="buy-1", newOrderRespType="RESULT",
    )  # fmt: skip
    assert status == 200 and list(bought) == ORDER_KEYS
    assert (bought["status"], bought["executedQty"], Decimal(bought["avgPrice"]), bought["clientOrderId"]) == (
        "FILLED", "0.010000", price, "buy-1")  # fmt: skip
    status, ack = await alpha.signed(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="MARKET", quantity="0.004"
    )
    assert (status, ack["status"], ack["executedQty"]) == (200, "NEW", "0")  # ACK: the order as acknowledged

    limit = (price * Decimal("0.98")).quantize(Decimal("0.01"))
    status, rested = await alpha.signed(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002",
        price=str(limit), newClientOrderId="bid-1",
    )  # fmt: skip
    assert (status, rested["status"], Decimal(rested["price"])) == (200, "NEW", limit)
    for by in ({"orderId": rested["orderId"]}, {"origClientOrderId": "bid-1"}):
        status, found = await alpha.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", **by)
        assert (status, found["orderId"], found["status"], found["time"]) == (
            200, rested["orderId"], "NEW", sim.clock.now_ms())  # fmt: skip
    status, opened = await alpha.signed("GET", "/fapi/v1/openOrders", symbol="BTCUSDT")
    assert [o["orderId"] for o in opened] == [rested["orderId"]]
    duplicate = await alpha.signed(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="GTC", quantity="0.002",
        price=str(limit), newClientOrderId="bid-1",
    )  # fmt: skip
    assert duplicate == (400, {"code": -4116, "msg": "ClientOrderId is duplicated."})
    status, canceled = await alpha.signed("DELETE", "/fapi/v1/order", symbol="BTCUSDT", origClientOrderId="bid-1")
    assert (status, canceled["status"], canceled["orderId"]) == (200, "CANCELED", rested["orderId"])
    assert await alpha.signed("DELETE", "/fapi/v1/order", symbol="BTCUSDT", orderId=rested["orderId"]) == (
        400, {"code": -2011, "msg": "Unknown order sent."})  # fmt: skip
    assert await alpha.signed("GET", "/fapi/v1/order", symbol="BTCUSDT", orderId=999) == (
        400, {"code": -2013, "msg": "Order does not exist."})  # fmt: skip
    ioc = await alpha.signed(
        "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="LIMIT", timeInForce="IOC", quantity="0.002",
        price=str(limit), newOrderRespType="RESULT",
    )  # fmt: skip
    assert (ioc[1]["status"], ioc[1]["executedQty"]) == ("EXPIRED", "0")

    status, risk = await alpha.signed("GET", "/fapi/v2/positionRisk", symbol="BTCUSDT")
    assert status == 200 and len(risk) == 1
    assert (risk[0]["positionAmt"], Decimal(risk[0]["entryPrice"]), risk[0]["positionSide"]) == (
        "0.006000", price, "BOTH")  # fmt: skip
    status, account = await alpha.signed("GET", "/fapi/v2/account")
    fees = Decimal("0.01") * price * Decimal("0.0005") + Decimal("0.004") * price * Decimal("0.0005")
    assert Decimal(account["totalWalletBalance"]) == (Decimal(10000) - fees).quantize(Decimal("1e-8"))
    assert [(p["symbol"], p["positionAmt"]) for p in account["positions"]] == [
        ("BTCUSDT", "0.006000"), ("ETHUSDT", "0.00000")]  # fmt: skip


@pytest.mark.parametrize(
    ("params", "body"),
    [
        ({"symbol": "NOPEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1"},
         {"code": -1121, "msg": "Invalid symbol."}),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0001"},
         {"code": -4164, "msg": "Order's notional must be no smaller than 5 (unless you choose reduce only)."}),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.0010001"},
         {"code": -1111, "msg": "Precision is over the maximum defined for this asset."}),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.01",
          "price": "9000.001"}, {"code": -1111, "msg": "Precision is over the maximum defined for this asset."}),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0"},
         {"code": -4003, "msg": "Quantity less than or equal to zero."}),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "50"},
         {"code": -2019, "msg": "Margin is insufficient."}),
        ({"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.01", "reduceOnly": "true"},
         {"code": -2022, "msg": "ReduceOnly Order is rejected."}),
        ({"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "quantity": "0.01", "price": "9000"},
         {"code": -1102, "msg": "Mandatory parameter 'timeInForce' was not sent, was empty/null, or malformed."}),
        ({"symbol": "BTCUSDT", "side": "HOLD", "type": "MARKET", "quantity": "0.01"},
         {"code": -1117, "msg": "Invalid side."}),
    ],
)  # fmt: skip
async def test_new_order_when_rule_broken_then_binance_code(series, start_sim, http, params, body):
    bars = series["BTCUSDT"]
    sim, base = await start_sim(series, start_ms=bars.open_times[5], wall=FakeWall(), trading=ACCOUNTS)
    assert await Client(http, base, sim.clock).signed("POST", "/fapi/v1/order", **params) == (400, body)


async def test_signed_request_when_key_signature_or_time_wrong_then_refused_with_binance_codes(series, start_sim, http):
    bars = series["BTCUSDT"]
    sim, base = await start_sim(series, start_ms=bars.open_times[5], wall=FakeWall(), trading=ACCOUNTS)
    alpha = Client(http, base, sim.clock)
    now = sim.clock.now_ms()
    path = "/fapi/v2/account"
    assert await alpha.send("GET", path, alpha.query({}), headers={}) == (
        401, {"code": -2014, "msg": "API-key format invalid."})  # fmt: skip
    assert await alpha.send("GET", path, alpha.query({}), headers={"X-MBX-APIKEY": "nobody"}) == (
        401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})  # fmt: skip
    forged = Client(http, base, sim.clock, KEY, "not-the-secret")
    assert await forged.send("GET", path, forged.query({})) == (
        400, {"code": -1022, "msg": "Signature for this request is not valid."})  # fmt: skip
    other_keys = Client(http, base, sim.clock, KEY, POOR_SECRET)  # another account's secret
    assert (await other_keys.send("GET", path, other_keys.query({})))[1]["code"] == -1022
    tampered = alpha.query({"symbol": "BTCUSDT"}).replace("BTCUSDT", "ETHUSDT")
    assert (await alpha.send("GET", "/fapi/v2/positionRisk", tampered))[1]["code"] == -1022
    assert await alpha.send("GET", path, alpha.query({}, timestamp=now - 5001)) == (
        400, {"code": -1021, "msg": "Timestamp for this request is outside of the recvWindow."})  # fmt: skip
    assert (await alpha.send("GET", path, alpha.query({"recvWindow": 10_000}, timestamp=now - 5001)))[0] == 200
    assert await alpha.send("GET", path, alpha.query({}, timestamp=now + 1000)) == (
        400, {"code": -1021, "msg": "Timestamp for this request was 1000ms ahead of the server's time."})  # fmt: skip
    missing = "Mandatory parameter 'signature' was not sent, was empty/null, or malformed."
    assert await alpha.send("GET", path, f"timestamp={now}") == (400, {"code": -1102, "msg": missing})
    assert await alpha.send("POST", "/fapi/v1/listenKey", "", headers={}) == (
        401, {"code": -2014, "msg": "API-key format invalid."})  # fmt: skip

    # A signature over params sent as a form body, with the query string: Binance's totalParams.
    query = "symbol=BTCUSDT&side=BUY&type=MARKET"
    body = f"quantity=0.01&timestamp={now}"
    signature = hmac.new(SECRET.encode(), (query + body).encode(), hashlib.sha256).hexdigest()
    async with http.post(
        f"{base}/fapi/v1/order?{query}", data=f"{body}&signature={signature}",
        headers={"X-MBX-APIKEY": KEY, "Content-Type": "application/x-www-form-urlencoded"},
    ) as resp:  # fmt: skip
        assert resp.status == 200 and (await resp.json())["status"] == "NEW"

    # From outside: the signature of every accepted request recomputed from the request as received.
    async with http.get(f"{base}/_sim/requests") as resp:
        log = await resp.json()
    secrets = {SECRET: "alpha", "not-the-secret": "forged", POOR_SECRET: "poor"}
    signers = []
    for entry in log:
        headers = dict(entry["headers"])
        if headers.get("X-MBX-APIKEY") != KEY or "signature=" not in entry["path"] + entry["body"]:
            continue
        query = entry["path"].partition("?")[2]
        total = "&".join(p for p in query.split("&") if not p.startswith("signature=")) + "&".join(
            p for p in entry["body"].split("&") if p and not p.startswith("signature="))  # fmt: skip
        sent = dict(parse_qsl(query) + parse_qsl(entry["body"]))["signature"]
        valid = [name for secret, name in secrets.items()
                 if hmac.new(secret.encode(), total.encode(), hashlib.sha256).hexdigest() == sent]  # fmt: skip
        signers.append(valid)
    # forged, another account's secret, tampered after signing, then four signed right (two refused for time)
    assert signers == [["forged"], ["poor"], [], ["alpha"], ["alpha"], ["alpha"], ["alpha"]]


async def test_signed_request_windows_when_the_sim_runs_at_speed_x_then_are_wall_clock_time(series, start_sim, http):
    """recvWindow and the 1000 ms allowance bound a network's delay and a host clock's error,
    which do not speed up with the simulation: at --speed 10 they are 10 times as many simulated
    ms. GET /_sim/clock gives a client the simulator's time and pace to stamp requests with."""
    bars = series["BTCUSDT"]
    sim, base = await start_sim(series, start_ms=bars.open_times[5], speed=10.0, wall=FakeWall(), trading=ACCOUNTS)
    alpha = Client(http, base, sim.clock)
    now = sim.clock.now_ms()
    async with http.get(f"{base}/_sim/clock") as resp:
        assert await resp.json() == {"now_ms": now, "speed": 10.0, "started": True}
    path = "/fapi/v2/account"
    assert (await alpha.send("GET", path, alpha.query({}, timestamp=now - 49_999)))[0] == 200  # 5 s of wall time
    assert (await alpha.send("GET", path, alpha.query({}, timestamp=now - 50_001)))[1]["code"] == -1021
    assert (await alpha.send("GET", path, alpha.query({}, timestamp=now + 9_999)))[0] == 200  # 1 s ahead
    assert (await alpha.send("GET", path, alpha.query({}, timestamp=now + 10_000)))[1]["code"] == -1021


def breakout(highs: list[Decimal], lookback: int) -> int:
    """The first bar whose high is above every high of the `lookback` bars before it."""
    return next(j for j in range(lookback, len(highs)) if highs[j] > max(highs[j - lookback : j]))


async def test_user_stream_when_orders_trade_then_order_and_account_updates(series, start_sim, http):
    bars = series["BTCUSDT"]
    highs = [Decimal(bars.fields(i)[2]) for i in range(len(bars))]
    lookback = 20  # bars of wall time (0.1 s each at 600x) to place the orders in
    j = breakout(highs, lookback)
    ask = max(highs[j - lookback : j]) + Decimal("0.01")  # above everything before bar j; bar j reaches it
    sim, base = await start_sim(series, start_ms=bars.open_times[j - lookback], speed=600.0, trading=ACCOUNTS)
    alpha = Client(http, base, sim.clock)
    headers = {"X-MBX-APIKEY": KEY}
    async with http.post(f"{base}/fapi/v1/listenKey", headers=headers) as resp:
        key = (await resp.json())["listenKey"]
    async with http.post(f"{base}/fapi/v1/listenKey", headers=headers) as resp:
        assert (await resp.json()) == {"listenKey": key}  # an active key is returned again
    async with http.put(f"{base}/fapi/v1/listenKey", headers=headers) as resp:
        assert (resp.status, await resp.json()) == (200, {"listenKey": key})

    events: list[dict[str, Any]] = []
    async with http.ws_connect(f"{base}/ws/{key}") as ws:

        async def read() -> None:
            async for msg in ws:
                events.append(json.loads(msg.data))

        reader = asyncio.create_task(read())
        status, bought = await alpha.signed(
            "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01",
            newClientOrderId="mkt-1", newOrderRespType="RESULT",
        )  # fmt: skip
        assert status == 200 and bought["status"] == "FILLED"
        price = Decimal(bought["avgPrice"])
        # A reduce-only sell above the market: the matcher fills it when the feed reaches bar j.
        status, rested = await alpha.signed(
            "POST", "/fapi/v1/order", symbol="BTCUSDT", side="SELL", type="LIMIT", timeInForce="GTC",
            quantity="0.01", price=str(ask), reduceOnly="true", newClientOrderId="tp-1",
        )  # fmt: skip
        assert status == 200 and rested["status"] == "NEW"
        assert rested["updateTime"] < bars.open_times[j], "the orders must be placed before bar j opens"

        def trades() -> list[dict[str, Any]]:
            return [e["o"] for e in events if e["e"] == "ORDER_TRADE_UPDATE" and e["o"]["x"] == "TRADE"]

        await eventually(lambda: len(trades()) == 2, timeout=15, what="the resting sell to trade")
        await eventually(lambda: sum(e["e"] == "ACCOUNT_UPDATE" for e in events) == 2, what="account updates")
        await ws.close()
        await reader

    # at bar j's open if it opened through the limit, else at its close (its high reached it)
    crossed_at = bars.open_times[j] + (0 if Decimal(bars.fields(j)[1]) >= ask else MINUTE_MS)
    otu = [e for e in events if e["e"] == "ORDER_TRADE_UPDATE"]
    assert [(e["o"]["c"], e["o"]["x"], e["o"]["X"]) for e in otu] == [
        ("mkt-1", "NEW", "NEW"),
        ("mkt-1", "TRADE", "FILLED"),
        ("tp-1", "NEW", "NEW"),
        ("tp-1", "TRADE", "FILLED"),
    ]
    assert all(list(e["o"]) == OTU_KEYS for e in otu if e["o"]["x"] == "NEW")
    assert all(list(e["o"]) == OTU_KEYS[:15] + ["N", "n"] + OTU_KEYS[15:] for e in otu if e["o"]["x"] == "TRADE")
    taker, maker = trades()
    assert (taker["m"], Decimal(taker["L"]), taker["l"], taker["N"]) == (False, price, "0.010000", "USDT")
    assert (maker["m"], Decimal(maker["L"]), maker["R"]) == (True, ask, True)
    assert Decimal(maker["rp"]) == (ask - price) * Decimal("0.01")
    assert Decimal(maker["n"]) == ask * Decimal("0.01") * Decimal("0.0002")  # the maker fee
    assert maker["T"] == crossed_at
    updates = [e for e in events if e["e"] == "ACCOUNT_UPDATE"]
    assert [(u["a"]["m"], u["a"]["P"][0]["s"], u["a"]["P"][0]["pa"], u["a"]["P"][0]["ps"]) for u in updates] == [
        ("ORDER", "BTCUSDT", "0.010000", "BOTH"), ("ORDER", "BTCUSDT", "0.000000", "BOTH")]  # fmt: skip
    wallet = Decimal(updates[-1]["a"]["B"][0]["wb"])
    fees = price * Decimal("0.01") * Decimal("0.0005") + Decimal(maker["n"])
    assert wallet == (Decimal(10000) + Decimal(maker["rp"]) - fees).quantize(Decimal("1e-8"))
    assert all(e["E"] >= e["T"] for e in events)

    async with http.delete(f"{base}/fapi/v1/listenKey", headers=headers) as resp:
        assert (resp.status, await resp.json()) == (200, {})
    async with http.put(f"{base}/fapi/v1/listenKey", headers=headers) as resp:
        assert (resp.status, await resp.json()) == (400, {"code": -1125, "msg": "This listenKey does not exist."})


async def test_cli_when_accounts_file_then_the_process_trades_for_them_and_never_prints_the_secret(tmp_path):
    data = tmp_path / "bars"
    convert_path(shared_data("lean", "crypto_binance_minute_btcbusd_20221213_trade.zip"), data, "BTCUSDT")
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"binance_usdm": [{"name": "alpha", "api_key": KEY, "secret": SECRET,
                                                      "balance": "1000"}]}))  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "venuesim", "--data", str(data), "--port", "0", "--start", "2022-12-13T06:00:00Z",
        "--accounts", str(accounts), stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), timeout=15)).decode().rstrip("\n")
        base = line.rpartition(" ")[2]
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{base}/fapi/v1/time") as resp:
                clock = FixedClock((await resp.json())["serverTime"])
            status, bought = await Client(http, base, clock).signed(
                "POST", "/fapi/v1/order", symbol="BTCUSDT", side="BUY", type="MARKET", quantity="0.01",
                newOrderRespType="RESULT", recvWindow=60_000,
            )  # fmt: skip
            assert (status, bought["status"]) == (200, "FILLED")
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        stdout, stderr = await asyncio.wait_for(proc.communicate(), timeout=15)
    assert proc.returncode == 0, stderr.decode()
    assert SECRET not in (line + stdout.decode() + stderr.decode())


def test_cli_when_accounts_file_malformed_then_exit_2_naming_the_key(tmp_path, capsys):
    (tmp_path / "BTCUSDT-1m-2024-01-01.csv").write_text("1704067200000,1,1,1,1,1,1704067259999,1,1,1,1,0\n")
    accounts = tmp_path / "accounts.json"
    accounts.write_text(json.dumps({"hyperliquid": {"accounts": [{"address": "0x12", "balance": "1"}]}}))
    assert main(["--data", str(tmp_path), "--port", "0", "--accounts", str(accounts)]) == 2
    assert "hyperliquid.accounts[0].address" in capsys.readouterr().err


class FixedClock:
    def __init__(self, now_ms: int) -> None:
        self.now = now_ms

    def now_ms(self) -> int:
        return self.now
